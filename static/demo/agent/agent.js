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
    // Caller speech it must hear for this long before it yields the floor (0: any voice).
    yieldMs: num("yield_ms", 0),
    greet: q.get("greet") === "1",
    autostart: q.get("autostart") !== "0",
    shadow: q.get("shadow") === "1",
    // split=1: hear the caller in one AudioContext and speak through a second one.
    split: q.get("split") === "1",
    // out=webrtc: the voice crosses a TURN server (turn=turn:host:port, turn_user, turn_pass)
    // between two peer connections, relay candidates only, so it leaves the page as UDP.
    turn: q.get("turn"),
    turnUser: q.get("turn_user") ?? "",
    turnPass: q.get("turn_pass") ?? "",
    // out=src&fetch=1: each reply is fetched from the server when it is due (as a TTS reply
    // would be), so its start includes the network; the truth then excludes the fetch.
    fetch: q.get("fetch") === "1",
    // out=janus: the voice is echoed by a Janus gateway (janus=http://host:port/janus), through
    // the TURN server when turn= is given.
    janus: q.get("janus"),
  };
  // Outputs that go through a peer connection and are heard back by the agent's own monitor.
  const viaPeer = cfg.out === "srcobject" || cfg.out === "webrtc" || cfg.out === "janus";
  // <audio src> is heard back too (through a capture of the element): play() and pause() are
  // requests, and the element's media pipeline starts and stops its sound some milliseconds
  // later, by an amount that grows with load. With fetch=1 the truth stays the call itself.
  const heardBack = viaPeer || (cfg.out === "src" && !cfg.fetch);
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

  function makeDetector(holdMs, theta, sustainMs = 0) {
    return new AudioWorkletNode(ctx, "agent-detector", {
      processorOptions: { theta, holdMs, sustainMs, ...DET },
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
      if (heardBack) hearElement(el);
    } else if (viaPeer) {
      dest = ctx.createMediaStreamDestination();
      const rtc = cfg.out !== "srcobject" && cfg.turn
        ? {
          iceServers: [{ urls: cfg.turn, username: cfg.turnUser, credential: cfg.turnPass }],
          iceTransportPolicy: "relay",
        }
        : {};
      voiceBus.connect(dest);
      let stream;
      if (cfg.out === "janus") stream = await janusEcho(rtc, dest.stream);
      else {
        const pc1 = new RTCPeerConnection(rtc);
        const pc2 = new RTCPeerConnection(rtc);
        window.__peers = [pc1, pc2];
        pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
        pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
        const remote = new Promise((
          r,
        ) => (pc2.ontrack = (e) => r(e.streams[0] ?? new MediaStream([e.track]))));
        for (const t of dest.stream.getAudioTracks()) pc1.addTrack(t, dest.stream);
        await pc1.setLocalDescription(await pc1.createOffer());
        await pc2.setRemoteDescription(pc1.localDescription);
        await pc2.setLocalDescription(await pc2.createAnswer());
        await pc1.setRemoteDescription(pc2.localDescription);
        stream = await remote;
      }
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

  // The element's sound as it leaves it, on the agent's clock: each audio track of a capture
  // (a new one comes with each new source) feeds the monitor.
  function hearElement(el) {
    monitor = makeDetector(400, 0.01);
    monitor.port.onmessage = (e) => heard.push(e.data);
    const sink = ctx.createGain();
    sink.gain.value = 0;
    monitor.connect(sink).connect(ctx.destination);
    const capture = el.captureStream();
    const seen = new Set();
    const attach = (track) => {
      if (seen.has(track)) return;
      seen.add(track);
      ctx.createMediaStreamSource(new MediaStream([track])).connect(monitor);
    };
    capture.getAudioTracks().forEach(attach);
    capture.addEventListener("addtrack", (e) => e.track.kind === "audio" && attach(e.track));
  }

  // out=janus: the voice goes to a Janus gateway's EchoTest plugin (janus=<its HTTP API base>)
  // over WebRTC and the echo it sends back is what the caller hears: one peer connection to a
  // real media server, signalled over Janus's plain-HTTP API (offer with every candidate, the
  // answer from its long-poll).
  async function janusEcho(rtc, local) {
    const base = cfg.janus;
    const post = async (path, body) => {
      const transaction = Math.random().toString(36).slice(2);
      const r = await fetch(base + path, { method: "POST", body: JSON.stringify({ ...body, transaction }) });
      const j = await r.json();
      if (j.janus === "error") throw new Error("janus: " + j.error?.reason);
      return j;
    };
    const session = (await post("", { janus: "create" })).data.id;
    const handle = (await post("/" + session, { janus: "attach", plugin: "janus.plugin.echotest" })).data.id;
    setInterval(() => post("/" + session, { janus: "keepalive" }).catch(() => {}), 20000);
    const pc = new RTCPeerConnection(rtc);
    window.__peers = [pc, pc];
    const remote = new Promise((r) => (pc.ontrack = (e) => r(e.streams[0] ?? new MediaStream([e.track]))));
    for (const t of local.getAudioTracks()) pc.addTrack(t, local);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => {
      if (pc.iceGatheringState === "complete") return r();
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && r());
    });
    await post(`/${session}/${handle}`, {
      janus: "message",
      body: { audio: true, video: false },
      jsep: { type: "offer", sdp: pc.localDescription.sdp },
    });
    for (;;) {
      const res = await fetch(`${base}/${session}?maxev=1&rid=${Date.now()}`);
      const ev = await res.json();
      const e = Array.isArray(ev) ? ev[0] : ev;
      if (e?.jsep) {
        await pc.setRemoteDescription(e.jsep);
        break;
      }
    }
    return await remote;
  }

  // Everything the monitor heard; truth for the srcObject path is resolved from it when read.
  const heard = [];
  const firstHeard = (type, fromFrame) => heard.find((m) => m.type === type && m.frame >= fromFrame)?.frame;
  function resolveTruth(r) {
    if (!heardBack) return r;
    if (r.kind === "response" || r.kind === "greeting") {
      // An element's truth can place the start a little late (a play() call that took long is
      // counted as timer lateness), so the search begins 100 ms early; a reply's start follows
      // at least the monitor's 400 ms hold of silence, so nothing earlier can be taken for it.
      const from = r.voice_start_frame - (viaPeer ? 0 : Math.round(0.1 * sr));
      const f = firstHeard("start", from);
      if (f == null) return r;
      const latency = r.caller_end_frame != null ? ((f - r.caller_end_frame) / sr) * 1000 : null;
      return { ...r, heard_voice_start_frame: f, latency_ms: latency };
    }
    if (r.kind === "interrupt" && r.stopped) {
      const f = firstHeard("end", r.caller_start_frame);
      if (f == null) return r;
      // Heard, the stop is no longer ambiguous (see bargeIn).
      return {
        ...r,
        heard_voice_end_frame: f,
        latency_ms: ((f - r.caller_start_frame) / sr) * 1000,
        ambiguous: false,
      };
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
    if (cfg.out === "webaudio" || viaPeer) {
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
        if (cfg.fetch) {
          el.src = "reply.wav?n=" + truth.length + "-" + Date.now();
          record.fetched = true;
        }
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

  // `decidedAt`: with yield_ms, the frame at which the caller's speech had lasted long enough;
  // the stop delay counts from there (and never lands in the past).
  function bargeIn(callerStart, decidedAt) {
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
    const stopFrame = decidedAt == null
      ? callerStart + Math.round((cfg.stop / 1000) * sr)
      : Math.max(decidedAt + Math.round((cfg.stop / 1000) * sr), frameNow() + Math.round(0.03 * sr));
    if (decidedAt != null) record.decided_frame = decidedAt;
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

  // With yield_ms: caller speech heard while talking waits to prove sustained before a barge-in.
  let pendingYield = null; // { callerStart }
  function onCaller(m) {
    if (m.type === "start") {
      truth.push({ kind: "caller_start", frame: m.frame });
      const s = speaking;
      if (cfg.yieldMs > 0 && s && m.frame >= s.voiceStart && m.frame < s.endFrame) {
        pendingYield = { callerStart: m.frame };
        return;
      }
      bargeIn(m.frame);
      return;
    }
    if (m.type === "sustained") {
      if (pendingYield && pendingYield.callerStart === m.segStart) {
        pendingYield = null;
        bargeIn(m.segStart, m.frame);
      }
      return;
    }
    truth.push({ kind: "caller_end", frame: m.frame, duration_ms: m.durationMs });
    if (pendingYield) {
      // Too short to yield for (a backchannel): it keeps talking and does not answer it.
      truth.push({
        kind: "backchannel_ignored",
        caller_start_frame: pendingYield.callerStart,
        sample_rate: sr,
      });
      pendingYield = null;
      return;
    }
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
    const vad = makeDetector(cfg.endpointMs, cfg.theta, cfg.yieldMs);
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
