// The `vox` CLI as a user and a CI job run it: a subprocess against a real Vox server process
// (`deno run main.ts` on this file's test database), with a real eval agent (headless Chromium)
// measuring the reference voice agent for the end-to-end runs. Everything that needs no
// browser (login, bad input, push/pull, local gates) runs without one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { checkJUnit } from "./_junit.ts";
import { agentToken, spawnServer } from "./_orch.ts";
import { freePort } from "../lib/embedded_pg.ts";

const db = await createTestDatabase();
const sql = db.sql;
const server = await spawnServer(db.url);
const fixtures = serveReferenceAgent();
const tmp = await Deno.makeTempDir({ prefix: "vox-cli-test-" });
Deno.test.afterAll(async () => {
  await server.stop("SIGTERM");
  await fixtures.close();
  await db.close();
  await Deno.remove(tmp, { recursive: true });
});

const CLI = new URL("../agent/cli/main.ts", import.meta.url).pathname;
const ASSETS = new URL("./fixtures/vat/assets/", import.meta.url).pathname;
const user = await createUser(sql, { role: "principal" });
const apiKey = await apiKeyFor(sql, user.id, "cli test");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
/** Every byte the CLI printed, so no test forgets to look for the key. */
const printed: string[] = [];

/** Runs `vox args…` with a clean environment: the server and key given, or none. */
async function vox(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; auth?: boolean } = {},
): Promise<Run> {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: tmp,
    VOX_CONFIG: join(tmp, "config.json"),
    NO_COLOR: "1",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
    ...(opts.auth === false ? {} : { VOX_URL: server.baseUrl, VOX_API_KEY: apiKey }),
    ...opts.env,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env,
    clearEnv: true,
    cwd: tmp,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const o = await child.output();
  const run = {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
  printed.push(run.stdout, run.stderr);
  return run;
}

const write = async (name: string, text: string) => {
  const path = join(tmp, name);
  await Deno.writeTextFile(path, text);
  return path;
};

Deno.test("vox login stores the server and key in a 0600 file; whoami reads it; the key is never printed", async () => {
  const login = await vox(["login", "--url", server.baseUrl + "/"], { stdin: apiKey + "\n", auth: false });
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stderr, new RegExp(`logged in to ${server.baseUrl} as ${user.username}`));
  const stat = await Deno.stat(join(tmp, "config.json"));
  assert.equal(stat.mode! & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(tmp, "config.json"))), {
    url: server.baseUrl,
    apiKey,
  });
  const who = await vox(["whoami"], { auth: false });
  assert.equal(who.code, 0, who.stderr);
  assert.match(
    who.stdout,
    new RegExp(`^${user.username} <${user.email}> role principal on ${server.baseUrl} via api_key`),
  );
  // A wrong key at login is refused and not stored.
  const wrong = await vox(["login", "--url", server.baseUrl, "--api-key", "vox_live_" + "x".repeat(40)], {
    auth: false,
  });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /refused the API key \(401/);
  assert.doesNotMatch(wrong.stderr + wrong.stdout, /x{40}/);
  assert.equal(JSON.parse(await Deno.readTextFile(join(tmp, "config.json"))).apiKey, apiKey);
  await Deno.remove(join(tmp, "config.json"));
});

Deno.test("bad input exits 2 with a clear message: wrong key, unreachable server, unknown workflow, malformed gate", async () => {
  const wrongKey = "vox_live_" + "q".repeat(40);
  const refused = await vox(["whoami"], { env: { VOX_API_KEY: wrongKey } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^vox: the server at http:\/\/127\.0\.0\.1:\d+ refused the API key \(401/);
  assert.doesNotMatch(refused.stderr + refused.stdout, /q{40}/);

  const closed = `http://127.0.0.1:${freePort()}`;
  const unreachable = await vox(["results", "list"], { env: { VOX_URL: closed } });
  assert.equal(unreachable.code, 2);
  assert.match(unreachable.stderr, new RegExp(`^vox: cannot reach the Vox server at ${closed}: `));

  const unknown = await vox([
    "run",
    "--workflow",
    "no such workflow",
    "--eval-set",
    "x",
    "--region",
    "r",
    "--wait",
  ]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^vox: no workflow named "no such workflow" in your projects/);

  const malformed = await vox([
    "run",
    "--workflow",
    "a",
    "--eval-set",
    "b",
    "--fail-if",
    "response.p90 >> 800",
  ]);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /--fail-if 'response.p90 >> 800': expected '<metric> <op> <number>'/);
  // Asked for JUnit, the failure is a JUnit error too, so CI shows why nothing ran.
  const asJunit = await vox([
    "run",
    "--workflow",
    "nope",
    "--eval-set",
    "b",
    "--region",
    "r",
    "--format",
    "junit",
  ]);
  assert.equal(asJunit.code, 2);
  const shape = checkJUnit(asJunit.stdout);
  assert.deepEqual([shape.tests, shape.errors], [1, 1]);
  assert.match(shape.root.children[0].children[0].children[0].attrs.message, /no workflow named "nope"/);

  const notLoggedIn = await vox(["whoami"], { auth: false });
  assert.equal(notLoggedIn.code, 2);
  assert.match(notLoggedIn.stderr, /not logged in: run `vox login/);

  const unknownFlag = await vox(["run", "--fial-if", "x"]);
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /Unknown option '--fial-if'/);
});

Deno.test("vox push creates, then changes nothing for the same files, then updates with a diff; pull writes YAML back", async () => {
  const app = await write("push_app.yaml", `url: "${fixtures.url}agent/index.html?delay=500"\nsteps: []\n`);
  const suite = await write(
    "push_suite.yaml",
    "steps:\n  - action: speak\n    file: tuesday.wav\n  - action: wait_for_voice\n",
  );
  const noProvider = await vox(["push", app]);
  assert.equal(noProvider.code, 2);
  assert.match(noProvider.stderr, /a new workflow needs --provider NAME/);

  const first = await vox(["push", app, suite, "--provider", "CLI test agents"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^\+ workflow push_app \(id \d+\): created$/m);
  assert.match(first.stdout, /^\+ eval set push_suite \(id \d+\): created$/m);
  const before = await sql`SELECT id, updated_at, config FROM workflows WHERE name = 'push_app'`;
  assert.equal(before.length, 1);

  const again = await vox(["push", app, suite, "--provider", "CLI test agents"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^= workflow push_app \(id \d+\): unchanged$/m);
  assert.match(again.stdout, /^= eval set push_suite \(id \d+\): unchanged$/m);
  const after = await sql`SELECT id, updated_at FROM workflows WHERE name = 'push_app'`;
  assert.deepEqual([...after], before.map(({ id, updatedAt }) => ({ id, updatedAt })));
  assert.equal((await sql`SELECT count(*)::int AS n FROM eval_sets WHERE name = 'push_suite'`)[0].n, 1);

  await write("push_app.yaml", `url: "${fixtures.url}agent/index.html?delay=580"\nsteps: []\n`);
  const changed = await vox(["push", app, suite]);
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /^~ workflow push_app \(id \d+\): updated$/m);
  assert.match(changed.stdout, /^ +- url: .*delay=500$/m);
  assert.match(changed.stdout, /^ +\+ url: .*delay=580$/m);
  assert.match(changed.stdout, /^= eval set push_suite/m);

  // A malformed file: nothing is sent, the message points at file, line and field.
  const bad = await write(
    "bad_suite.yaml",
    "steps:\n  - action: speak\n    file: tuesday.wav\n  - action: click\n",
  );
  const refused = await vox(["push", app, bad]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /bad_suite\.yaml:4:5: steps\.1\.selector: needs a selector/);
  assert.equal((await sql`SELECT count(*)::int AS n FROM eval_sets WHERE name = 'bad_suite'`)[0].n, 0);

  const outDir = join(tmp, "pulled");
  const pulled = await vox(["pull", "--workflow", "push_app", "--eval-set", "push_suite", "--out", outDir]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(await Deno.readTextFile(join(outDir, "push_app.yaml")), /delay=580/);
  // With no names: every workflow and eval set of the project.
  const all = await vox(["pull", "--out", join(tmp, "pulled_all")]);
  assert.equal(all.code, 0, all.stderr);
  for (const name of ["push_app", "push_suite"]) {
    assert.match(all.stdout, new RegExp(`pulled_all/${name}\\.yaml$`, "m"));
  }
  // What pull wrote pushes back as unchanged.
  const roundTrip = await vox(["push", join(outDir, "push_app.yaml"), join(outDir, "push_suite.yaml")]);
  assert.equal(roundTrip.code, 0, roundTrip.stderr);
  assert.equal(roundTrip.stdout.match(/: unchanged$/gm)?.length, 2, roundTrip.stdout);
});

Deno.test("a job no agent takes: --wait gives up after --timeout, cancels it and exits 2 naming the region", async () => {
  await write("idle_app.yaml", `url: "${fixtures.url}agent/index.html"\n`);
  await write("idle_suite.yaml", "steps:\n  - action: wait_for_voice\n");
  const pushed = await vox(["push", "idle_app.yaml", "idle_suite.yaml", "--provider", "CLI test agents"]);
  assert.equal(pushed.code, 0, pushed.stderr);
  // No --region and no eval agent online anywhere: nothing to guess, exit 2.
  const noRegion = await vox(["run", "--workflow", "idle_app", "--eval-set", "idle_suite"]);
  assert.equal(noRegion.code, 2);
  assert.match(noRegion.stderr, /--region is needed: no eval agent is online/);
  const run = await vox([
    "run",
    "--workflow",
    "idle_app",
    "--eval-set",
    "idle_suite",
    "--region",
    "nowhere",
    "--wait",
    "--timeout",
    "3",
  ]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stdout, /no eval agent is online in region nowhere; the job was cancelled/);
  const [job] = await sql`SELECT id, status FROM eval_jobs WHERE region = 'nowhere'`;
  assert.equal(job.status, "cancelled");
  // Started without --wait: the job id, exit 0; `vox jobs cancel` cancels it.
  const started = await vox([
    "run",
    "--workflow",
    "idle_app",
    "--eval-set",
    "idle_suite",
    "--region",
    "nowhere",
  ]);
  assert.equal(started.code, 0, started.stderr);
  const id = /^job (\d+) nowhere pending$/m.exec(started.stdout)?.[1];
  assert.ok(id, started.stdout);
  const cancelled = await vox(["jobs", "cancel", id]);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.match(cancelled.stdout, new RegExp(`^job ${id} nowhere cancelled`));
  const twice = await vox(["jobs", "cancel", id]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /409 Cannot cancel job \d+: it is cancelled/);
});

/** A run report as `deno task agent run --report` writes it, with these response latencies. */
function report(latencies: number[], failed = 0) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    metrics: {
      response_latency: { median: sorted[sorted.length >> 1], sd: 2, p90: sorted.at(-1), n: sorted.length },
      interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: 72.5,
    },
    turns: [
      ...latencies.map((latency_ms, i) => ({
        kind: "response",
        latency_ms,
        ok: true,
        run: 1,
        file: "s.yaml",
        step: i,
      })),
      ...Array.from(
        { length: failed },
        () => ({ kind: "response", latency_ms: null, ok: false, run: 1, file: "s.yaml", step: 9 }),
      ),
    ],
    methods: { response_latency: "vox-audioclock-response/1" },
    ok: true,
    errors: [],
    version: 1,
  };
}

Deno.test("local mode: gates, baseline and compare over report files with no server", async () => {
  const base = await write("base.json", JSON.stringify(report([700.2, 701.1, 699.8, 700.5, 700.9])));
  const same = await write("same.json", JSON.stringify(report([701.0, 700.1, 702.2, 699.9, 700.4])));
  const slower = await write("slower.json", JSON.stringify(report([780.4, 781.0, 779.5, 780.8, 782.1], 1)));
  const summary = join(tmp, "step_summary.md");
  // No server anywhere: VOX_URL points at a closed port and nothing needs it.
  const noServer = { VOX_URL: `http://127.0.0.1:${freePort()}`, GITHUB_STEP_SUMMARY: summary };

  const pass = await vox(["gate", same, "--fail-if", "response.p90 > 800", "--baseline", base], {
    env: noServer,
  });
  assert.equal(pass.code, 0, pass.stdout + pass.stderr);
  assert.match(pass.stdout, /✓ response.p90 = 702.2, passes 'response.p90 > 800'/);
  assert.match(pass.stdout, /✓ response: no regression; shift/);

  const fail = await vox(
    [
      "gate",
      slower,
      "--fail-if",
      "response.p90 > 800",
      "--fail-if",
      "failed_turns > 0",
      "--baseline",
      base,
      "--format",
      "junit",
    ],
    { env: noServer },
  );
  assert.equal(fail.code, 1, fail.stderr);
  const shape = checkJUnit(fail.stdout);
  assert.deepEqual([shape.tests, shape.failures, shape.errors], [4, 2, 0]);
  assert.match(
    fail.stdout,
    /<failure type="threshold" message="failed_turns = 1, fails 'failed_turns &gt; 0'"\/>/,
  );
  assert.match(fail.stdout, /<failure type="regression" message="shift \+80/);
  const md = await Deno.readTextFile(summary);
  assert.match(md, /### ✅ Vox: .*same\.json — passed/);
  assert.match(md, /### ❌ Vox: .*slower\.json — failed/);

  const cmp = await vox(["compare", base, slower], { env: noServer });
  assert.equal(cmp.code, 1);
  assert.match(cmp.stdout, /response\.median +700\.5 +780\.8 +\+80\.3/);
  assert.match(cmp.stdout, /response: regression; shift \+80/);
  const cmpSame = await vox(["compare", base, same, "--format", "json"], { env: noServer });
  assert.equal(cmpSame.code, 0);
  assert.equal(JSON.parse(cmpSame.stdout).evaluations[0].baseline.kinds[0].test.verdict, "no regression");

  const notReport = await write("not_report.json", JSON.stringify({ hello: 1 }));
  const bad = await vox(["gate", notReport, "--fail-if", "response.p90 > 1"], { env: noServer });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not_report\.json: not a Vox run report \(metrics: /);
});

Deno.test({
  name: "vox run --local measures with the eval agent's run mode and gates its report, no server",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: tmp, prefix: "local-" });
    await Deno.copyFile(join(ASSETS, "tuesday.wav"), join(dir, "tuesday.wav"));
    const app = join(dir, "app.yaml");
    await Deno.writeTextFile(app, `url: "${fixtures.url}agent/index.html?delay=600"\n`);
    const suite = join(dir, "one_turn.yaml");
    await Deno.writeTextFile(
      suite,
      `steps:\n  - action: wait_for_element\n    selector: "body[data-ready='1']"\n` +
        "  - action: speak\n    file: tuesday.wav\n  - action: wait_for_voice\n",
    );
    const noServer = { VOX_URL: `http://127.0.0.1:${freePort()}` };
    const report = join(dir, "report.json");
    const args = ["run", "--local", "--app", app, "--suite", suite, "--report", report];
    const met = await vox([...args, "--fail-if", "response.median > 2000", "--format", "json"], {
      env: noServer,
    });
    assert.equal(met.code, 0, met.stdout + met.stderr);
    const ev = JSON.parse(met.stdout).evaluations[0];
    assert.ok(
      Math.abs(ev.measurement.response.median - 600) < 10,
      `median ${ev.measurement.response.median}`,
    );
    assert.match(met.stderr, /agent: .*step 2: speak/);
    // The report it wrote gates the same way afterwards; a missed threshold names the metric.
    const missed = await vox(["gate", report, "--fail-if", "response.median > 500"], { env: noServer });
    assert.equal(missed.code, 1);
    assert.match(missed.stdout, /✗ response.median = \d+(\.\d+)?, fails 'response.median > 500'/);
    // A scenario the agent cannot run: exit 2 with the agent's reason.
    const broken = join(dir, "broken.yaml");
    await Deno.writeTextFile(
      broken,
      "steps:\n  - action: speak\n    file: nope.wav\n  - action: wait_for_voice\n",
    );
    const failed = await vox(["run", "--local", "--app", app, "--suite", broken], { env: noServer });
    assert.equal(failed.code, 2);
    assert.match(failed.stdout, /! the run failed \(exit 1\): .*audio file not found: nope\.wav/);
  },
});

Deno.test({
  name:
    "end to end with a real eval agent: thresholds met (0) and missed (1), baseline same delay passes, +80 ms fails, a job that cannot run (2)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const region = "cli-e2e";
    const daemon = new EvalDaemon(
      daemonSettings({}, {
        VOX_SERVER_URL: server.baseUrl,
        VOX_AGENT_TOKEN: await agentToken(sql, region),
        VOX_AGENT_REGION: region,
        VOX_AGENT_NAME: "cli-e2e",
        VOX_AGENT_ASSETS_DIR: ASSETS,
        // The reference agent is on loopback: the strict egress policy lets exactly it through.
        VOX_AGENT_EGRESS_ALLOW: fixtures.url,
      }),
      () => {},
    );
    daemon.start();
    try {
      // Four response turns per run: enough for the exact one-sided test to reach p ≤ 0.05.
      const turn =
        "  - action: speak\n    file: tuesday.wav\n  - action: wait_for_voice\n  - action: wait_for_silence\n";
      const app = await write(
        "reference.yaml",
        `url: "${fixtures.url}agent/index.html?delay=700"\nsteps: []\n`,
      );
      const suite = await write(
        "four_turns.yaml",
        `steps:\n  - action: wait_for_element\n    selector: "body[data-ready='1']"\n${turn.repeat(4)}`,
      );
      const pushed = await vox(["push", app, suite, "--provider", "CLI reference"]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const runArgs = [
        "run",
        "--workflow",
        "reference",
        "--eval-set",
        "four_turns",
        "--region",
        region,
        "--wait",
      ];

      const met = await vox([
        ...runArgs,
        "--fail-if",
        "response.p90 > 2000",
        "--fail-if",
        "failed_turns > 0",
        "--format",
        "json",
      ]);
      assert.equal(met.code, 0, met.stdout + met.stderr);
      const first = JSON.parse(met.stdout).evaluations[0];
      assert.equal(first.status, "passed");
      const r1 = first.measurement.resultId as number;
      assert.equal(first.measurement.response.n, 4);
      assert.ok(
        Math.abs(first.measurement.response.median - 700) < 10,
        `median ${first.measurement.response.median}`,
      );
      // Plain progress lines on a pipe (not a terminal), from the job's event stream.
      assert.match(met.stderr, /^job \d+ \(cli-e2e\): running \d+\/\d+ /m);
      assert.match(met.stderr, /^job \d+ \(cli-e2e\): completed/m);

      // Same delay again: the baseline test passes; a threshold the agent misses fails, named.
      const missed = await vox([
        ...runArgs,
        "--baseline",
        String(r1),
        "--fail-if",
        "response.median > 500",
        "--format",
        "junit",
      ]);
      assert.equal(missed.code, 1, missed.stdout + missed.stderr);
      const shape = checkJUnit(missed.stdout);
      assert.deepEqual([shape.failures, shape.errors], [1, 0]);
      const cases = shape.root.children[0].children;
      const gate = cases.find((c) => c.attrs.name === "response.median > 500")!;
      assert.match(
        gate.children[0].attrs.message,
        /^response.median = \d+(\.\d+)?, fails 'response.median > 500'$/,
      );
      const same = cases.find((c) => c.attrs.classname === "vox.baseline")!;
      assert.equal(same.children.filter((c) => c.name === "failure").length, 0, same.children[0]?.text);

      // The reference agent answers 80 ms later: the baseline test fails.
      await write("reference.yaml", `url: "${fixtures.url}agent/index.html?delay=780"\nsteps: []\n`);
      const repushed = await vox(["push", app]);
      assert.match(repushed.stdout, /^~ workflow reference \(id \d+\): updated$/m);
      // "last": the newest earlier result of this workflow, eval set and region (the second run).
      const slower = await vox([...runArgs, "--baseline", "last"]);
      assert.equal(slower.code, 1, slower.stdout + slower.stderr);
      assert.match(slower.stdout, /^ {2}baseline result \d+:$/m);
      assert.doesNotMatch(slower.stdout, new RegExp(`baseline result ${r1}:`));
      assert.match(slower.stdout, /✗ response: regression; shift \+(7[5-9]|8[0-5])(\.\d+)? ms/);
      const r3 = /^job \d+ \(cli-e2e\), result (\d+): ✗ failed$/m.exec(slower.stdout)?.[1];
      assert.ok(r3, slower.stdout);

      // Two server results side by side, with the test's verdict; one result on its own.
      const cmp = await vox(["compare", String(r1), r3]);
      assert.equal(cmp.code, 1, cmp.stdout + cmp.stderr);
      assert.match(cmp.stdout, new RegExp(`^response\\.n +4 +4 +\\+0$`, "m"));
      assert.match(cmp.stdout, /^response: regression; shift \+/m);
      const got = await vox(["results", "get", r3]);
      assert.equal(got.code, 0, got.stderr);
      assert.match(
        got.stdout,
        new RegExp(`^result ${r3}: ✓ passed\n  ${server.baseUrl}/api/v1/results/${r3}$`, "m"),
      );

      // A scenario naming audio that exists nowhere is refused by the server, naming step and file
      // (issue 18)…
      await write(
        "broken.yaml",
        "steps:\n  - action: speak\n    file: missing.wav\n  - action: wait_for_voice\n",
      );
      const refused = await vox(["push", "broken.yaml"]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stdout + refused.stderr, /step 1 \(speak\) names audio "missing\.wav"/);
      // …and one naming a declared agent asset this agent lacks cannot run: exit 2 with the reason.
      await setSetting(sql, "audio.agent_assets", ["hello.wav", "tuesday.wav", "wait.wav", "missing.wav"]);
      assert.equal((await vox(["push", "broken.yaml"])).code, 0);
      const broken = await vox([
        "run",
        "--workflow",
        "reference",
        "--eval-set",
        "broken",
        "--region",
        region,
        "--wait",
        "--fail-if",
        "response.p90 > 2000",
      ]);
      assert.equal(broken.code, 2, broken.stdout + broken.stderr);
      assert.match(broken.stdout, /! job failed: invalid config: .*missing\.wav/);

      const listed = await vox(["results", "list", "--workflow", "reference"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^3 in all$/m);
    } finally {
      await daemon.stop("test over");
    }
    for (const text of printed) {
      assert.ok(!text.includes(apiKey), "the API key never appears in the CLI's output");
    }
  },
});

Deno.test("the API key appears in no output of any run above", () => {
  assert.ok(printed.length > 10);
  for (const text of printed) assert.ok(!text.includes(apiKey));
});
