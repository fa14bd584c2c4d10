/**
 * The run report: per-turn records, the SPEC §7 summary at the top level, and how each metric
 * was computed.
 */
import { summarize, type Summary } from "./stats.ts";
import { NATURALNESS_METHOD } from "./naturalness.ts";
import { TURN_TAKING_METHOD, type TurnTaking, turnTaking } from "./turn_taking_metrics.ts";
import type { ReplayInfo } from "./replay.ts";
import type { SpeechRecord } from "./voices.ts";

/** Method versions recorded with every result. */
export const METHODS = {
  response_latency: "vox-audioclock-response/1",
  interrupt_latency: "vox-audioclock-interrupt/1",
  noise_reduction: "vox-noise/1",
  network_resilience: "vox-netem/2",
  naturalness: NATURALNESS_METHOD,
  turn_taking: TURN_TAKING_METHOD,
} as const;

/** One measured turn; the first three keys are the run-mode contract. */
export interface Turn {
  /** `pause`, `backchannel`, `background`: turn taking (agent/turn_taking.ts), not latencies. */
  kind: "response" | "interrupt" | "pause" | "backchannel" | "background";
  latency_ms: number | null;
  ok: boolean;
  run: number;
  file: string;
  step: number;
  noisy?: boolean;
  note?: string;
  caller_voiced_start_frame?: number;
  caller_voiced_end_frame?: number;
  caller_file_end_frame?: number;
  agent_frame?: number;
  sample_rate?: number;
  /** The host could not time this turn (e.g. its event loop stalled); excluded from the metrics. */
  unreliable?: boolean;
  /** Realtime calls: how stalled the event loop was when the agent frame's arrival was stamped, ms. */
  stall_ms?: number;
  /** Realtime: how late the caller's audio left while the turn was measured, ms (when it made the turn unreliable). */
  send_late_ms?: number;
  /**
   * Browser calls: what the page's health samples saw while the turn was measured (worst
   * lateness of the page's thread, movement of real time against the audio clock, playback
   * underruns; agent/measurement_health.ts). Past the limits the turn is `unreliable`.
   */
  health?: {
    lag_ms: number;
    render_ms: number | null;
    clock_slip_ms: number | null;
    underruns: number | null;
  };
  /** pause: the agent's voice started inside the caller's pause. */
  took_over?: boolean;
  /** pause: ms from the caller's last voiced sample before the pause to the agent's voice. */
  takeover_ms?: number | null;
  /** pause: the pause asked for, and the silence the caller really left (null: not resumed). */
  pause_ms?: number;
  pause_heard_ms?: number | null;
  /** backchannel: the agent's voice stopped within stop_window_ms (null: it was not talking). */
  stopped?: boolean | null;
  /** backchannel: ms from the backchannel's first voiced sample to the end of the agent's voice. */
  stop_latency_ms?: number | null;
  /** background: the bystander's speech got a reply, or stopped the agent. */
  triggered?: boolean;
  stopped_agent?: boolean;
}

/** A noise-only segment and whether the agent answered it. */
export interface NoiseCheck {
  run: number;
  file: string;
  step: number;
  triggered: boolean;
  stopped_agent?: boolean;
}

/** What happened to one step. */
export interface StepRecord {
  file: string;
  step: number;
  /** 1-based position among all the run's steps (application steps, then scenario steps). */
  index?: number;
  action: string;
  ok: boolean;
  elapsed_ms: number;
  metrics?: Record<string, number>;
  error?: string;
}

/** One repetition of an application × scenario. */
export interface RunRecord {
  run: number;
  app: string;
  suite: string;
  repetition: number;
  ok: boolean;
  error: RunErrorInfo | null;
  steps: StepRecord[];
  turns: Turn[];
  noise_checks: NoiseCheck[];
  recording: string | null;
  sample_rate: number | null;
  /** Audio-clock frame of the recording's first sample (turn frames minus this index the WAV). */
  recording_first_frame?: number;
  naturalness: number | null;
  collected?: unknown;
  /** Wall-clock ms from the run's start to the end of its steps (before recordings are saved). */
  duration_ms?: number;
  /** `--record`: the tab's video (webm). */
  video?: string;
  /** 1 for the first try; `--retries` runs a failed repetition again as attempt 2, 3 … */
  attempt?: number;
  /** Browser calls: the measurement health of its turns (agent/measurement_health.ts). */
  health?: RunHealth;
  /** A Realtime application's call: effective turn_detection, barge-in policy, playback (agent/realtime). */
  realtime?: Record<string, unknown>;
}

/** A run that has not measured anything yet (its runner fills it in). */
export function newRunRecord(run: number, app: string, suite: string, repetition: number): RunRecord {
  return {
    run,
    app,
    suite,
    repetition,
    ok: false,
    error: null,
    steps: [],
    turns: [],
    noise_checks: [],
    recording: null,
    sample_rate: null,
    naturalness: null,
  };
}

/** A browser call's measurement health: turns judged, turns marked, the worst each signal reached. */
export interface RunHealth {
  turns_checked: number;
  unreliable_turns: number;
  worst_lag_ms: number | null;
  worst_render_ms: number | null;
  worst_clock_slip_ms: number | null;
  underruns: number | null;
}

/** Where a run failed. */
export interface RunErrorInfo {
  message: string;
  file: string;
  step: number | null;
  action: string | null;
}

/** The JSON report (SPEC §7 run-mode contract at the top level). */
export interface Report {
  metrics: {
    response_latency: Summary;
    interrupt_latency: Summary;
    network_resilience: number | null;
    noise_reduction: number | null;
    naturalness: number | null;
    /** Turn taking (vox-turntaking/1): rates 0..1, null when the scenario has no such turns. */
    turn_taking?: TurnTaking;
  };
  turns: Turn[];
  methods: Record<string, string>;
  notes: Record<string, string>;
  ok: boolean;
  errors: RunErrorInfo[];
  noise_checks: NoiseCheck[];
  runs: Omit<RunRecord, "turns" | "noise_checks">[];
  /** `--retries`: failed attempts that a later attempt of the same run replaced. */
  retried?: Omit<RunRecord, "turns" | "noise_checks">[];
  /** Per network profile: its score and the latency under it (present when profiles ran). */
  network?: NetworkResult[];
  /** The runs under network profiles (their turns are summed up in `network`, not in `turns`). */
  network_runs?: Omit<RunRecord, "turns" | "noise_checks">[];
  /** Every synthesized utterance: engine, voice, text, key and the SHA-256 of its audio. */
  speech?: SpeechRecord[];
  /** Present when the run replayed a stored result's speech (agent/replay.ts). */
  replay?: ReplayInfo;
  started_at: string;
  finished_at: string;
  version: 1;
}

/** One network profile's outcome. */
export interface NetworkResult {
  profile: string;
  score: number | null;
  response_latency: Summary;
  turns_ok: number;
  turns: number;
  error?: string;
  /** How the profile was applied: `netem` (kernel qdisc) or `relay` (user-space delay lines). */
  method?: "netem" | "relay";
  /** The profile's values per direction, presets resolved. */
  links?: {
    up: { delay_ms: number; jitter_ms: number; loss_pct: number; rate_kbit: number };
    down: { delay_ms: number; jitter_ms: number; loss_pct: number; rate_kbit: number };
  };
  interrupt_latency?: Summary;
  /** Impaired median − clean median, ms (null when either is missing). */
  response_latency_change_ms?: number | null;
  interrupt_latency_change_ms?: number | null;
  /** Failed turns under the profile and in the clean runs. */
  turns_failed?: number;
  clean_turns_failed?: number;
  /** What a UDP probe saw through the same delay lines just before the runs (method relay). */
  probe?: { rtt_median_ms: number | null; rtt_sd_ms: number | null; loss_pct: number; sent: number };
  /** Notes on what the profile could not impair (e.g. WebRTC without coturn). */
  note?: string;
}

/** Aggregates runs into the report. */
export function buildReport(runs: RunRecord[], startedAt: Date, extraErrors: RunErrorInfo[] = []): Report {
  const turns = runs.flatMap((r) => r.turns);
  const noiseChecks = runs.flatMap((r) => r.noise_checks);
  const latencies = (kind: Turn["kind"]) =>
    turns.filter((t) => t.kind === kind && t.ok && t.latency_ms != null).map((t) => t.latency_ms!);
  const notes: Record<string, string> = {};
  const nat = runs.map((r) => r.naturalness).filter((x): x is number => x != null);
  const naturalnessScore = nat.length
    ? Math.round((nat.reduce((a, b) => a + b, 0) / nat.length) * 10) / 10
    : null;
  if (naturalnessScore == null) notes.naturalness = "no agent speech was recorded";
  const noise = noiseReduction(turns, noiseChecks);
  if (noise == null) notes.noise_reduction = "the scenario has no noisy turns and no noise-only segments";
  notes.network_resilience = "the scenario defines no network profiles";
  const unreliable = turns.filter((t) => t.unreliable).length;
  if (unreliable > 0) {
    notes.measurement_health = `${unreliable} turn(s) measured while the host was overloaded, not counted`;
  }
  const errors = [...extraErrors, ...runs.map((r) => r.error).filter((e): e is RunErrorInfo => e != null)];
  return {
    metrics: {
      response_latency: summarize(latencies("response")),
      interrupt_latency: summarize(latencies("interrupt")),
      network_resilience: null,
      noise_reduction: noise,
      naturalness: naturalnessScore,
      turn_taking: turnTaking(turns),
    },
    turns,
    methods: { ...METHODS },
    notes,
    ok: errors.length === 0 && runs.length > 0,
    errors,
    noise_checks: noiseChecks,
    runs: runs.map(({ turns: _t, noise_checks: _n, ...rest }) => rest),
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    version: 1,
  };
}

/**
 * Noise reduction (0–100), method vox-noise/1: the mean of one score per noisy response turn
 * (answered: the clean median latency divided by its latency, capped at 1; unanswered: 0) and
 * one per noise-only segment (1 when the agent neither replied nor stopped, else 0).
 */
export function noiseReduction(turns: Turn[], checks: NoiseCheck[]): number | null {
  const clean = turns.filter((t) => t.kind === "response" && !t.noisy && t.ok && t.latency_ms != null);
  const cleanMedian = summarize(clean.map((t) => t.latency_ms!)).median;
  const scores: number[] = [];
  for (const t of turns.filter((t) => t.kind === "response" && t.noisy)) {
    if (!t.ok || t.latency_ms == null) scores.push(0);
    else if (cleanMedian == null || t.latency_ms <= 0) scores.push(1);
    else scores.push(Math.min(1, cleanMedian / t.latency_ms));
  }
  for (const c of checks) scores.push(c.triggered || c.stopped_agent ? 0 : 1);
  if (scores.length === 0) return null;
  return Math.round((scores.reduce((a, b) => a + b, 0) / scores.length) * 1000) / 10;
}
