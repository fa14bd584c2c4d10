// The Vox meter: AudioWorklet processors installed in an AudioContext of the page under test.
// `vox-mic` produces the caller's microphone signal and `vox-meter` watches the tapped agent
// output and the microphone in the same render quanta, so both sides are stamped with frame
// numbers of one audio clock. Voice detection runs per sample; events carry frames, not times.
/* global AudioWorkletProcessor, registerProcessor, currentFrame, sampleRate */

// Voice activity: a voiced segment starts at the first sample with |x| >= theta when at least
// minCount such samples follow within the confirm window, and ends at the last sample >= theta
// once `hold` samples below theta have passed. The same definition is used offline on
// utterance buffers (see hooks.js `segments`), so injected and played speech are comparable.
// Captured when this module loads, before any module the page adds to the same worklet scope:
// a page that replaces MessagePort.prototype.postMessage later cannot rewrite the meter's events.
const post = Function.prototype.call.bind(MessagePort.prototype.postMessage);

class Detector {
  constructor(theta, confirm, minCount, hold) {
    this.theta = theta;
    this.confirm = confirm;
    this.minCount = minCount;
    this.hold = hold;
    this.voiced = false;
    this.cand = -1;
    this.count = 0;
    this.candLast = -1;
    this.lastAbove = -1;
  }
  // Returns ["start", frame] | ["end", frame] | null.
  step(a, f) {
    if (!this.voiced) {
      if (a >= this.theta) {
        if (this.cand < 0) {
          this.cand = f;
          this.count = 0;
        }
        this.count++;
        this.candLast = f;
      }
      if (this.cand >= 0 && f - this.cand + 1 >= this.confirm) {
        if (this.count >= this.minCount) {
          this.voiced = true;
          this.lastAbove = this.candLast;
          return ["start", this.cand];
        }
        this.cand = -1;
      }
      return null;
    }
    if (a >= this.theta) this.lastAbove = f;
    else if (f - this.lastAbove >= this.hold) {
      this.voiced = false;
      this.cand = -1;
      return ["end", this.lastAbove];
    }
    return null;
  }
}

// The caller's microphone: utterances and background noise, sample by sample. It has no input,
// so a page graph that feeds its output back into the meter can never form a cycle with it.
class VoxMic extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.background = null;
    // Frame of the last voiced sample of recent utterances, for one held after a pause.
    this.voicedEnds = new Map();
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "utterance") this.queue.push({ ...m, pos: 0, startFrame: -1 });
      else if (m.type === "background") this.background = m.pcm ? { pcm: m.pcm, pos: 0, gain: 1 } : null;
    };
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const n = output[0].length;
    for (let i = 0; i < n; i++) {
      const f = currentFrame + i;
      let mic = 0;
      let u = this.queue[0];
      // An utterance held for a caller's pause starts afterMs after the last voiced sample of
      // utterance afterId (its own first voiced sample lands there), never earlier.
      if (u && u.pos === 0 && u.afterId != null) {
        if (u.notBefore == null) {
          const end = this.voicedEnds.get(u.afterId);
          u.notBefore = end == null
            ? f
            : end + Math.round((u.afterMs * sampleRate) / 1000) - Math.max(0, u.voicedStart);
        }
        if (f < u.notBefore) u = undefined;
      }
      if (u) {
        if (u.pos === 0) {
          u.startFrame = f;
          // Background noise given as an SNR follows each utterance's speech level.
          if (u.bgGain != null && this.background) this.background.gain = u.bgGain;
          post(this.port, { type: "utt_start", id: u.id, frame: f });
        }
        mic += u.pcm[u.pos++];
        if (u.pos >= u.pcm.length) {
          this.queue.shift();
          this.voicedEnds.set(u.id, u.voicedEnd >= 0 ? u.startFrame + u.voicedEnd : f);
          if (this.voicedEnds.size > 8) this.voicedEnds.delete(this.voicedEnds.keys().next().value);
          post(this.port, {
            type: "utt_end",
            id: u.id,
            startFrame: u.startFrame,
            endFrame: f + 1,
            voicedStart: u.voicedStart >= 0 ? u.startFrame + u.voicedStart : -1,
            voicedEnd: u.voicedEnd >= 0 ? u.startFrame + u.voicedEnd : -1,
          });
        }
      }
      const bg = this.background;
      if (bg) {
        mic += bg.pcm[bg.pos] * bg.gain;
        bg.pos = (bg.pos + 1) % bg.pcm.length;
      }
      for (let c = 0; c < output.length; c++) output[c][i] = mic;
    }
    return true;
  }
}

// The meter: input 0 is the tapped agent output, input 1 the microphone signal. Both are seen
// in the same render quantum, so their frame numbers share one clock.
class VoxMeter extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    const ms = (v) => Math.max(1, Math.round((v * sampleRate) / 1000));
    this.out = new Detector(
      o.theta,
      ms(o.confirmMs),
      Math.round(ms(o.confirmMs) * o.minFraction),
      ms(o.holdMs),
    );
    this.recordChunk = ms(100);
    this.recL = new Float32Array(this.recordChunk);
    this.recR = new Float32Array(this.recordChunk);
    this.recPos = 0;
    this.recStart = -1;
    this.tickEvery = ms(50);
    this.nextTick = 0;
    // Rendering against real time (measurement health, agent/measurement_health.ts): how far
    // the wall clock has run ahead of this context's frames, over the least it has been. A
    // healthy render thread keeps it within one output callback; one the host starves falls
    // behind and then renders in a burst. The worst of each tick period goes with the tick.
    // The floor creeps up 0.5 ms per second so a device clock slower than the wall's is not
    // taken for lateness.
    this.floor = Infinity;
    this.worstLate = 0;
    this.port.onmessage = (e) => {
      if (e.data.type === "hold") this.out.hold = ms(e.data.holdMs);
    };
  }

  process(inputs) {
    const agent = inputs[0] ?? [];
    const mic = inputs[1] ?? [];
    const n = 128;
    const base = currentFrame;
    const behind = Date.now() - (base * 1000) / sampleRate;
    this.floor = Math.min(behind, this.floor + (n * 500) / sampleRate);
    if (behind - this.floor > this.worstLate) this.worstLate = behind - this.floor;
    for (let i = 0; i < n; i++) {
      const f = base + i;
      let a = 0;
      let played = 0;
      for (let c = 0; c < agent.length; c++) {
        const x = agent[c][i];
        const ax = x < 0 ? -x : x;
        if (ax > a) {
          a = ax;
          played = x;
        }
      }
      const ev = this.out.step(a, f);
      if (ev) post(this.port, { type: ev[0] === "start" ? "voice_start" : "voice_end", frame: ev[1] });
      if (this.recStart < 0) this.recStart = f;
      this.recL[this.recPos] = mic.length > 0 ? mic[0][i] : 0;
      this.recR[this.recPos] = played;
      if (++this.recPos === this.recordChunk) this.flush();
    }
    if (base + n >= this.nextTick) {
      this.nextTick = base + n + this.tickEvery;
      post(this.port, { type: "tick", frame: base + n, voiced: this.out.voiced, late: this.worstLate });
      this.worstLate = 0;
    }
    return true;
  }

  flush() {
    post(this.port, {
      type: "rec",
      frame: this.recStart,
      left: this.recL.slice(0, this.recPos),
      right: this.recR.slice(0, this.recPos),
    });
    this.recPos = 0;
    this.recStart = -1;
  }
}

registerProcessor("vox-mic", VoxMic);
registerProcessor("vox-meter", VoxMeter);
