import assert from "node:assert/strict";
import { envelope } from "../lib/audio_peaks.ts";

Deno.test("envelope() keeps each slice's largest absolute sample, rounded, and 0 for an empty slice", () => {
  const samples = new Float32Array([0.1, -0.5, 0.2, 0.3, -0.999, 0, 0.004, 0.006]);
  assert.deepEqual(envelope(samples, 4), [0.5, 0.3, 1, 0.01]);
  assert.deepEqual(envelope(new Float32Array([0.25]), 3), [0, 0, 0.25]);
  assert.deepEqual(envelope(new Float32Array(), 2), [0, 0]);
});
