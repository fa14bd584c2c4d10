// The vox CLI's pure parts: the baseline test's statistics, gates, file validation with
// positions, config diffs and the CI output formats. No server, no browser.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hodgesLehmann, mannWhitneyU, normalCdf, shiftTest } from "../agent/cli/baseline.ts";
import { configDiff, validateText } from "../agent/cli/files.ts";
import { checkGates, parseGate } from "../agent/cli/gates.ts";
import type { Measurement } from "../agent/cli/measurement.ts";
import { json, junit, markdown } from "../agent/cli/output.ts";
import { evaluate, exitCode, statusOf } from "../agent/cli/verdict.ts";
import { CliError } from "../agent/cli/errors.ts";
import { hideSecret, scrub } from "../agent/cli/io.ts";
import { credentials, writeConfig } from "../agent/cli/settings.ts";
import { checkJUnit } from "./_junit.ts";

/** A deterministic pseudo-random source (mulberry32). */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function measurement(response: number[], extra: Partial<Measurement> = {}): Measurement {
  const sorted = [...response].sort((a, b) => a - b);
  return {
    label: "m",
    response: {
      median: sorted.length ? sorted[sorted.length >> 1] : null,
      sd: 1,
      p90: sorted.length ? sorted.at(-1)! : null,
      n: sorted.length,
    },
    interrupt: { median: null, sd: null, p90: null, n: 0 },
    networkResilience: null,
    noiseReduction: 80,
    naturalness: 70,
    turns: response.map((latency_ms) => ({ kind: "response" as const, latency_ms, ok: true })),
    ...extra,
  };
}

Deno.test("the exact Mann-Whitney p-value matches the U distribution for n = 3 vs 3", () => {
  // U for 3 vs 3 takes 0..9 with counts 1,1,2,3,3,3,3,2,1,1 over the 20 splits.
  const a = [1, 2, 4];
  assert.equal(mannWhitneyU(a, [1.5, 5, 6]), 7);
  const t = shiftTest(a, [1.5, 5, 6], { minEffectMs: 0 });
  assert.equal(t.method, "exact");
  assert.equal(t.p, 4 / 20);
  assert.equal(shiftTest(a, [5, 6, 7], { minEffectMs: 0 }).p, 1 / 20);
  // All values tied: every split has the same U, so nothing is surprising.
  assert.equal(shiftTest([700, 700, 700, 700], [700, 700, 700, 700]).p, 1);
});

Deno.test("the normal approximation agrees with the exact p-value on mid-sized samples", () => {
  const r = rng(7);
  for (let trial = 0; trial < 5; trial++) {
    const a = Array.from({ length: 8 }, () => 700 + r() * 40);
    const b = Array.from({ length: 8 }, () => 710 + r() * 40);
    const exact = shiftTest(a, b, { minEffectMs: 0 }).p;
    // 30 vs 30 is past the exact limit: check the approximation against itself on a scaled copy instead.
    const u = mannWhitneyU(a, b);
    const z = (u - 32 - 0.5) / Math.sqrt((64 / 12) * 17);
    assert.ok(Math.abs((1 - normalCdf(z)) - exact) < 0.03, `exact ${exact} vs normal ${1 - normalCdf(z)}`);
  }
  const big = shiftTest(
    Array.from({ length: 30 }, (_, i) => i),
    Array.from({ length: 30 }, (_, i) => i + 0.5),
  );
  assert.equal(big.method, "normal");
  assert.ok(big.p > 0.3 && big.p < 0.6, `p ${big.p}`);
});

Deno.test("normalCdf() is the standard normal distribution", () => {
  assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7);
  assert.ok(Math.abs(normalCdf(1.959964) - 0.975) < 1e-6);
  assert.ok(Math.abs(normalCdf(-1.644854) - 0.05) < 1e-6);
});

Deno.test("Hodges-Lehmann is the median pairwise shift", () => {
  assert.equal(hodgesLehmann([1, 2, 3], [11, 12, 13]), 10);
  assert.equal(hodgesLehmann([0, 0], [1, 3]), 2);
});

Deno.test("a 5 ms wobble is no regression; an 80 ms shift over four turns is", () => {
  const r = rng(42);
  const noisy = (delay: number, n: number) => Array.from({ length: n }, () => delay + (r() - 0.5) * 10);
  for (let i = 0; i < 20; i++) {
    const same = shiftTest(noisy(700, 4), noisy(700, 4));
    assert.equal(same.verdict, "no regression", same.summary);
    const wobble = shiftTest(noisy(700, 6), noisy(705, 6));
    assert.equal(wobble.verdict, "no regression", wobble.summary);
    const slower = shiftTest(noisy(700, 4), noisy(780, 4));
    assert.equal(slower.verdict, "regression", slower.summary);
    assert.ok(Math.abs(slower.shiftMs - 80) < 10);
    assert.equal(slower.cles, 1);
  }
  // Faster is never a regression.
  assert.equal(shiftTest([700, 701, 702, 703], [600, 601, 602, 603]).verdict, "no regression");
});

Deno.test("too few turns is 'insufficient', never a silent pass", () => {
  const t = shiftTest([700, 701], [900, 901]);
  assert.equal(t.verdict, "insufficient");
  assert.match(t.summary, /too few turns/);
  const ev = evaluate("x", measurement([900, 901]), [], measurement([700, 701]));
  assert.equal(statusOf(ev), "error");
  assert.equal(exitCode([ev]), 2);
});

Deno.test("parseGate() reads metric, operator and number, and names what is malformed", () => {
  assert.deepEqual(parseGate("response.p90 > 800"), {
    text: "response.p90 > 800",
    metric: "response.p90",
    op: ">",
    value: 800,
  });
  assert.equal(parseGate("response_latency.median>=650ms").metric, "response.median");
  assert.equal(parseGate(" failed_turns > 0 ").value, 0);
  assert.throws(
    () => parseGate("response.p90 >"),
    (e: Error) => e instanceof CliError && /expected/.test(e.message),
  );
  assert.throws(() => parseGate("response.p99 > 1"), /unknown metric "response.p99"/);
  assert.throws(() => parseGate("latency is bad"), /expected '<metric> <op> <number>'/);
});

Deno.test("gates fail when their condition holds, and when their metric has no value", () => {
  const m = measurement([700, 710, 720], {
    turns: [
      { kind: "response", latency_ms: 700, ok: true },
      { kind: "response", latency_ms: null, ok: false },
    ],
  });
  const out = checkGates(
    m,
    ["response.p90 > 800", "response.median > 600", "failed_turns > 0", "interrupt.median > 300"].map(
      parseGate,
    ),
  );
  assert.deepEqual(out.map((o) => o.failed), [false, true, true, true]);
  assert.equal(out[1].actual, 710);
  assert.match(out[1].message, /response.median = 710, fails 'response.median > 600'/);
  assert.match(out[3].message, /no value/);
});

Deno.test("validation errors name file, line, column and field", () => {
  const text =
    "url: https://example.com/\nsteps:\n  - action: click\n    selector: '#go'\n  - action: click\n";
  assert.throws(
    () => validateText("app.yaml", text),
    (e: Error) => /app\.yaml:5:5: steps\.1\.selector: needs a selector/.test(e.message),
  );
  assert.throws(
    () => validateText("s.yaml", "steps:\n  - action: speak\n    file: a.wav\n  - action: fly\n"),
    (e: Error) => /s\.yaml:4:13: steps\.1\.action: unknown action "fly"/.test(e.message),
  );
  assert.throws(() => validateText("bad.yaml", "steps: [\n"), /bad\.yaml:\d+:\d+: /);
  const ok = validateText("dir/my_app.yaml", "url: https://example.com/\n");
  assert.equal(ok.kind, "workflow");
  assert.equal(ok.name, "my_app");
  assert.deepEqual(ok.config.steps, []);
  assert.equal(validateText("s.yaml", "steps:\n  - action: wait_for_voice\n").kind, "eval_set");
});

Deno.test("configDiff() shows the changed lines with context", () => {
  const d = configDiff(
    { url: "https://a/?delay=700", steps: [], tags: ["x"] },
    { url: "https://a/?delay=780", steps: [], tags: ["x"] },
  );
  assert.match(d, /^- url: https:\/\/a\/\?delay=700$/m);
  assert.match(d, /^\+ url: https:\/\/a\/\?delay=780$/m);
  assert.doesNotMatch(configDiff({ a: 1 }, { a: 1 }), /^[-+]/m);
});

Deno.test("JUnit output has the testsuites/testsuite/testcase/failure shape with matching counts", () => {
  const passed = evaluate("job 1 (eu)", measurement([700, 701, 702, 703]), [parseGate("response.p90 > 800")]);
  const failed = evaluate(
    "job 2 (us) <&>",
    measurement([780, 781, 782, 783]),
    [parseGate("response.p90 > 750"), parseGate("failed_turns > 0")],
    measurement([700, 701, 702, 703]),
  );
  const broken = {
    title: "job 3 (ap)",
    gates: [],
    error: 'job failed: invalid config: "missing.wav" not found',
  };
  const xml = junit([passed, failed, broken]);
  const shape = checkJUnit(xml);
  // passed: run + gate; failed: run + 2 gates + response baseline; broken: run (error).
  assert.deepEqual([shape.tests, shape.failures, shape.errors], [7, 2, 1]);
  const suites = shape.root.children;
  assert.equal(suites[1].attrs.name, "job 2 (us) <&>");
  const failures = suites[1].children.flatMap((c) => c.children).filter((c) => c.name === "failure");
  assert.deepEqual(failures.map((f) => f.attrs.type), ["threshold", "regression"]);
  assert.match(failures[1].attrs.message, /Mann-Whitney/);
  assert.match(suites[2].children[0].children[0].attrs.message, /missing\.wav/);
  assert.throws(() => checkJUnit('<testsuites tests="1" failures="0" errors="0"></testsuites>'), /counted 0/);
});

Deno.test("JSON and Markdown carry the verdict, the metrics and the link", () => {
  const m = measurement([700, 701, 702, 703], { link: "http://vox/api/v1/results/9", label: "result 9" });
  const ev = evaluate("job 1 (eu)", m, [parseGate("response.median > 650")]);
  const parsed = JSON.parse(json([ev]));
  assert.equal(parsed.status, "failed");
  assert.equal(parsed.exitCode, 1);
  assert.equal(parsed.evaluations[0].gates[0].actual, 702);
  const md = markdown([ev]);
  assert.match(md, /\| response latency \| 702 ms \|/);
  assert.match(md, /\| `response.median > 650` \| 702 \| ❌ failed \|/);
  assert.match(md, /\[result 9\]\(http:\/\/vox\/api\/v1\/results\/9\)/);
});

Deno.test("credentials: VOX_URL/VOX_API_KEY first; the stored key only ever goes to its own server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-cred-" });
  try {
    const path = join(dir, "sub", "config.json");
    await writeConfig(path, { url: "https://vox.example.com", apiKey: "vox_live_stored_key_123" });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const env = { VOX_CONFIG: path };
    assert.deepEqual(await credentials(env), {
      url: "https://vox.example.com",
      apiKey: "vox_live_stored_key_123",
    });
    assert.deepEqual(
      await credentials({ ...env, VOX_URL: "https://vox.example.com/", VOX_API_KEY: "vox_live_env" }),
      {
        url: "https://vox.example.com",
        apiKey: "vox_live_env",
      },
    );
    await assert.rejects(
      () => credentials({ ...env, VOX_URL: "https://elsewhere.example.com" }),
      /the stored one is for https:\/\/vox\.example\.com/,
    );
    await assert.rejects(() => credentials({ VOX_CONFIG: join(dir, "none.json") }), /not logged in/);
    await assert.rejects(
      () => credentials({ VOX_URL: "ftp://x", VOX_API_KEY: "k" }),
      /must be http or https/,
    );
    // A file that existed with looser permissions is tightened on the next login.
    await Deno.chmod(path, 0o644);
    await writeConfig(path, { url: "https://vox.example.com", apiKey: "vox_live_new" });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scrub() removes a registered secret from anything printed", () => {
  hideSecret("vox_live_abcdefghijklmnop");
  assert.equal(
    scrub("key vox_live_abcdefghijklmnop in a URL ?k=vox_live_abcdefghijklmnop"),
    "key [redacted] in a URL ?k=[redacted]",
  );
});
