/**
 * One repetition of a Realtime application × scenario (no browser): opens a call
 * (`call.ts`), runs the scenario's audio steps on it, times the turns on the played audio with
 * the browser path's definitions, and returns the same RunRecord (turns, steps, stereo
 * recording with caller left and agent right, naturalness) plus `realtime`: the call's
 * diagnostics (effective turn_detection, barge-in policy, underruns, delivery speed, …).
 */
import { join } from "node:path";
import { encodeWav, synthesize } from "../audio.ts";
import { type LoadedConfig, resolveAudio } from "../config.ts";
import type { RealtimeSpec, Step } from "../format.ts";
import { naturalness } from "../naturalness.ts";
import { newRunRecord, type RunRecord, type StepRecord, type Turn } from "../report.ts";
import type { RunOptions } from "../runner.ts";
import { CallError, RealtimeCall, type SentUtterance } from "./call.ts";
import { decodeWav, resample } from "./codec.ts";
import { voicedSpan } from "./detector.ts";

/** Scenario actions a Realtime call can run (it has no page to click, type or screenshot). */
export const REALTIME_ACTIONS = [
  "speak",
  "wait_for_voice",
  "wait_for_silence",
  "barge_in",
  "sleep",
  "listen",
];

/** Method versions of the Realtime path's latencies (the report's `methods`). */
export const REALTIME_METHODS = {
  response_latency: "vox-realtime-playback-response/1",
  interrupt_latency: "vox-realtime-playback-interrupt/1",
};

/**
 * A turn whose agent-side instant was stamped while this process's event loop had stalled
 * longer than this (ms) is not reported ok: the host was too busy to time it (issue 19 item 3).
 */
export const MAX_STALL_MS = 3;

/**
 * A turn during which a caller chunk left later than this (ms) after its deadline is not reported
 * ok either: the server heard the caller that much later than the call's timeline says, and the
 * reply can move by as much. A healthy process sends within ~3 ms (p99); measured: a chunk 7.5 ms
 * late after a caller's end of speech moved a response by 7.5 ms (8.6 ms off the truth, a CI run;
 * the limit was 15 ms then), one 24 ms late moved one by 7.8 ms, one 10.9 ms late by 1.1 ms. The
 * 5 ms target less the ~1 ms this path reads on a healthy host leaves 4 ms.
 */
export const MAX_SEND_LATE_MS = 4;

/**
 * Marks a measured turn unreliable when the arrival that placed its agent frame was stamped late,
 * or when the caller's audio left late between the caller's speech and the agent's answer.
 */
function checkHealth(call: RealtimeCall, turn: Turn): Turn {
  if (!turn.ok || turn.agent_frame === undefined) return turn;
  const from = turn.kind === "interrupt" ? turn.caller_voiced_start_frame : turn.caller_voiced_end_frame;
  const late = typeof from === "number" ? call.sendLateBetween(from, turn.agent_frame) : 0;
  if (late > MAX_SEND_LATE_MS) {
    return {
      ...turn,
      ok: false,
      unreliable: true,
      send_late_ms: late,
      note: `unreliable: the caller's audio left ${late} ms late while this turn was measured ` +
        `(host overloaded); not counted`,
    };
  }
  const stall = call.stallAt(turn.agent_frame);
  if (stall <= MAX_STALL_MS) return { ...turn, stall_ms: stall };
  return {
    ...turn,
    ok: false,
    unreliable: true,
    stall_ms: stall,
    note: `unreliable: the agent's event loop had stalled ${stall} ms when the agent's audio arrived ` +
      `(host overloaded); not counted`,
  };
}

/** Where a step failed. */
class StepFailure extends Error {
  constructor(message: string, readonly file: string, readonly step: number, readonly action: string) {
    super(message);
  }
}

interface Utt extends SentUtterance {
  file: string;
  step: number;
  responded: boolean;
}

/** Speech of a speak/barge_in step at the call's rate, with its voiced span. */
async function speechOf(config: LoadedConfig, step: Step, rate: number) {
  let bytes: Uint8Array;
  if (typeof step.text === "string") bytes = await synthesize(step.text, (step.voice as string) ?? "en-us");
  else {
    const path = await resolveAudio(config, step.file as string);
    if (!path) throw new Error(`audio file not found: ${step.file}`);
    bytes = await Deno.readFile(path);
  }
  const pcm = decodeWav(bytes);
  const samples = resample(pcm.samples, pcm.rate, rate);
  if (typeof step.gain_db === "number") {
    const g = Math.pow(10, step.gain_db / 20);
    for (let i = 0; i < samples.length; i++) samples[i] *= g;
  }
  const voiced = voicedSpan(samples, rate);
  if (voiced.first < 0) throw new Error("the utterance holds no voiced sample above -40 dBFS");
  return { samples, voiced };
}

/** Runs one repetition on a Realtime endpoint; never throws. */
export async function runRealtimeOnce(
  app: LoadedConfig & { realtime: RealtimeSpec },
  suite: LoadedConfig,
  run: number,
  repetition: number,
  options: RunOptions & { outDir: string; secrets?: Record<string, string> },
): Promise<RunRecord> {
  const progress = options.onProgress ?? (() => {});
  const began = performance.now();
  const stepTimeout = options.stepTimeoutMs ?? 30_000;
  const record = newRunRecord(run, app.path, suite.path, repetition);
  const steps: StepRecord[] = [];
  const turns: Turn[] = [];
  const call = new RealtimeCall(app.realtime, {
    secrets: options.secrets,
    egress: options.egress,
    signal: options.signal,
    progress,
    holdMs: suite.silenceMs,
  });
  let last: Utt | null = null;
  let lastVoiceStart: number | null = null;
  const consumed = new Set<number>();
  const base = (u: Utt) => ({
    run,
    file: u.file,
    step: u.step,
    caller_voiced_start_frame: u.voicedStart,
    caller_voiced_end_frame: u.voicedEnd,
    caller_file_end_frame: u.endSample,
    sample_rate: call.rate,
  });
  const hold = () => Math.round((((suite.silenceMs ?? 400) as number) * call.rate) / 1000);
  const agentVoicedAt = (frame: number) => {
    let start = -1;
    for (const e of call.edges) if (e.type === "voice_start" && e.frame <= frame) start = e.frame;
    if (start < 0) return false;
    const end = call.edges.find((e) => e.type === "voice_end" && e.frame >= start);
    return !end || frame <= end.frame + hold();
  };

  const speak = async (
    config: LoadedConfig,
    step: Step,
    n: number,
    bargeIn: boolean,
    stopTimeoutMs: number,
  ) => {
    const { samples, voiced } = await speechOf(config, step, call.rate);
    const sent = await call.say(samples, voiced, bargeIn);
    const u: Utt = { ...sent, file: config.path, step: n, responded: false };
    last = u;
    // Let the detector pass the utterance's first voiced sample before asking whether the agent talked over it.
    call.advance();
    if (!agentVoicedAt(u.voicedStart)) return u;
    // A barge-in: the agent's voice must stop within stopTimeoutMs of the caller's first voiced sample.
    const limit = u.voicedStart + Math.round((stopTimeoutMs / 1000) * call.rate);
    let segment = 0;
    for (const e of call.edges) if (e.type === "voice_start" && e.frame <= u.voicedStart) segment = e.frame;
    const end = await call.until(
      () => {
        const e = call.edges.find((e) => e.type === "voice_end" && e.frame >= segment);
        if (e) return e;
        if (call.played > limit + call.rate) return null;
        return undefined;
      },
      stopTimeoutMs + stepTimeout,
      "the agent to stop talking after the barge-in",
    );
    const turn: Turn = end && end.frame <= limit
      ? {
        kind: "interrupt",
        latency_ms: call.ms(end.frame - u.voicedStart),
        ok: true,
        agent_frame: end.frame,
        ...base(u),
      }
      : {
        kind: "interrupt",
        latency_ms: null,
        ok: false,
        note:
          `the agent did not stop within ${stopTimeoutMs} ms of the barge-in (policy ${app.realtime.barge_in})`,
        ...base(u),
      };
    turns.push(checkHealth(call, turn));
    progress(`    barge-in: ${turn.ok ? `agent stopped after ${turn.latency_ms} ms` : turn.note}`);
    return u;
  };

  const waitForVoice = async (timeout: number) => {
    const u: Utt | null = last && !(last as Utt).responded ? last : null;
    if (!u) {
      const i = await call.until(
        () => {
          const i = call.edges.findIndex((e, i) => e.type === "voice_start" && !consumed.has(i));
          return i >= 0 ? i : undefined;
        },
        timeout,
        "the agent's voice",
      );
      consumed.add(i);
      lastVoiceStart = call.edges[i].frame;
      return;
    }
    u.responded = true;
    let i: number;
    try {
      i = await call.until(
        () => {
          const i = call.edges.findIndex((e) => e.type === "voice_start" && e.frame >= u.voicedStart);
          return i >= 0 ? i : undefined;
        },
        timeout,
        "the agent's reply",
      );
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const why = call.failure ??
        (call.serverVad && call.speechStopped === 0
          ? "no reply: the server never sent input_audio_buffer.speech_stopped (its VAD did not detect the end of the caller's speech)"
          : "no reply");
      turns.push({ kind: "response", latency_ms: null, ok: false, note: why, ...base(u) });
      throw new CallError(`${(err as Error).message}; ${why}`);
    }
    call.edges.forEach((e, j) => {
      if (e.type === "voice_start" && j <= i) consumed.add(j);
    });
    const e = call.edges[i];
    lastVoiceStart = e.frame;
    const latency = call.ms(e.frame - u.voicedEnd);
    const early = latency < 0;
    turns.push(checkHealth(call, {
      kind: "response",
      latency_ms: latency,
      ok: !early,
      agent_frame: e.frame,
      ...(early ? { note: "the agent started talking before the caller had finished" } : {}),
      ...base(u),
    }));
    progress(`    response latency ${latency} ms`);
  };

  const waitForSilence = (timeout: number) =>
    call.until(
      () =>
        call.edges.find((e) =>
          e.type === "voice_end" && (lastVoiceStart === null || e.frame >= lastVoiceStart)
        ),
      timeout,
      "the agent to fall silent",
    );

  try {
    for (const [i, step] of suite.steps.entries()) {
      if (!REALTIME_ACTIONS.includes(step.action)) {
        throw new StepFailure(
          `${step.action} is not available on a Realtime application (it has no page); use ${
            REALTIME_ACTIONS.join(", ")
          }`,
          suite.path,
          i + 1,
          step.action,
        );
      }
    }
    try {
      await call.open();
    } catch (err) {
      throw new StepFailure((err as Error).message, app.path, 0, "open");
    }
    progress(
      `  connected (${app.realtime.dialect}, ${app.realtime.format}); turn_detection ${
        JSON.stringify(call.turnDetection ?? null)
      }`,
    );
    for (const [i, step] of suite.steps.entries()) {
      const n = i + 1;
      if (options.signal?.aborted) throw new StepFailure("the job was cancelled", suite.path, n, step.action);
      progress(`  ${suite.name} step ${n}: ${step.action}`);
      options.onStep?.({
        run,
        step: n,
        totalSteps: suite.steps.length,
        message: `${suite.name} step ${n}: ${step.action}`,
      });
      const turnsBefore = turns.length;
      const t = performance.now();
      const timeout = typeof step.timeout === "number" ? step.timeout : stepTimeout;
      let extra: Record<string, number> | undefined;
      try {
        switch (step.action) {
          case "speak":
            await speak(suite, step, n, false, 2000);
            break;
          case "wait_for_voice":
            await waitForVoice(timeout);
            break;
          case "wait_for_silence":
            await waitForSilence(timeout);
            break;
          case "listen": {
            await waitForVoice(timeout);
            const start = lastVoiceStart!;
            const end = await waitForSilence(timeout);
            extra = { reply_ms: call.ms(end.frame - start) };
            break;
          }
          case "barge_in": {
            if (!call.agentTalking) {
              await call.until(
                () => (call.agentTalking ? true : undefined),
                timeout,
                "the agent to talk before the barge-in",
              );
            }
            const after = typeof step.after_ms === "number" ? step.after_ms : 300;
            if (after > 0) await new Promise((r) => setTimeout(r, after));
            const stop = typeof step.stop_timeout_ms === "number" ? step.stop_timeout_ms : 2000;
            const before = turns.length;
            const u = await speak(suite, step, n, true, stop);
            if (turns.length === before) {
              turns.push({
                kind: "interrupt",
                latency_ms: null,
                ok: false,
                note: "the agent had already stopped when the barge-in speech began",
                ...base(u),
              });
            }
            break;
          }
          case "sleep": {
            // The microphone keeps sending silence; a server that hangs up meanwhile ends the run.
            const until = performance.now() + (step.time as number);
            await call.until(
              () => (performance.now() >= until ? true : undefined),
              (step.time as number) + 5000,
              "",
            );
            break;
          }
        }
        const failed = call.failure;
        if (failed) throw new CallError(failed);
        const elapsed = Math.round(performance.now() - t);
        const rec: StepRecord = {
          file: suite.path,
          step: n,
          index: n,
          action: step.action,
          ok: true,
          elapsed_ms: elapsed,
        };
        const wanted = step.metrics as string | string[] | undefined;
        if (wanted && wanted.length > 0) {
          rec.metrics = {};
          if (wanted.includes("elapsed_time")) rec.metrics.elapsed_time = elapsed;
          for (const [k, v] of Object.entries(extra ?? {})) if (wanted.includes(k)) rec.metrics[k] = v;
        }
        steps.push(rec);
        for (const turn of turns.slice(turnsBefore)) {
          options.onStep?.({
            run,
            step: n,
            totalSteps: suite.steps.length,
            message: `${turn.kind} turn`,
            turn,
          });
        }
      } catch (err) {
        const message = (err as Error).message.split("\n")[0];
        steps.push({
          file: suite.path,
          step: n,
          index: n,
          action: step.action,
          ok: false,
          elapsed_ms: Math.round(performance.now() - t),
          error: message,
        });
        throw new StepFailure(message, suite.path, n, step.action);
      }
    }
    record.ok = true;
  } catch (err) {
    if (err instanceof StepFailure) {
      record.error = { message: err.message, file: err.file, step: err.step || null, action: err.action };
    } else record.error = { message: (err as Error).message, file: app.path, step: null, action: null };
  } finally {
    record.duration_ms = Math.round(performance.now() - began);
    await call.close();
    record.turns = turns;
    record.steps = steps;
    record.realtime = call.info();
    if (call.t0) {
      try {
        const path = join(
          options.outDir,
          `${safeName(app.name)}__${safeName(suite.name)}__run${run}-${Date.now().toString(36)}.wav`,
        );
        await Deno.writeFile(path, encodeWav(call.recording(), call.rate, 2));
        record.recording = path;
        record.sample_rate = call.rate;
        record.recording_first_frame = 0;
        record.naturalness = await naturalness(path);
      } catch (err) {
        progress(`    recording could not be saved: ${(err as Error).message}`);
      }
    }
  }
  return record;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "_");
}
