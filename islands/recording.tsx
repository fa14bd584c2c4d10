/// <reference lib="dom" />
// The call recording of a result: the stereo WAV drawn as two lanes (caller = left channel
// above, agent = right channel below) on one time axis, with every measured response and
// interrupt marked as an interval labelled with its latency, and a player that plays both
// lanes or either one. Clicking an interval seeks to a second before it. Without JavaScript
// the page still has the audio element, its download and the list of intervals.
import { useEffect, useRef, useState } from "preact/hooks";

/** A measured turn as the result stores it (agent/report.ts Turn). */
export interface RecordingTurn {
  [key: string]: unknown;
  kind: "response" | "interrupt";
  latency_ms: number | null;
  ok: boolean;
  run?: number;
  step?: number;
  note?: string;
  caller_voiced_start_frame?: number;
  caller_voiced_end_frame?: number;
  agent_frame?: number;
  sample_rate?: number;
}

export interface RecordingProps {
  [key: string]: unknown;
  src: string;
  turns: RecordingTurn[];
  /** The page audio clock's frame at the recording's first sample, and its rate. */
  firstFrame: number;
  sampleRate: number | null;
}

interface Mark {
  kind: "response" | "interrupt";
  start: number;
  end: number;
  label: string;
  ok: boolean;
}

/** Where each measured turn sits in the recording, in seconds. */
export function marksOf(turns: RecordingTurn[], firstFrame: number, fallbackRate: number | null): Mark[] {
  const out: Mark[] = [];
  for (const t of turns) {
    const rate = t.sample_rate ?? fallbackRate;
    const from = t.kind === "response" ? t.caller_voiced_end_frame : t.caller_voiced_start_frame;
    if (!rate || from === undefined || t.agent_frame === undefined) continue;
    const start = (from - firstFrame) / rate;
    const end = (t.agent_frame - firstFrame) / rate;
    if (!(end >= start) || start < 0) continue;
    out.push({
      kind: t.kind,
      start,
      end,
      ok: t.ok,
      label: t.latency_ms === null ? (t.ok ? "—" : "failed") : `${Math.round(t.latency_ms)} ms`,
    });
  }
  return out;
}

type Lane = "both" | "caller" | "agent";

function drawLane(canvas: HTMLCanvasElement, data: Float32Array, color: string) {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.max(1, Math.floor(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.floor(canvas.clientHeight * dpr));
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext("2d");
  if (!g) return;
  g.clearRect(0, 0, w, h);
  g.fillStyle = color;
  const per = data.length / w;
  for (let x = 0; x < w; x++) {
    let peak = 0;
    const a = Math.floor(x * per), b = Math.min(data.length, Math.floor((x + 1) * per));
    for (let i = a; i < b; i++) {
      const v = Math.abs(data[i]);
      if (v > peak) peak = v;
    }
    const bar = Math.max(1, peak * h);
    g.fillRect(x, (h - bar) / 2, 1, bar);
  }
}

export default function Recording(props: RecordingProps) {
  const audio = useRef<HTMLAudioElement>(null);
  const callerCanvas = useRef<HTMLCanvasElement>(null);
  const agentCanvas = useRef<HTMLCanvasElement>(null);
  const graph = useRef<{ ctx: AudioContext; caller: GainNode; agent: GainNode } | null>(null);
  const [duration, setDuration] = useState<number | null>(null);
  const [state, setState] = useState<"loading" | "ready" | "error">("loading");
  const [lane, setLane] = useState<Lane>("both");
  const [time, setTime] = useState(0);
  const [playSrc, setPlaySrc] = useState<string | null>(null);
  const marks = marksOf(props.turns, props.firstFrame, props.sampleRate);

  useEffect(() => {
    let gone = false;
    (async () => {
      try {
        const res = await fetch(props.src, { credentials: "same-origin" });
        if (!res.ok) throw new Error(`recording: ${res.status}`);
        const bytes = await res.arrayBuffer();
        // Played from memory: seeking needs a seekable source, and the bytes are here anyway.
        if (!gone) setPlaySrc(URL.createObjectURL(new Blob([bytes], { type: "audio/wav" })));
        const buf = await new OfflineAudioContext(2, 1, 44100).decodeAudioData(bytes);
        if (gone) return;
        setDuration(buf.duration);
        const left = buf.getChannelData(0);
        const right = buf.numberOfChannels > 1 ? buf.getChannelData(1) : left;
        const draw = () => {
          if (callerCanvas.current) drawLane(callerCanvas.current, left, "#6d6dfa");
          if (agentCanvas.current) drawLane(agentCanvas.current, right, "#22c3a6");
        };
        draw();
        globalThis.addEventListener("resize", draw);
        setState("ready");
      } catch {
        if (!gone) setState("error");
      }
    })();
    return () => {
      gone = true;
    };
  }, [props.src]);

  // Routing for "caller only"/"agent only": split the stereo element into its channels and
  // send the chosen one to both ears. Built on first use (a user gesture), then reused.
  const route = (next: Lane) => {
    setLane(next);
    const el = audio.current;
    if (!el) return;
    if (!graph.current) {
      const ctx = new AudioContext();
      const source = ctx.createMediaElementSource(el);
      const split = ctx.createChannelSplitter(2);
      const merge = ctx.createChannelMerger(2);
      const caller = ctx.createGain(), agent = ctx.createGain();
      source.connect(split);
      split.connect(caller, 0);
      split.connect(agent, 1);
      for (const g of [caller, agent]) {
        g.connect(merge, 0, 0);
        g.connect(merge, 0, 1);
      }
      merge.connect(ctx.destination);
      graph.current = { ctx, caller, agent };
    }
    const { ctx, caller, agent } = graph.current;
    void ctx.resume();
    // Both lanes: each channel to both ears at half gain keeps the mix's loudness.
    caller.gain.value = next === "agent" ? 0 : next === "both" ? 0.5 : 1;
    agent.gain.value = next === "caller" ? 0 : next === "both" ? 0.5 : 1;
  };

  const seek = (t: number) => {
    const el = audio.current;
    if (!el) return;
    el.currentTime = Math.max(0, t - 1);
    void el.play().catch(() => {});
  };

  const pct = (t: number) => duration ? `${Math.min(100, (t / duration) * 100)}%` : "0%";

  return (
    <div class="c-rec" data-testid="recording" data-state={state}>
      <div class="c-rec-lanes" aria-hidden={state !== "ready"}>
        <div class="c-lane">
          <span class="c-lane-label">Caller</span>
          <canvas ref={callerCanvas} class="c-wave" data-lane="caller" />
        </div>
        <div class="c-lane">
          <span class="c-lane-label">Agent</span>
          <canvas ref={agentCanvas} class="c-wave" data-lane="agent" />
        </div>
        {duration !== null && marks.map((m, i) => (
          <button
            type="button"
            key={i}
            class={`c-mark c-mark-${m.kind}${m.ok ? "" : " c-mark-failed"}`}
            style={{ left: pct(m.start), width: `max(3px, calc(${pct(m.end)} - ${pct(m.start)}))` }}
            data-start={m.start.toFixed(3)}
            data-end={m.end.toFixed(3)}
            title={`${m.kind} ${m.label}`}
            aria-label={`${m.kind} at ${m.start.toFixed(1)} s: ${m.label}; play from just before`}
            onClick={() => seek(m.start)}
          >
            <span class="c-mark-label">{m.label}</span>
          </button>
        ))}
        {duration !== null && <span class="c-playhead" style={{ left: pct(time) }} />}
      </div>
      {state === "loading" && <p class="muted small">Loading the waveform…</p>}
      {state === "error" && (
        <p class="error-box">
          The recording could not be drawn; it can still be played.
        </p>
      )}
      <div class="c-rec-controls">
        <audio
          ref={audio}
          controls
          preload="metadata"
          src={playSrc ?? props.src}
          onTimeUpdate={(e) => setTime((e.currentTarget as HTMLAudioElement).currentTime)}
        />
        <div class="seg c-lane-pick" role="group" aria-label="Play which lane">
          {(["both", "caller", "agent"] as Lane[]).map((l) => (
            <button
              type="button"
              key={l}
              class={lane === l ? "on" : undefined}
              aria-pressed={lane === l}
              onClick={() => route(l)}
            >
              {l === "both" ? "Both" : l === "caller" ? "Caller" : "Agent"}
            </button>
          ))}
        </div>
      </div>
      <ul class="c-marks-list">
        {marks.map((m, i) => (
          <li key={i}>
            {m.kind} at {m.start.toFixed(2)} s → {m.end.toFixed(2)} s: {m.label}
          </li>
        ))}
        {marks.length === 0 && (
          <li class="muted">
            This recording has no measured intervals with positions.
          </li>
        )}
      </ul>
    </div>
  );
}
