// API key format and checksum, without a database (the key routes are in auth_api_keys_test.ts).
import assert from "node:assert/strict";
import { generateApiKey, parseApiKey } from "../lib/auth/api_keys.ts";

Deno.test("generated keys have the documented shape and parse back", () => {
  for (let i = 0; i < 50; i++) {
    const { raw, id, secret } = generateApiKey();
    assert.match(raw, /^vox_live_[0-9a-z]{12}_[a-z2-7]{38}$/);
    assert.deepEqual(parseApiKey(raw), { id, secret });
    assert.equal(secret.length * 5, 160, "160 bits of secret");
  }
});

Deno.test("any single-character typo or truncation fails the checksum", () => {
  const { raw } = generateApiKey();
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const start = "vox_live_".length;
  for (let i = start; i < raw.length; i++) {
    if (raw[i] === "_") continue;
    const swapped = alphabet[(alphabet.indexOf(raw[i]) + 1) % alphabet.length] ?? "a";
    const typo = raw.slice(0, i) + swapped + raw.slice(i + 1);
    const parsed = parseApiKey(typo);
    assert.ok("problem" in parsed, `typo at ${i} accepted`);
  }
  assert.match((parseApiKey(raw.slice(0, -1)) as { problem: string }).problem, /malformed/);
  assert.match(
    (parseApiKey("vox_live_abc") as { problem: string }).problem,
    /expected vox_live_<id>_<secret>/,
  );
});
