// The reference agent's own voice detector (an AudioWorklet). It hears the microphone for
// endpointing and barge-in, and, for the element output paths, the agent's own voice as it
// leaves the page, so the agent's truth is stamped on its own audio clock.
/* global AudioWorkletProcessor, registerProcessor, currentFrame, sampleRate */
class AgentDetector extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    const ms = (v) => Math.max(1, Math.round((v * sampleRate) / 1000));
    this.theta = o.theta;
    this.confirm = ms(o.confirmMs);
    this.minCount = Math.round(this.confirm * o.minFraction);
    this.hold = ms(o.holdMs);
    // Reported once per segment when its voiced samples reach this far past its start.
    this.sustain = o.sustainMs > 0 ? ms(o.sustainMs) : 0;
    this.sustained = false;
    this.voiced = false;
    this.cand = -1;
    this.count = 0;
    this.candLast = -1;
    this.lastAbove = -1;
    this.segStart = -1;
  }
  process(inputs) {
    const input = inputs[0] ?? [];
    const n = input[0] ? input[0].length : 128;
    for (let i = 0; i < n; i++) {
      const f = currentFrame + i;
      let a = 0;
      for (let c = 0; c < input.length; c++) a = Math.max(a, Math.abs(input[c][i]));
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
            this.segStart = this.cand;
            this.sustained = false;
            this.port.postMessage({ type: "start", frame: this.cand });
          } else this.cand = -1;
        }
      } else if (a >= this.theta) {
        this.lastAbove = f;
        if (this.sustain && !this.sustained && f - this.segStart >= this.sustain) {
          this.sustained = true;
          this.port.postMessage({ type: "sustained", frame: f, segStart: this.segStart });
        }
      } else if (f - this.lastAbove >= this.hold) {
        this.voiced = false;
        this.cand = -1;
        this.port.postMessage({
          type: "end",
          frame: this.lastAbove,
          durationMs: ((this.lastAbove - this.segStart + 1) / sampleRate) * 1000,
        });
      }
    }
    return true;
  }
}
registerProcessor("agent-detector", AgentDetector);
