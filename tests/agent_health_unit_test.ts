// Overload detection's pure parts (issue 19): the per-turn health classifier of the browser
// path, the concurrency governor, and the daemon lowering and restoring the jobs it accepts.
// No browser, no server (tests/agent_overload_test.ts overloads a real host).
import assert from "node:assert/strict";
import { EvalDaemon, resultReport } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import type { VoxEvent } from "../agent/event_queue.ts";
import { CapacityGovernor, hostProblem } from "../agent/host_health.ts";
import {
  checkTurn,
  HEALTH_LIMITS,
  healthProblems,
  runHealth,
  windowHealth,
} from "../agent/measurement_health.ts";
import type { AgentMessageInput, ServerMessage } from "../agent/protocol.ts";
import { buildReport, type Turn } from "../agent/report.ts";

const RATE = 48_000;
const CTX = 100;
/** The limits with any one signal enough: how each signal is read, one at a time. */
const ONE = { ...HEALTH_LIMITS, minSignals: 1 };

/** Samples every 100 ms of audio from frame 0 to `seconds`, healthy unless `at` changes one. */
function samples(seconds: number, at: (i: number, e: VoxEvent) => void = () => {}): VoxEvent[] {
  const out: VoxEvent[] = [];
  for (let i = 1; i <= seconds * 10; i++) {
    const e: VoxEvent = {
      type: "health",
      ctx: CTX,
      frame: i * 4800,
      lag: 2,
      slip: 155,
      underruns: 0,
      underrunMs: 0,
    };
    at(i, e);
    out.push(e);
  }
  return out;
}

/** A response turn from 2.0 s (caller's last voiced sample) to 2.9 s (agent's first). */
function response(): Turn {
  return {
    kind: "response",
    latency_ms: 900,
    ok: true,
    run: 1,
    file: "s.yaml",
    step: 2,
    caller_voiced_end_frame: 2 * RATE,
    agent_frame: 2.9 * RATE,
    sample_rate: RATE,
  };
}

Deno.test("a turn whose window saw a healthy page stays ok, with what its window saw", () => {
  const t = response();
  assert.equal(checkTurn(t, samples(5), CTX, { final: true }), false);
  assert.equal(t.ok, true);
  assert.equal(t.unreliable, undefined);
  assert.deepEqual(t.health, { lag_ms: 2, render_ms: null, clock_slip_ms: 0, underruns: 0 });
});

Deno.test("a stalled page thread inside a turn's window makes it unreliable, its latency kept and named", () => {
  const t = response();
  // The sample at 2.5 s reports its timer fired 280 ms late.
  const marked = checkTurn(t, samples(5, (i, e) => i === 25 && (e.lag = 280)), CTX, {
    final: true,
    limits: ONE,
  });
  assert.equal(marked, true);
  assert.equal(t.ok, false);
  assert.equal(t.unreliable, true);
  assert.equal(t.latency_ms, 900, "the latency stays for reference");
  assert.match(t.note!, /^unreliable: the page's thread ran 280 ms late .*host overloaded/);
  assert.deepEqual(runHealth([t, response()]), {
    turns_checked: 1,
    unreliable_turns: 1,
    worst_lag_ms: 280,
    worst_render_ms: null,
    worst_clock_slip_ms: 0,
    underruns: 0,
  });
});

Deno.test("a stall well before the turn, or after the sample that covers its end, does not count", () => {
  for (const i of [10, 31]) {
    const t = response();
    assert.equal(
      checkTurn(t, samples(5, (j, e) => j === i && (e.lag = 500)), CTX, { final: true, limits: ONE }),
      false,
      `${i}`,
    );
    assert.equal(t.ok, true);
  }
  // The first sample after the window's end covers its last 100 ms, so it counts.
  const t = response();
  assert.equal(
    checkTurn(t, samples(5, (j, e) => j === 30 && (e.lag = 500)), CTX, { final: true, limits: ONE }),
    true,
  );
});

Deno.test("audio-clock slip and playback underruns in the window make a turn unreliable", () => {
  const slipped = response();
  checkTurn(slipped, samples(5, (i, e) => i >= 24 && (e.slip = 155 + 160)), CTX, {
    final: true,
    limits: ONE,
  });
  assert.equal(slipped.unreliable, true);
  assert.match(slipped.note!, /audio clock slipped 160 ms against real time/);
  // Underruns are recorded; judged only with a limit (HEALTH_LIMITS leaves them unjudged).
  const limits = { ...ONE, underruns: 0 };
  const underrun = response();
  checkTurn(underrun, samples(5, (i, e) => i >= 27 && (e.underruns = 3)), CTX, { final: true, limits });
  assert.equal(underrun.unreliable, true);
  assert.match(underrun.note!, /3 playback underrun\(s\)/);
  const unjudged = response();
  checkTurn(unjudged, samples(5, (i, e) => i >= 27 && (e.underruns = 3)), CTX, { final: true });
  assert.equal(unjudged.ok, true);
  assert.equal(unjudged.health?.underruns, 3);
  // Underruns before the window are the baseline, not the turn's.
  const before = response();
  checkTurn(before, samples(5, (i, e) => i >= 5 && (e.underruns = 3)), CTX, { final: true, limits });
  assert.equal(before.ok, true);
});

/** The meter's ticks every 50 ms of audio, as the event queue keeps them; `late` per tick index. */
function ticks(seconds: number, late: (i: number) => number = () => 8): VoxEvent[] {
  return Array.from({ length: seconds * 20 }, (_, i) => ({
    type: "health",
    ctx: CTX,
    frame: (i + 1) * 2400,
    render: late(i + 1),
  }));
}

Deno.test("audio rendering that fell behind real time in the window makes a turn unreliable", () => {
  const healthy = response();
  checkTurn(healthy, [...samples(5), ...ticks(5)], CTX, { final: true });
  assert.equal(healthy.ok, true);
  assert.equal(healthy.health?.render_ms, 8);
  const behind = response();
  // Tick 50 (2.5 s) saw rendering 220 ms behind; ticks and page samples interleave in arrival order.
  const mixed = [...samples(5), ...ticks(5, (i) => (i === 50 ? 220 : 8))].reverse();
  assert.equal(checkTurn(behind, mixed, CTX, { final: true, limits: ONE }), true);
  assert.match(behind.note!, /the audio rendering fell 220 ms behind real time/);
  // Before the window (1.0 s) it does not count.
  const before = response();
  checkTurn(before, [...samples(5), ...ticks(5, (i) => (i === 20 ? 220 : 8))], CTX, {
    final: true,
    limits: ONE,
  });
  assert.equal(before.ok, true);
});

Deno.test("a window no sample came after is held against the turn only once the run has ended", () => {
  const early = samples(2.5);
  const t = response();
  assert.equal(
    checkTurn(t, early, CTX, { final: false, limits: ONE }),
    false,
    "its sample may still be on its way",
  );
  assert.equal(t.ok, true);
  assert.equal(checkTurn(t, early, CTX, { final: true, limits: ONE }), true);
  assert.match(t.note!, /no health sample came after the turn/);
});

Deno.test("a turn marked while the call ran names what the final samples saw", () => {
  const t = response();
  const first = samples(2.5, (i, e) => i === 22 && (e.lag = 250));
  assert.equal(checkTurn(t, first, CTX, { final: false, limits: ONE }), true);
  assert.match(t.note!, /ran 250 ms late/);
  const all = samples(5, (i, e) => (i === 22 && (e.lag = 250)) || (i === 27 && (e.lag = 390)));
  assert.equal(checkTurn(t, all, CTX, { final: true, limits: ONE }), false, "already marked");
  assert.match(t.note!, /^unreliable: the page's thread ran 390 ms late .*not counted$/);
  assert.equal(t.health?.lag_ms, 390);
});

Deno.test("with the shipped limits one signal alone is not enough: a held-up page moves two or more", () => {
  const late = response();
  checkTurn(late, samples(5, (i, e) => i === 25 && (e.lag = 280)), CTX, { final: true });
  assert.equal(late.ok, true, "the page's thread alone");
  assert.equal(late.health?.lag_ms, 280);
  const slipped = response();
  checkTurn(slipped, samples(5, (i, e) => i >= 24 && (e.slip = 155 + 160)), CTX, { final: true });
  assert.equal(slipped.ok, true, "the audio clock alone");
  const uncovered = response();
  checkTurn(uncovered, samples(2.5), CTX, { final: true });
  assert.equal(uncovered.ok, true, "a late last sample alone");
  const held = response();
  checkTurn(
    held,
    samples(5, (i, e) => (i === 25 && (e.lag = 280)) || (i >= 25 && (e.slip = 155 + 160))),
    CTX,
    {
      final: true,
    },
  );
  assert.equal(held.unreliable, true);
  assert.match(held.note!, /^unreliable: the page's thread ran 280 ms late; the audio clock slipped 160 ms/);
  const h = windowHealth(samples(5), CTX, RATE, 2 * RATE, 2.9 * RATE)!;
  assert.equal(healthProblems({ ...h, lag_ms: 201, render_ms: 101 }).length, 2);
  assert.deepEqual(healthProblems({ ...h, lag_ms: 201 }), []);
});

Deno.test("turns without samples, without a latency, or already failed are left as they are", () => {
  const other = response();
  assert.equal(checkTurn(other, samples(5), CTX + 1, { final: true }), false);
  assert.equal(other.health, undefined);
  const failed: Turn = {
    ...response(),
    ok: false,
    latency_ms: null,
    agent_frame: undefined,
    note: "no reply",
  };
  assert.equal(checkTurn(failed, samples(5, (_i, e) => (e.lag = 900)), CTX, { final: true }), false);
  assert.equal(failed.note, "no reply");
  const early: Turn = {
    ...response(),
    ok: false,
    note: "the agent started talking before the caller had finished",
  };
  checkTurn(early, samples(5, (_i, e) => (e.lag = 900)), CTX, { final: true });
  assert.equal(early.unreliable, undefined);
  assert.match(early.note!, /before the caller had finished/);
});

Deno.test("the classifier's limits: at the limit is healthy, past it is not", () => {
  const h = windowHealth(samples(5), CTX, RATE, 2 * RATE, 2.9 * RATE)!;
  assert.equal(h.samples, 12, "1.9 s (100 ms lead) to the first sample at or after 2.9 s, and the one after");
  assert.deepEqual(healthProblems({ ...h, lag_ms: HEALTH_LIMITS.lagMs }, ONE), []);
  assert.equal(healthProblems({ ...h, lag_ms: HEALTH_LIMITS.lagMs + 1 }, ONE).length, 1);
  assert.deepEqual(healthProblems({ ...h, clock_slip_ms: HEALTH_LIMITS.slipMs }, ONE), []);
  assert.deepEqual(healthProblems({ ...h, render_ms: HEALTH_LIMITS.renderMs }, ONE), []);
  assert.equal(healthProblems({ ...h, render_ms: HEALTH_LIMITS.renderMs + 1 }, ONE).length, 1);
  assert.equal(healthProblems({ ...h, clock_slip_ms: HEALTH_LIMITS.slipMs + 1 }, ONE).length, 1);
  assert.equal(healthProblems({ ...h, underruns: null }, ONE).length, 0, "a Chromium without playbackStats");
});

Deno.test("the governor halves the concurrency on degradation, once per cool-down, and gives slots back one by one", () => {
  const g = new CapacityGovernor(8, { cooldownMs: 10_000, recoverMs: 60_000 });
  assert.deepEqual(g.degraded("x", 0), { from: 8, to: 4, reason: "x" });
  assert.equal(g.degraded("y", 5_000), null, "one overloaded moment reaches every call at once");
  assert.equal(g.capacity, 4);
  assert.deepEqual(g.degraded("z", 11_000), { from: 4, to: 2, reason: "z" });
  assert.equal(g.tick(60_000), null, "the last sign was at 11 s");
  assert.equal(g.tick(71_000)?.to, 3);
  assert.equal(g.tick(100_000), null, "one slot per recovery period");
  assert.equal(g.tick(131_000)?.to, 4);
  for (let t = 200_000; g.capacity < 8; t += 60_000) g.tick(t);
  assert.equal(g.tick(10_000_000), null, "never above the configured concurrency");
  for (let t = 0; t < 10; t++) g.degraded("again", 20_000_000 + t * 10_000);
  assert.equal(g.capacity, 1, "never below one");
  assert.equal(hostProblem({ loopLagMs: 40, stealPct: 0, load1: 9 }), null, "load alone is not judged");
  assert.match(
    hostProblem({ loopLagMs: 900, stealPct: 25, load1: 1 })!,
    /event loop stalled 900 ms; 25% of CPU/,
  );
});

Deno.test("the daemon accepts fewer jobs while its host is degraded, tells the server, and restores them", () => {
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const daemon = new EvalDaemon(
    daemonSettings({ concurrency: "4" }, {
      VOX_SERVER_URL: "https://vox.example",
      VOX_AGENT_TOKEN: "vox_agent_" + "a".repeat(40),
      VOX_AGENT_REGION: "eu-west",
    }),
    (level, message, fields) => logs.push({ level, message, fields }),
  );
  const sent: AgentMessageInput[] = [];
  daemon.conn.send = (m) => (sent.push(m), true);
  assert.equal(daemon.capacity, 4);
  daemon.observeHost({ loopLagMs: 20, stealPct: 0, load1: 1 }, 1_000);
  assert.equal(daemon.capacity, 4, "a healthy host keeps its concurrency");

  daemon.observeHost({ loopLagMs: 900, stealPct: 0, load1: 6 }, 2_000);
  assert.equal(daemon.capacity, 2);
  const warn = logs.find((l) => l.message.startsWith("host overloaded"));
  assert.ok(warn);
  assert.equal(warn.level, "warn");
  assert.deepEqual([warn.fields?.from, warn.fields?.to], [4, 2]);
  assert.match(String(warn.fields?.reason), /event loop stalled 900 ms/);
  assert.deepEqual(sent.at(-1), { type: "heartbeat", activeJobs: [], capacity: 2 });

  // Unreliable turns are a sign too; with two jobs held, a third offer is declined.
  daemon.measuredOverloaded("job 7: 3 of 6 turns measured on an overloaded host", 13_000);
  assert.equal(daemon.capacity, 1);
  for (const id of [1, 2]) daemon.jobs.set(id, { offer: { jobId: id } } as never);
  daemon.conn.opts.onMessage({ type: "job.offer", jobId: 3, attempt: 1 } as unknown as ServerMessage);
  const rejected = sent.at(-1) as { type: string; jobId: number; reason: string };
  assert.equal(rejected.type, "job.rejected");
  assert.equal(rejected.jobId, 3);
  assert.match(rejected.reason, /at capacity \(2\/1, lowered from 4 while the host is overloaded\)/);
  daemon.jobs.clear();

  daemon.observeHost({ loopLagMs: 10, stealPct: 0, load1: 1 }, 80_000);
  assert.equal(daemon.capacity, 2, "a healthy minute gives one slot back");
  assert.ok(logs.some((l) => l.message.startsWith("host healthy again") && l.fields?.to === 2));
  assert.deepEqual(sent.at(-1), { type: "heartbeat", activeJobs: [], capacity: 2 });
});

Deno.test("a result trimmed to fit its frame keeps each unreliable turn unreliable", () => {
  const turns: Turn[] = Array.from({ length: 3000 }, (_, i) => ({
    ...response(),
    ...(i % 2 ? { ok: false, unreliable: true } : {}),
    note: "x".repeat(200),
  }));
  const report = buildReport([{
    run: 1,
    app: "a.yaml",
    suite: "s.yaml",
    repetition: 1,
    ok: true,
    error: null,
    steps: [],
    turns,
    noise_checks: [],
    recording: null,
    sample_rate: 48000,
    naturalness: null,
  }], new Date());
  assert.match(report.notes.measurement_health, /^1500 turn\(s\) measured while the host was overloaded/);
  const out = resultReport(report, []);
  assert.equal(out.turns.length, 3000);
  assert.equal(out.turns[0].note, undefined, "trimmed");
  assert.deepEqual(out.turns.slice(0, 2), [
    { kind: "response", latency_ms: 900, ok: true },
    { kind: "response", latency_ms: 900, ok: false, unreliable: true },
  ]);
});
