// deno-lint-ignore-file no-window
// A reference voice agent whose behaviour is set by query parameters and whose truth (when it
// really spoke, stopped, heard the caller) is kept on its own AudioContext clock in
// window.__truth. Output paths: Web Audio, <audio src>, <audio srcObject> fed by a real
// RTCPeerConnection loopback.
(() => {
  const q = new URLSearchParams(location.search);
  const num = (k, d) => (q.has(k) ? Number(q.get(k)) : d);
  const cfg = {
    out: q.get("out") ?? "webaudio",
    delayMs: num("delay", 800),
    endpointMs: num("endpoint", 250),
    stop: q.get("stop") === "never" ? null : num("stop", 300),
    theta: Math.pow(10, num("vad_db", -40) / 20),
    minSpeechMs: num("min_speech_ms", 150),
    greet: q.get("greet") === "1",
    autostart: q.get("autostart") !== "0",
    shadow: q.get("shadow") === "1",
    // split=1: hear the caller in one AudioContext and speak through a second one.
    split: q.get("split") === "1",
  };
  const truth = [];
  window.__agentConfig = cfg;
  const status = (s) => (document.getElementById("status").textContent = s);
  const DET = { confirmMs: 30, minFraction: 0.25 };

  let ctx, sr, reply, greeting, el, dest, monitor, voiceBus, playCtx;
  let speaking = null; // { startFrame, endFrame, node, voiceStart, buffer, kind }

  // First and last voiced samples of a buffer with the detector's definition.
  function voicedRange(data, theta) {
    const confirm = Math.max(1, Math.round((DET.confirmMs * sr) / 1000));
    const minCount = Math.round(confirm * DET.minFraction);
    let first = -1;
    for (let f = 0; f < data.length && first < 0; f++) {
      if (Math.abs(data[f]) < theta) continue;
      let count = 0;
      for (let k = f; k < Math.min(data.length, f + confirm); k++) if (Math.abs(data[k]) >= theta) count++;
      if (count >= minCount) first = f;
    }
    return first;
  }
  function lastVoicedBefore(data, idx, theta) {
    for (let i = Math.min(idx, data.length) - 1; i >= 0; i--) if (Math.abs(data[i]) >= theta) return i;
    return -1;
  }
  const frameNow = () => Math.round(ctx.currentTime * sr);
  // Wall-clock time at which a context frame is rendered (used by the element paths only).
  function perfAt(frame) {
    return performance.now() + ((frame - frameNow()) / sr) * 1000;
  }
  async function load(url) {
    return await ctx.decodeAudioData(await (await fetch(url)).arrayBuffer());
  }

  function makeDetector(holdMs, theta) {
    return new AudioWorkletNode(ctx, "agent-detector", {
      processorOptions: { theta, holdMs, ...DET },
    });
  }

  async function setupOutput() {
    // One bus for every reply, kept busy by a silent source: when the bus fell idle the
    // WebRTC sender stopped sending, and the last packet of an interrupted reply came out of
    // the receiver's jitter buffer as a 20 ms burst when the next reply was wired in.
    playCtx = cfg.split ? new AudioContext({ sampleRate: sr }) : ctx;
    voiceBus = playCtx.createGain();
    const idle = playCtx.createConstantSource();
    idle.offset.value = 0;
    idle.connect(voiceBus);
    idle.start();
    if (cfg.out === "webaudio") voiceBus.connect(playCtx.destination);
    if (cfg.out === "src") {
      el = document.createElement("audio");
      el.preload = "auto";
      el.src = "reply.wav";
      (cfg.shadow ? document.getElementById("host").attachShadow({ mode: "open" }) : document.body)
        .appendChild(el);
      await new Promise((r) =>
        el.readyState >= 4 ? r() : el.addEventListener("canplaythrough", r, { once: true })
      );
    } else if (cfg.out === "srcobject") {
      dest = ctx.createMediaStreamDestination();
      const pc1 = new RTCPeerConnection();
      const pc2 = new RTCPeerConnection();
      pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
      pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
      const remote = new Promise((r) => (pc2.ontrack = (e) => r(e.streams[0] ?? new MediaStream([e.track]))));
      voiceBus.connect(dest);
      for (const t of dest.stream.getAudioTracks()) pc1.addTrack(t, dest.stream);
      await pc1.setLocalDescription(await pc1.createOffer());
      await pc2.setRemoteDescription(pc1.localDescription);
      await pc2.setLocalDescription(await pc2.createAnswer());
      await pc1.setRemoteDescription(pc2.localDescription);
      const stream = await remote;
      el = document.createElement("audio");
      el.autoplay = true;
      (cfg.shadow ? document.getElementById("host").attachShadow({ mode: "open" }) : document.body)
        .appendChild(el);
      el.srcObject = stream;
      await el.play().catch(() => {});
      // The agent hears its voice after the loopback, on its own clock (its truth for this path).
      // Same hold as the Vox meter, so a pause between words is not taken for the voice stopping.
      monitor = makeDetector(400, 0.01);
      monitor.port.onmessage = (e) => heard.push(e.data);
      ctx.createMediaStreamSource(stream).connect(monitor);
      const sink = ctx.createGain();
      sink.gain.value = 0;
      monitor.connect(sink).connect(ctx.destination);
    }
  }

  // Everything the monitor heard; truth for the srcObject path is resolved from it when read.
  const heard = [];
  const firstHeard = (type, fromFrame) => heard.find((m) => m.type === type && m.frame >= fromFrame)?.frame;
  function resolveTruth(r) {
    if (cfg.out !== "srcobject") return r;
    if (r.kind === "response" || r.kind === "greeting") {
      const f = firstHeard("start", r.voice_start_frame);
      if (f == null) return r;
      const latency = r.caller_end_frame != null ? ((f - r.caller_end_frame) / sr) * 1000 : null;
      return { ...r, heard_voice_start_frame: f, latency_ms: latency };
    }
    if (r.kind === "interrupt" && r.stopped) {
      const f = firstHeard("end", r.caller_start_frame);
      if (f == null) return r;
      return { ...r, heard_voice_end_frame: f, latency_ms: ((f - r.caller_start_frame) / sr) * 1000 };
    }
    return r;
  }
  Object.defineProperty(window, "__truth", { get: () => truth.map(resolveTruth) });
  window.__heard = heard;

  // Speaks `buffer` so that its first voiced sample plays at `voiceFrame`.
  function speak(buffer, voiceFrame, kind, record) {
    const data = buffer.getChannelData(0);
    const onset = voicedRange(data, 0.01);
    let startFrame = voiceFrame - onset;
    const earliest = frameNow() + Math.round(0.03 * sr);
    if (startFrame < earliest) startFrame = earliest;
    const s = {
      kind,
      startFrame,
      endFrame: startFrame + buffer.length,
      voiceStart: startFrame + onset,
      data,
      node: null,
    };
    speaking = s;
    record.voice_start_frame = s.voiceStart;
    record.scheduled_latency_ms = record.caller_end_frame != null
      ? ((s.voiceStart - record.caller_end_frame) / sr) * 1000
      : null;
    record.latency_ms = record.scheduled_latency_ms;
    if (cfg.out === "webaudio" || cfg.out === "srcobject") {
      const node = playCtx.createBufferSource();
      node.buffer = buffer;
      node.connect(voiceBus);
      // With a second context, the hearing context's frame is carried over through the two
      // clocks read back to back (good to a render quantum or so, not to the sample).
      const offset = playCtx === ctx ? 0 : playCtx.currentTime - ctx.currentTime;
      node.start(startFrame / sr + offset);
      s.node = node;
      node.onended = () => speaking === s && (speaking = null);
    } else {
      // The element starts when play() is called at the wall-clock moment the context renders
      // startFrame; the element's own start-up is part of what the caller hears.
      // A timer that fires late starts the voice late: the truth follows the actual call.
      const due = perfAt(startFrame);
      setTimeout(() => {
        el.currentTime = 0;
        el.play();
        record.play_called_frame = frameNow();
        const late = Math.round(((performance.now() - due) / 1000) * sr);
        if (late <= 0) return;
        s.startFrame += late;
        s.voiceStart += late;
        s.endFrame += late;
        record.voice_start_frame = s.voiceStart;
        record.timer_late_ms = (late / sr) * 1000;
        if (record.caller_end_frame != null) {
          record.latency_ms = ((s.voiceStart - record.caller_end_frame) / sr) * 1000;
        }
      }, Math.max(0, due - performance.now()));
      el.onended = () => speaking === s && (speaking = null);
    }
    truth.push(record);
    status("speaking");
  }

  function bargeIn(callerStart) {
    const s = speaking;
    if (!s || callerStart < s.voiceStart || callerStart >= s.endFrame) return;
    const record = {
      kind: "interrupt",
      caller_start_frame: callerStart,
      sample_rate: sr,
      stopped: cfg.stop != null,
    };
    truth.push(record);
    if (cfg.stop == null) {
      record.latency_ms = null;
      return;
    }
    const stopFrame = callerStart + Math.round((cfg.stop / 1000) * sr);
    speaking = null;
    if (s.node) {
      s.node.stop(stopFrame / sr + (playCtx === ctx ? 0 : playCtx.currentTime - ctx.currentTime));
      const last = lastVoicedBefore(s.data, stopFrame - s.startFrame, 0.01);
      record.voice_end_frame = s.startFrame + last;
      record.scheduled_latency_ms = ((record.voice_end_frame - callerStart) / sr) * 1000;
      record.latency_ms = record.scheduled_latency_ms;
    } else {
      const due = perfAt(stopFrame);
      const settle = (actualStop) => {
        const last = lastVoicedBefore(s.data, actualStop - s.startFrame, 0.01);
        record.voice_end_frame = s.startFrame + last;
        record.latency_ms = ((record.voice_end_frame - callerStart) / sr) * 1000;
        // The element stops some milliseconds after pause(); when a word begins inside that
        // window the true end is a fragment of that word, not the pause before it, and this
        // truth cannot say which: it is marked ambiguous rather than trusted.
        const stopIdx = actualStop - s.startFrame;
        const later = lastVoicedBefore(s.data, stopIdx + Math.round(0.03 * sr), 0.01);
        record.ambiguous = stopIdx - last > Math.round(0.005 * sr) && later >= stopIdx;
      };
      settle(stopFrame);
      record.scheduled_latency_ms = record.latency_ms;
      setTimeout(() => {
        el.pause();
        const late = Math.round(((performance.now() - due) / 1000) * sr);
        if (late > 0) {
          record.timer_late_ms = (late / sr) * 1000;
          settle(stopFrame + late);
        }
      }, Math.max(0, due - performance.now()));
    }
    status("interrupted");
  }

  function onCaller(m) {
    if (m.type === "start") {
      truth.push({ kind: "caller_start", frame: m.frame });
      bargeIn(m.frame);
      return;
    }
    truth.push({ kind: "caller_end", frame: m.frame, duration_ms: m.durationMs });
    if (m.durationMs < cfg.minSpeechMs) return;
    const voiceFrame = m.frame + Math.round((cfg.delayMs / 1000) * sr);
    speak(reply, voiceFrame, "response", { kind: "response", caller_end_frame: m.frame, sample_rate: sr });
  }

  async function start() {
    status("starting");
    ctx = new AudioContext();
    sr = ctx.sampleRate;
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, channelCount: 1 },
    });
    await ctx.audioWorklet.addModule("detector.js");
    const vad = makeDetector(cfg.endpointMs, cfg.theta);
    vad.port.onmessage = (e) => onCaller(e.data);
    ctx.createMediaStreamSource(mic).connect(vad);
    const sink = ctx.createGain();
    sink.gain.value = 0;
    vad.connect(sink).connect(ctx.destination);
    reply = await load("reply.wav");
    if (cfg.greet) greeting = await load("greeting.wav");
    await setupOutput();
    if (cfg.greet) {
      if (cfg.out === "src") el.src = "greeting.wav";
      speak(greeting, frameNow() + Math.round(0.3 * sr), "greeting", { kind: "greeting", sample_rate: sr });
      if (cfg.out === "src") el.addEventListener("ended", () => (el.src = "reply.wav"), { once: true });
    }
    status("listening");
    document.body.dataset.ready = "1";
  }

  document.getElementById("start").addEventListener(
    "click",
    () => start().catch((e) => status("error " + e)),
  );
  if (cfg.autostart) addEventListener("load", () => start().catch((e) => status("error " + e)));
})();
