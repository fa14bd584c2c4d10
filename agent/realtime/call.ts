/**
 * One call to an OpenAI-Realtime-protocol WebSocket agent, measured the way a caller hears it
 * (docs/agent.md "Realtime applications"). There is no audio device: the caller's microphone
 * is a sender that appends 20 ms chunks on absolute deadlines (chunk k leaves at
 * t0 + (k+1)·20 ms, when a microphone would have delivered it) and keeps appending silence
 * between utterances, so the server's VAD keeps running. The caller's timeline is counted in
 * samples at the session's rate: sample s was "said" at t0 + s/rate.
 *
 * The agent's audio arrives faster than real time, so what the caller hears is a playback
 * model: delta i arriving at a_i plays from max(end of the previous delta, a_i + jitter
 * buffer when playback had run dry), rendered into the agent channel at the caller timeline's
 * sample indexes; a gap in the middle of a response is an underrun. The browser path's voice
 * detector runs on that channel as the played position passes, and the turns are timed on it
 * exactly as in the browser (response: caller's last voiced sample → agent's first;
 * interrupt: caller's first voiced sample → agent's last).
 *
 * Barge-in policy `faithful` (a well-behaved client): on `speech_started` or a cancelled
 * `response.done`, whichever comes first, playback is flushed at once, later audio of that
 * response is dropped, `conversation.item.truncate` says how much was played and, when the
 * server does not cancel by itself (interrupt_response false, or no server VAD),
 * `response.cancel` is sent. `dumb_speaker` never flushes: everything received is played.
 *
 * Both dialects' event names are accepted (beta `response.audio.delta` and GA
 * `response.output_audio.delta`, …); the session is configured in the dialect the config names.
 */
import { checkDestination, type EgressPolicy } from "../egress.ts";
import type { RealtimeSpec } from "../format.ts";
import { decode, encode, rateOf, type WireFormat } from "./codec.ts";
import { Detector, type VoiceEdge } from "./detector.ts";

/** Caller chunk length, in ms. */
export const CHUNK_MS = 20;
/** The detector's tick, ms; also the event loop's heartbeat for the stall estimate. */
const TICK_MS = 5;
/** Events kept in the call's log (the log is a diagnostic, not the measurement). */
const MAX_LOG = 2000;

/** Beta event names → GA names (research notes §1). */
const GA_NAME: Record<string, string> = {
  "response.audio.delta": "response.output_audio.delta",
  "response.audio.done": "response.output_audio.done",
  "response.audio_transcript.delta": "response.output_audio_transcript.delta",
  "response.audio_transcript.done": "response.output_audio_transcript.done",
  "response.text.delta": "response.output_text.delta",
  "response.text.done": "response.output_text.done",
  "conversation.item.created": "conversation.item.added",
};

/** The GA format object of a wire format. */
function gaFormat(format: WireFormat): Record<string, unknown> {
  return format === "pcm16"
    ? { type: "audio/pcm", rate: 24000 }
    : { type: format === "g711_ulaw" ? "audio/pcmu" : "audio/pcma" };
}

/** An utterance as sent: where it lies on the caller's timeline, in samples. */
export interface SentUtterance {
  startSample: number;
  endSample: number;
  /** First and last voiced sample (absolute), −1 when none. */
  voicedStart: number;
  voicedEnd: number;
}

interface Pending {
  samples: Float32Array;
  pos: number;
  voiced: { first: number; last: number };
  startSample: number;
  done: (u: SentUtterance) => void;
  fail: (e: Error) => void;
  /** Client-side barge-in (no server VAD): flush when its first voiced sample leaves. */
  bargeIn: boolean;
}

interface Response {
  id: string;
  itemId: string | null;
  /** Samples received and scheduled (before any flush). */
  received: number;
  /** Sample index where its first delta plays. */
  firstPos: number | null;
  firstArrival: number | null;
  lastArrival: number | null;
  done: string | null;
  flushed: boolean;
  dropped: number;
  segments: { start: number; n: number }[];
}

/** What a call noticed that is not a turn: the diagnostics kept with the run (`run.realtime`). */
export type CallInfo = {
  url: string;
  dialect: "ga" | "beta";
  format: WireFormat;
  sample_rate: number;
  barge_in_policy: "faithful" | "dumb_speaker";
  jitter_buffer_ms: number;
  /** turn_detection as the server echoed it in session.updated (what was in effect). */
  turn_detection: unknown;
  session_confirmed: boolean;
  chunks_sent: number;
  /** How late chunks left against their deadlines, ms. */
  send_lateness_ms: { p50: number; p99: number; max: number };
  underruns: number;
  underrun_ms: number;
  responses: {
    id: string;
    status: string | null;
    audio_ms: number;
    flushed: boolean;
    dropped_deltas: number;
    /** Audio received per wall-clock ms of delivery (1 = real time). */
    delivery_speed: number | null;
  }[];
  speech_started: number;
  speech_stopped: number;
  truncations: number;
  idle_timeouts: number;
  server_errors: string[];
  closed: { code: number; reason: string; mid_reply: boolean } | null;
};

/** A call ended or failed in a way the steps cannot continue from; the message says why. */
export class CallError extends Error {
  override name = "CallError";
}

/** Growable float buffer indexed by caller-timeline sample. */
class Track {
  data = new Float32Array(24000 * 10);
  length = 0;
  ensure(n: number) {
    if (n <= this.data.length) return;
    let size = this.data.length;
    while (size < n) size *= 2;
    const next = new Float32Array(size);
    next.set(this.data);
    this.data = next;
  }
  write(at: number, samples: Float32Array) {
    this.ensure(at + samples.length);
    this.data.set(samples, at);
    this.length = Math.max(this.length, at + samples.length);
  }
  clear(from: number, to: number) {
    if (to > from) this.data.fill(0, from, Math.min(to, this.data.length));
  }
  at(i: number): number {
    return i < this.data.length ? this.data[i] : 0;
  }
}

/**
 * This process's event loop as the calls see it (one loop serves every call): when the last
 * callback of ours ended, and since when callbacks have run back to back. A message handled
 * right after another callback may have waited behind it, so its timestamp is uncertain by
 * up to the busy stretch.
 */
const loop = { lastEnd: 0, busySince: 0 };
/** A gap shorter than this between two callbacks means the loop did not go idle in between. */
const IDLE_GAP_MS = 0.3;

function enterLoop(at: number): number {
  if (at - loop.lastEnd > IDLE_GAP_MS) loop.busySince = at;
  return at - loop.busySince;
}

function leaveLoop(): void {
  loop.lastEnd = performance.now();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connected, measured Realtime call. `open()`, then `say()` and the waits, then `close()`. */
export class RealtimeCall {
  readonly format: WireFormat;
  readonly rate: number;
  readonly chunk: number;
  readonly caller = new Track();
  readonly agent = new Track();
  /** Voice edges of the agent's played audio, in caller-timeline samples. */
  readonly edges: VoiceEdge[] = [];
  /** Diagnostic log of server events: type and arrival (ms since t0). */
  readonly log: { type: string; at: number }[] = [];
  t0 = 0;
  turnDetection: unknown = undefined;
  #ws: WebSocket | null = null;
  #queue: Pending[] = [];
  #k = 0;
  #lateness: number[] = [];
  /** The first caller frame of each chunk sent, beside #lateness. */
  #chunkStarts: number[] = [];
  #stopped = false;
  #pump: Promise<void> | null = null;
  #detector: Detector;
  #detectedUpTo = 0;
  #playEnd = 0;
  #responses = new Map<string, Response>();
  #current: Response | null = null;
  #underruns = 0;
  #underrunMs = 0;
  #counts = { speech_started: 0, speech_stopped: 0, truncations: 0, idle_timeouts: 0 };
  #errors: string[] = [];
  #closed: CallInfo["closed"] = null;
  #sessionConfirmed = false;
  #ready: { resolve: () => void; reject: (e: Error) => void } | null = null;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #lastTick = 0;
  /** How long the loop had been busy when the message being handled was taken up. */
  #busy = 0;
  #lastGap = 0;
  /**
   * Where a played position was derived from a wall-clock arrival (a delta after playback ran
   * dry, a flush), with how stalled this process's event loop was when it handled that
   * arrival: the arrival time, and so the position, may be late by up to that much.
   */
  readonly anchors: { pos: number; stallMs: number }[] = [];

  constructor(
    readonly spec: RealtimeSpec,
    readonly options: {
      secrets?: Record<string, string>;
      egress?: EgressPolicy;
      signal?: AbortSignal;
      progress?: (line: string) => void;
      /** How long a pause may last inside one agent segment (the detector's hold). */
      holdMs?: number;
      /** ms to wait for the socket and session.updated. */
      connectTimeoutMs?: number;
    } = {},
  ) {
    this.format = spec.format;
    this.rate = rateOf(spec.format);
    this.chunk = (this.rate * CHUNK_MS) / 1000;
    this.#detector = new Detector(this.rate, options.holdMs);
  }

  /** ms of caller-timeline samples. */
  ms(samples: number): number {
    return Math.round((samples / this.rate) * 1000 * 100) / 100;
  }

  /** The caller-timeline position (fractional sample) of wall-clock `t`. */
  pos(t: number): number {
    return ((t - this.t0) * this.rate) / 1000;
  }

  /** Connects, configures the session and starts the microphone. Throws CallError with the reason. */
  async open(): Promise<void> {
    const spec = this.spec;
    const url = new URL(spec.url);
    if (this.options.egress) {
      const port = Number(url.port) || (url.protocol === "wss:" ? 443 : 80);
      try {
        await checkDestination(this.options.egress, url.hostname, port, url.pathname);
      } catch (err) {
        throw new CallError((err as Error).message);
      }
    }
    const headers: Record<string, string> = {};
    if (spec.auth) {
      const key = this.options.secrets?.[spec.auth.secret];
      if (key === undefined) {
        throw new CallError(
          `the workflow has no secret named ${spec.auth.secret} (realtime.auth.secret); set it with ` +
            `PUT /api/v1/workflows/{id}/secrets/${spec.auth.secret} (run mode: VOX_SECRET_${spec.auth.secret})`,
        );
      }
      headers[spec.auth.header] = spec.auth.scheme ? `${spec.auth.scheme} ${key}` : key;
    }
    if (spec.dialect === "beta") headers["OpenAI-Beta"] = "realtime=v1";
    const timeout = this.options.connectTimeoutMs ?? 15_000;
    const ready = new Promise<void>((resolve, reject) => {
      this.#ready = { resolve, reject };
    });
    let ws: WebSocket;
    try {
      ws = new WebSocket(spec.url, { headers } as unknown as string[]);
    } catch (err) {
      throw new CallError(`cannot connect to ${url.origin}${url.pathname}: ${(err as Error).message}`);
    }
    this.#ws = ws;
    ws.onopen = () => this.#send({ type: "session.update", session: this.#sessionUpdate() });
    ws.onmessage = (ev) => {
      const at = performance.now();
      this.#busy = enterLoop(at);
      try {
        this.#onMessage(ev.data, at);
      } finally {
        leaveLoop();
      }
    };
    ws.onerror = (ev) => {
      const msg = (ev as ErrorEvent).message || "WebSocket error";
      this.#ready?.reject(new CallError(`cannot connect to ${url.origin}${url.pathname}: ${msg}`));
    };
    ws.onclose = (ev) => this.#onClose(ev.code, ev.reason);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        ready,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new CallError(
                  `no session.updated from ${url.origin}${url.pathname} within ${timeout} ms of connecting`,
                ),
              ),
            timeout,
          );
        }),
      ]);
    } catch (err) {
      try {
        ws.close();
      } catch { /* already closed */ }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.t0 = performance.now();
    this.#pump = this.#run();
    this.#lastTick = performance.now();
    this.#ticker = setInterval(() => {
      const now = performance.now();
      enterLoop(now);
      this.#lastGap = now - this.#lastTick;
      this.#lastTick = now;
      this.advance();
      leaveLoop();
    }, TICK_MS);
  }

  #sessionUpdate(): Record<string, unknown> {
    const spec = this.spec;
    const td = spec.turn_detection;
    if (spec.dialect === "beta") {
      return {
        modalities: ["audio", "text"],
        input_audio_format: spec.format,
        output_audio_format: spec.format,
        ...(td !== undefined ? { turn_detection: td } : {}),
        ...(spec.model ? { model: spec.model } : {}),
        ...spec.session,
      };
    }
    return {
      type: "realtime",
      ...(spec.model ? { model: spec.model } : {}),
      output_modalities: ["audio"],
      audio: {
        input: { format: gaFormat(spec.format), ...(td !== undefined ? { turn_detection: td } : {}) },
        output: { format: gaFormat(spec.format) },
      },
      ...spec.session,
    };
  }

  #send(event: Record<string, unknown>): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(event));
    return true;
  }

  /** Whether the server's VAD drives the turns (false: the caller commits and asks for replies). */
  get serverVad(): boolean {
    return this.turnDetection !== null;
  }

  get #interruptsItself(): boolean {
    const td = this.turnDetection as { interrupt_response?: boolean } | null | undefined;
    return td != null && td.interrupt_response !== false;
  }

  #onMessage(data: unknown, at: number): void {
    if (typeof data !== "string") return;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(data);
    } catch {
      return;
    }
    const type = GA_NAME[ev.type as string] ?? (ev.type as string);
    if (this.log.length < MAX_LOG) this.log.push({ type, at: Math.round((at - this.t0) * 100) / 100 });
    switch (type) {
      case "session.updated": {
        const s = (ev.session ?? {}) as Record<string, unknown>;
        const input = ((s.audio as Record<string, unknown> | undefined)?.input ?? {}) as Record<
          string,
          unknown
        >;
        this.turnDetection = "turn_detection" in input
          ? input.turn_detection
          : "turn_detection" in s
          ? s.turn_detection
          : this.turnDetection;
        this.#sessionConfirmed = true;
        this.#ready?.resolve();
        return;
      }
      case "session.created": {
        const s = (ev.session ?? {}) as Record<string, unknown>;
        const input = ((s.audio as Record<string, unknown> | undefined)?.input ?? {}) as Record<
          string,
          unknown
        >;
        if (this.turnDetection === undefined) {
          this.turnDetection = input.turn_detection ?? s.turn_detection ?? undefined;
        }
        return;
      }
      case "error": {
        const e = (ev.error ?? {}) as { message?: string; code?: string; type?: string };
        const msg = `${e.code ?? e.type ?? "error"}: ${String(e.message ?? "").slice(0, 300)}`;
        if (this.#errors.length < 50) this.#errors.push(msg);
        if (!this.#sessionConfirmed) {
          this.#ready?.reject(new CallError(`the server refused the session: ${msg}`));
        }
        return;
      }
      case "input_audio_buffer.speech_started":
        this.#counts.speech_started++;
        if (this.spec.barge_in === "faithful") this.#flush(at, "speech_started");
        return;
      case "input_audio_buffer.speech_stopped":
        this.#counts.speech_stopped++;
        return;
      case "input_audio_buffer.timeout_triggered":
        this.#counts.idle_timeouts++;
        return;
      case "conversation.item.truncated":
        this.#counts.truncations++;
        return;
      case "response.created": {
        const r = (ev.response ?? {}) as { id?: string };
        this.#responseOf(r.id ?? `r${this.#responses.size + 1}`);
        return;
      }
      case "response.output_item.added": {
        const item = (ev.item ?? {}) as { id?: string };
        const r = this.#responseOf(ev.response_id as string | undefined);
        if (r && !r.itemId && item.id) r.itemId = item.id;
        return;
      }
      case "response.output_audio.delta":
        return this.#onDelta(ev, at);
      case "response.done": {
        const r = (ev.response ?? {}) as { id?: string; status?: string };
        const resp = this.#responseOf(r.id);
        if (resp) resp.done = r.status ?? "completed";
        if (r.status === "cancelled" && this.spec.barge_in === "faithful") this.#flush(at, "response.done");
        return;
      }
    }
  }

  #responseOf(id: string | undefined): Response {
    if (id && this.#responses.has(id)) return this.#responses.get(id)!;
    if (!id && this.#current) return this.#current;
    const r: Response = {
      id: id ?? `r${this.#responses.size + 1}`,
      itemId: null,
      received: 0,
      firstPos: null,
      firstArrival: null,
      lastArrival: null,
      done: null,
      flushed: false,
      dropped: 0,
      segments: [],
    };
    this.#responses.set(r.id, r);
    this.#current = r;
    return r;
  }

  #onDelta(ev: Record<string, unknown>, at: number): void {
    const r = this.#responseOf(ev.response_id as string | undefined);
    if (!r.itemId && typeof ev.item_id === "string") r.itemId = ev.item_id;
    if (r.flushed) {
      r.dropped++;
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(String(ev.delta ?? "")), (c) => c.charCodeAt(0));
    } catch {
      this.#errors.push("a response audio delta was not base64");
      return;
    }
    const samples = decode(this.format, bytes);
    if (samples.length === 0) return;
    const arrive = Math.ceil(this.pos(at));
    let start: number;
    if (this.#playEnd >= arrive) start = this.#playEnd;
    else {
      this.anchors.push({ pos: arrive, stallMs: this.#stall(at) });
      // Playback ran dry: the jitter buffer refills before it starts again.
      start = arrive + Math.round((this.spec.jitter_buffer_ms * this.rate) / 1000);
      if (r.firstPos !== null && r.done === null) {
        this.#underruns++;
        this.#underrunMs += this.ms(arrive - this.#playEnd);
      }
    }
    this.agent.write(start, samples);
    r.segments.push({ start, n: samples.length });
    r.received += samples.length;
    r.firstPos ??= start;
    r.firstArrival ??= at;
    r.lastArrival = at;
    this.#playEnd = start + samples.length;
  }

  // How late the event loop may have handled an arrival at `at`: past its next tick, or, right
  // after a tick that ended a long gap (the process did not run, or was busy), that gap — the
  // message may have waited through it. Conservative: a healthy loop scores about 0.
  #stall(at: number): number {
    const sinceTick = at - this.#lastTick;
    const stall = Math.max(
      sinceTick - TICK_MS,
      sinceTick < TICK_MS ? this.#lastGap - TICK_MS : 0,
      this.#busy,
    );
    return Math.max(0, Math.round(stall * 100) / 100);
  }

  /**
   * The most any caller chunk overlapping caller frames [from, to] left after its deadline, ms:
   * a chunk sent late reaches the server late, and the server's view of the caller (its VAD, its
   * reply timing) moves by that much against the call's own timeline.
   */
  sendLateBetween(from: number, to: number): number {
    let worst = 0;
    for (let i = 0; i < this.#chunkStarts.length; i++) {
      const start = this.#chunkStarts[i];
      if (start + this.chunk <= from || start > to) continue;
      worst = Math.max(worst, this.#lateness[i]);
    }
    return Math.round(worst * 100) / 100;
  }

  /** The stall of the anchor a played sample's position came from (0 when none). */
  stallAt(frame: number): number {
    let stall = 0;
    for (const a of this.anchors) if (a.pos <= frame + 2) stall = a.stallMs;
    return stall;
  }

  /** Stops playback at wall-clock `at` (faithful barge-in): drops what was not played yet. */
  #flush(at: number, why: string): void {
    const cut = Math.ceil(this.pos(at));
    const r = this.#current;
    if (!r || r.flushed || this.#playEnd <= cut) return;
    r.flushed = true;
    this.anchors.push({ pos: cut, stallMs: this.#stall(at) });
    this.agent.clear(cut, this.#playEnd);
    this.#playEnd = cut;
    let played = 0;
    for (const s of r.segments) played += Math.max(0, Math.min(s.n, cut - s.start));
    const playedMs = Math.floor((Math.min(played, r.received) / this.rate) * 1000);
    if (r.itemId) {
      this.#send({
        type: "conversation.item.truncate",
        item_id: r.itemId,
        content_index: 0,
        audio_end_ms: playedMs,
      });
    }
    if (r.done === null && !this.#interruptsItself) {
      this.#send({ type: "response.cancel", response_id: r.id });
    }
    this.options.progress?.(`    flushed playback on ${why} after ${playedMs} ms of the reply`);
  }

  #onClose(code: number, reason: string): void {
    this.#stopped = true;
    if (this.#ending && !this.#closed) return;
    if (this.#closed?.code === 0) {
      // Seen closing before the event: keep what was known then, add the code.
      this.#closed = { ...this.#closed, code, reason: reason.slice(0, 200) };
      this.#ready?.reject(new CallError(`the server closed the connection (code ${code})`));
      return;
    }
    this.#closed = { code, reason: reason.slice(0, 200), mid_reply: this.#midReply };
    this.#ready?.reject(
      new CallError(`the server closed the connection (code ${code}${reason ? `: ${reason}` : ""})`),
    );
    this.#stopped = true;
  }

  /** Why the call cannot go on (closed by the server), or null. */
  get failure(): string | null {
    let c = this.#closed;
    const ws = this.#ws;
    // The close frame may be in before the close event (a busy loop, a client still sending).
    if (!c && !this.#ending && this.t0 && ws && ws.readyState !== WebSocket.OPEN) {
      c = this.#closed = { code: 0, reason: "", mid_reply: this.#midReply };
    }
    if (!c) return null;
    const how = c.code ? ` (code ${c.code}${c.reason ? `: ${c.reason}` : ""})` : "";
    return c.mid_reply
      ? `the Realtime server closed the connection mid-reply${how} after ${
        this.ms(this.#current!.received)
      } ms of reply audio`
      : `the Realtime server closed the connection${how}`;
  }

  get #midReply(): boolean {
    const r = this.#current;
    return !!r && !r.flushed && r.done === null && r.received > 0;
  }
  #ending = false;

  // The microphone: one chunk per deadline, utterances first, silence otherwise.
  async #run(): Promise<void> {
    try {
      await this.#microphone();
    } finally {
      // Utterances still queued never reach the server: their steps fail with the reason.
      const why = this.failure ??
        (this.options.signal?.aborted ? "the job was cancelled" : "the call has ended");
      for (const u of this.#queue.splice(0)) u.fail(new CallError(why));
    }
  }

  async #microphone(): Promise<void> {
    while (!this.#stopped && !this.options.signal?.aborted) {
      const deadline = this.t0 + (this.#k + 1) * CHUNK_MS;
      for (let now = performance.now(); now < deadline; now = performance.now()) {
        await sleep(Math.max(1, Math.ceil(deadline - now)));
        if (this.#stopped) return;
      }
      const woke = performance.now();
      enterLoop(woke);
      this.#lateness.push(woke - deadline);
      const base = this.#k * this.chunk;
      this.#chunkStarts.push(base);
      const out = new Float32Array(this.chunk);
      let filled = 0;
      const finished: Pending[] = [];
      let bargeAt = false;
      while (filled < this.chunk && this.#queue.length > 0) {
        const u = this.#queue[0];
        if (u.pos === 0) u.startSample = base + filled;
        const n = Math.min(this.chunk - filled, u.samples.length - u.pos);
        out.set(u.samples.subarray(u.pos, u.pos + n), filled);
        if (u.bargeIn && u.voiced.first >= u.pos && u.voiced.first < u.pos + n) bargeAt = true;
        u.pos += n;
        filled += n;
        if (u.pos >= u.samples.length) finished.push(this.#queue.shift()!);
      }
      this.caller.write(base, out);
      this.#send({ type: "input_audio_buffer.append", audio: b64(encode(this.format, out)) });
      this.#k++;
      // No server VAD: the caller's own barge-in detection flushes and cancels.
      if (bargeAt && !this.serverVad && this.spec.barge_in === "faithful") {
        this.#flush(performance.now(), "the caller's speech");
      }
      for (const u of finished) {
        if (!this.serverVad) {
          this.#send({ type: "input_audio_buffer.commit" });
          this.#send({ type: "response.create" });
        }
        const abs = (i: number) => (i < 0 ? -1 : u.startSample + i);
        u.done({
          startSample: u.startSample,
          endSample: u.startSample + u.samples.length,
          voicedStart: abs(u.voiced.first),
          voicedEnd: abs(u.voiced.last),
        });
      }
      leaveLoop();
    }
  }

  /** Queues an utterance into the microphone; resolves once its last sample was sent. */
  say(
    samples: Float32Array,
    voiced: { first: number; last: number },
    bargeIn = false,
  ): Promise<SentUtterance> {
    if (this.#stopped || this.options.signal?.aborted) {
      return Promise.reject(new CallError(this.failure ?? "the call has ended"));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ samples, pos: 0, voiced, startSample: -1, done: resolve, fail: reject, bargeIn });
    });
  }

  /** Runs the detector over the agent's audio up to what has been played by now. */
  advance(): void {
    if (!this.t0) return;
    const upTo = Math.floor(this.pos(performance.now()));
    for (let f = this.#detectedUpTo; f < upTo; f++) {
      const e = this.#detector.step(this.agent.at(f), f);
      if (e) this.edges.push(e);
    }
    this.#detectedUpTo = Math.max(this.#detectedUpTo, upTo);
  }

  /** Samples of agent audio the detector has passed (the played position). */
  get played(): number {
    return this.#detectedUpTo;
  }

  /** Whether the agent's voice is on (a segment started and has not ended) as far as played. */
  get agentTalking(): boolean {
    return this.#detector.voiced;
  }

  /**
   * Polls `fn` every 5 ms (advancing the detector) until it returns a value; throws after
   * `timeoutMs` naming `what`, or at once when the call failed or the job was cancelled.
   */
  async until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      this.advance();
      const v = fn();
      if (v !== undefined) return v;
      if (this.options.signal?.aborted) throw new CallError("the job was cancelled");
      const failed = this.failure;
      if (failed) throw new CallError(failed);
      if (performance.now() > end) throw new CallError(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(5);
    }
  }

  /** Whether the server ever signalled the end of the caller's speech (diagnostics). */
  get speechStopped(): number {
    return this.#counts.speech_stopped;
  }

  /** Stops the microphone and closes the socket. */
  async close(): Promise<void> {
    this.#ending = true;
    this.advance();
    this.#stopped = true;
    clearInterval(this.#ticker);
    await this.#pump?.catch(() => {});
    try {
      this.#ws?.close(1000, "call ended");
    } catch { /* already closed */ }
  }

  /** The stereo recording (caller left, agent right) as interleaved PCM16 at the session's rate. */
  recording(): Uint8Array {
    const n = Math.max(this.caller.length, this.#detectedUpTo);
    const out = new Uint8Array(n * 4);
    const v = new DataView(out.buffer);
    const s16 = (x: number) => Math.round(Math.max(-1, Math.min(1, x)) * 32767);
    for (let i = 0; i < n; i++) {
      v.setInt16(i * 4, s16(this.caller.at(i)), true);
      v.setInt16(i * 4 + 2, s16(this.agent.at(i)), true);
    }
    return out;
  }

  /** The call's diagnostics for the run record. */
  info(): CallInfo {
    const late = [...this.#lateness].sort((a, b) => a - b);
    const q = (p: number) =>
      late.length ? Math.round(late[Math.min(late.length - 1, Math.floor(p * late.length))] * 100) / 100 : 0;
    const url = new URL(this.spec.url);
    return {
      url: `${url.origin}${url.pathname}`,
      dialect: this.spec.dialect,
      format: this.format,
      sample_rate: this.rate,
      barge_in_policy: this.spec.barge_in,
      jitter_buffer_ms: this.spec.jitter_buffer_ms,
      turn_detection: this.turnDetection ?? null,
      session_confirmed: this.#sessionConfirmed,
      chunks_sent: this.#k,
      send_lateness_ms: {
        p50: q(0.5),
        p99: q(0.99),
        max: late.length ? Math.round(late[late.length - 1] * 100) / 100 : 0,
      },
      underruns: this.#underruns,
      underrun_ms: Math.round(this.#underrunMs * 100) / 100,
      responses: [...this.#responses.values()].map((r) => {
        const span = r.firstArrival !== null && r.lastArrival !== null ? r.lastArrival - r.firstArrival : 0;
        const audioMs = this.ms(r.received);
        const lastDelta = r.segments.length ? this.ms(r.segments[r.segments.length - 1].n) : 0;
        return {
          id: r.id,
          status: r.done,
          audio_ms: audioMs,
          flushed: r.flushed,
          dropped_deltas: r.dropped,
          // Audio before the last delta over the time it took to arrive.
          delivery_speed: span > 0 ? Math.round(((audioMs - lastDelta) / span) * 10) / 10 : null,
        };
      }),
      speech_started: this.#counts.speech_started,
      speech_stopped: this.#counts.speech_stopped,
      truncations: this.#counts.truncations,
      idle_timeouts: this.#counts.idle_timeouts,
      server_errors: this.#errors,
      closed: this.#closed,
    };
  }
}

function b64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
