// deno-lint-ignore-file no-window
// Vox page hooks, evaluated at document creation before any page script runs.
// - getUserMedia returns a virtual microphone whose samples come from the Vox meter worklet.
// - Every AudioContext the page creates gets a meter; a microphone stream the page feeds into
//   Web Audio is replaced by that context's own meter output, so the page hears the caller on
//   the same sample clock that watches its output.
// - Output is tapped without rerouting the page's sound: Web Audio nodes connected to a
//   destination are also connected to the meter; <audio>/<video> elements (src or srcObject,
//   in the light DOM, in shadow roots, created later or never attached) are tapped when they
//   play.
// The runner talks to this file through window.__vox (read-only, frozen) and a binding whose
// name is new for every run: this script takes the binding off the window before the page's
// scripts run and keeps it, with every built-in it relies on, in its closure (captured now,
// so a page that replaces JSON.stringify, MessagePort.prototype.postMessage, atob or
// Function.prototype.call later changes nothing here).
(() => {
  const CONFIG = __VOX_CONFIG__;
  const WORKLET_SOURCE = __VOX_WORKLET__;
  if (window.__vox) return;
  const uncurry = Function.prototype.bind.bind(Function.prototype.call);
  const stringify = JSON.stringify;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const nativeAtob = atob;
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const sliceBuffer = uncurry(ArrayBuffer.prototype.slice);
  const postTo = uncurry(MessagePort.prototype.postMessage);
  const decodeAudio = uncurry(BaseAudioContext.prototype.decodeAudioData);
  const addModule = uncurry(AudioWorklet.prototype.addModule);
  const nativeBtoa = btoa;
  const fromCharCode = String.fromCharCode;
  const applyFn = Reflect.apply;
  const keys = Object.keys;
  const isArray = Array.isArray;
  // JSON of the hooks' own events (flat objects, arrays, primitives) that never consults a
  // toJSON the page may put on Object.prototype or Array.prototype: JSON.stringify is only
  // given primitives, for which it looks nothing up.
  const encode = (v) => {
    if (v === null || typeof v !== "object") return stringify(v) ?? "null";
    let out = "";
    if (isArray(v)) {
      for (let i = 0; i < v.length; i++) out += (i ? "," : "") + encode(v[i]);
      return "[" + out + "]";
    }
    const ks = keys(v);
    for (let i = 0; i < ks.length; i++) {
      const x = v[ks[i]];
      if (x === undefined || typeof x === "function") continue;
      out += (out ? "," : "") + stringify(ks[i]) + ":" + encode(x);
    }
    return "{" + out + "}";
  };

  // The binding puppeteer installs (page.exposeFunction) is called in its wire format
  // directly, so its page-side wrapper can go too. Puppeteer answers every call by resolving
  // `window[name].callbacks.get(seq)` in the page; with the wrapper gone that lookup threw, and
  // puppeteer evaluated a second time to reject, two failed round trips per batch. A frozen,
  // non-enumerable sink that can call nothing takes the answer instead (bench:capacity:
  // −12 % CPU per call).
  const RAW_BINDING = "puppeteer_" + CONFIG.binding;
  const answerSink = freeze({ get: () => freeze({ resolve() {}, reject() {} }), delete() {} });
  let send = null;
  let seq = 0;
  const takeBinding = () => {
    if (send) return true;
    const raw = window[RAW_BINDING];
    if (typeof raw !== "function") return false;
    send = raw;
    delete window[RAW_BINDING];
    delete window[CONFIG.binding];
    defineProperty(window, CONFIG.binding, { value: freeze({ callbacks: answerSink }), enumerable: false });
    return true;
  };
  takeBinding();

  const NativeAudioContext = window.AudioContext || window.webkitAudioContext;
  if (!NativeAudioContext || !navigator.mediaDevices) return;
  const nativeConnect = AudioNode.prototype.connect;
  const nativeDisconnect = AudioNode.prototype.disconnect;
  const nativeCreateMSS = NativeAudioContext.prototype.createMediaStreamSource;
  const nativeCreateMES = NativeAudioContext.prototype.createMediaElementSource;
  const nativeGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  const nativePlay = HTMLMediaElement.prototype.play;
  const nativeConnectU = uncurry(nativeConnect);
  const nativeDisconnectU = uncurry(nativeDisconnect);
  const nativeCreateMSSU = uncurry(nativeCreateMSS);
  const nativeCreateMESU = uncurry(nativeCreateMES);
  const srcObjectDesc = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  const workletUrl = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: "text/javascript" }));

  // Events leave in batches, at most one every FLUSH_MS: each batch is a round trip through the
  // browser and the DevTools protocol (and puppeteer's reply into the page), which cost more
  // than the events themselves when every meter tick went alone (bench:capacity: −17 % CPU per
  // call). Events carry frames of the audio clock, so holding one back changes no measurement.
  const FLUSH_MS = 50;
  const flushLater = setTimeout;
  let pending = [];
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    if (pending.length === 0 || !takeBinding()) return;
    const batch = pending;
    pending = [];
    const args = [encode(batch)];
    send(encode({ type: "exposedFun", name: CONFIG.binding, seq: ++seq, args, isTrivial: true }));
  };
  const emit = (event) => {
    pending[pending.length] = event;
    if (flushQueued) return;
    flushQueued = true;
    flushLater(flush, FLUSH_MS);
  };
  const log = (msg) => {
    if (CONFIG.verbose) console.log("[vox] " + msg);
  };

  // Context ids stay unique across documents of one run (a page may navigate or reload).
  let nextCtxId = (Math.floor(Math.random() * 1e6) + 1) * 100;
  const meters = new Map(); // AudioContext -> meter record
  const micTracks = new WeakSet();
  const tapped = new WeakMap(); // element -> { ctx, node, kind }
  let harness = null; // meter record of Vox's own context, created for getUserMedia
  let primary = null; // meter record that owns the caller's voice for measurement
  const micStreams = [];
  let micWaiters = [];
  let backgroundSpec = null; // scenario background noise; with snrDb its level follows speech

  // Measurement health (issue 19): on a host too busy to run the page on time, the page's
  // thread handles the agent's audio events late and the audio thread renders in bursts, and
  // what the meter stamps is no longer the call a caller would hear. Every HEALTH_TICK_MS the
  // page's thread notes how late its own timer fired; every HEALTH_EMIT_MS each running meter
  // reports, stamped with its context's frame: the worst lateness since the last report, how
  // far real time has run ahead of its audio clock (getOutputTimestamp: performanceTime minus
  // contextTime, constant while rendering keeps pace) and its playback underruns so far
  // (playbackStats, where this Chromium has it). The agent judges each turn's window from these
  // (agent/measurement_health.ts). Captured now, so a page that replaces them changes nothing.
  const HEALTH_TICK_MS = 20;
  const HEALTH_EMIT_MS = 100;
  const perfNow = Performance.prototype.now.bind(performance);
  const nativeSetTimeout = setTimeout;
  const outputTimestamp = uncurry(NativeAudioContext.prototype.getOutputTimestamp);
  const playbackStatsGet = Object.getOwnPropertyDescriptor(NativeAudioContext.prototype, "playbackStats")
    ?.get;
  const currentTimeGet = Object.getOwnPropertyDescriptor(BaseAudioContext.prototype, "currentTime").get;
  const stateGet = Object.getOwnPropertyDescriptor(BaseAudioContext.prototype, "state").get;
  let healthStarted = false;
  let worstLag = 0;
  // One sample of context `rec`: the worst lateness since the last report, slip, underruns.
  function sampleHealth(rec) {
    try {
      if (!rec.node || stateGet.call(rec.ctx) !== "running") return;
      const ts = outputTimestamp(rec.ctx);
      const stats = playbackStatsGet ? playbackStatsGet.call(rec.ctx) : null;
      const event = {
        type: "health",
        ctx: rec.id,
        frame: Math.round(currentTimeGet.call(rec.ctx) * rec.ctx.sampleRate),
        lag: Math.round(worstLag * 10) / 10,
      };
      if (ts && ts.contextTime > 0) {
        event.slip = Math.round((ts.performanceTime - ts.contextTime * 1000) * 10) / 10;
      }
      if (stats && typeof stats.underrunEvents === "number") {
        event.underruns = stats.underrunEvents;
        event.underrunMs = Math.round(stats.underrunDuration * 10000) / 10;
      }
      emit(event);
    } catch { /* a closed or foreign context: no sample */ }
  }
  function startHealth() {
    if (healthStarted) return;
    healthStarted = true;
    let expected = perfNow() + HEALTH_TICK_MS;
    let lastEmit = perfNow();
    const tick = () => {
      const now = perfNow();
      const late = now - expected;
      if (late > worstLag) worstLag = late;
      if (now - lastEmit >= HEALTH_EMIT_MS) {
        lastEmit = now;
        for (const rec of meters.values()) sampleHealth(rec);
        worstLag = 0;
      }
      expected = perfNow() + HEALTH_TICK_MS;
      nativeSetTimeout(tick, HEALTH_TICK_MS);
    };
    nativeSetTimeout(tick, HEALTH_TICK_MS);
    // A page that leaves (or closes its context) right after the agent's voice still covers it.
    addEventListener("pagehide", () => {
      for (const rec of meters.values()) sampleHealth(rec);
    });
  }

  function installMeter(ctx, role) {
    startHealth();
    const rec = {
      id: nextCtxId++,
      role,
      ctx,
      node: null,
      micOut: null,
      keepAlive: null,
      recording: [],
      lastFrame: 0,
      ready: null,
    };
    meters.set(ctx, rec);
    rec.ready = addModule(ctx.audioWorklet, workletUrl).then(() => {
      rec.mic = new AudioWorkletNode(ctx, "vox-mic", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      rec.node = new AudioWorkletNode(ctx, "vox-meter", {
        numberOfInputs: 2,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: CONFIG.detector,
      });
      rec.mic.port.onmessage = (e) => onMeterMessage(rec, e.data);
      rec.node.port.onmessage = (e) => onMeterMessage(rec, e.data);
      rec.keepAlive = ctx.createGain();
      rec.keepAlive.gain.value = 0;
      nativeConnectU(rec.mic, rec.node, 0, 1);
      nativeConnectU(rec.node, rec.keepAlive);
      nativeConnectU(rec.keepAlive, ctx.destination);
      if (rec.micOut) nativeConnectU(rec.mic, rec.micOut);
      for (const n of rec.pendingTaps ?? []) nativeConnectU(n.node, rec.node, n.output ?? 0);
      rec.pendingTaps = [];
      emit({ type: "meter", ctx: rec.id, role, sampleRate: ctx.sampleRate });
    }).catch((err) => emit({ type: "error", message: "Vox meter could not start: " + err }));
    return rec;
  }

  function onMeterMessage(rec, m) {
    if (m.type === "rec") {
      // Kept as interleaved 16-bit stereo (caller left, agent right): a quarter of the floats.
      const pcm = new Int16Array(m.left.length * 2);
      for (let i = 0; i < m.left.length; i++) {
        pcm[2 * i] = Math.round(Math.max(-1, Math.min(1, m.left[i])) * 32767);
        pcm[2 * i + 1] = Math.round(Math.max(-1, Math.min(1, m.right[i])) * 32767);
      }
      rec.recording.push({ frame: m.frame, pcm });
      return;
    }
    if (m.type === "tick") {
      rec.lastFrame = m.frame;
      rec.voiced = m.voiced;
    }
    emit({ ...m, ctx: rec.id });
  }

  function tapNode(ctx, node, output) {
    const rec = meters.get(ctx);
    if (!rec) return;
    if (rec.node) nativeConnectU(node, rec.node, output ?? 0);
    else (rec.pendingTaps ??= []).push({ node, output });
  }

  // Web Audio output: anything connected to a destination is also fed to the meter.
  AudioNode.prototype.connect = function (dest, output) {
    const r = nativeConnect.apply(this, arguments);
    if (dest instanceof AudioDestinationNode && meters.has(this.context)) {
      try {
        tapNode(this.context, this, output);
      } catch (err) {
        log("tap failed: " + err);
      }
    }
    return r;
  };
  AudioNode.prototype.disconnect = function (dest) {
    const r = nativeDisconnect.apply(this, arguments);
    if (dest instanceof AudioDestinationNode) {
      const rec = meters.get(this.context);
      if (rec?.node) {
        try {
          nativeDisconnectU(this, rec.node);
        } catch { /* was not connected */ }
      }
    }
    return r;
  };

  class VoxAudioContext extends NativeAudioContext {
    constructor(...args) {
      super(...args);
      installMeter(this, "page");
    }
    close() {
      const rec = meters.get(this);
      if (rec) sampleHealth(rec);
      return super.close();
    }
  }
  Object.defineProperty(VoxAudioContext, "name", { value: "AudioContext" });
  window.AudioContext = VoxAudioContext;
  if (window.webkitAudioContext) window.webkitAudioContext = VoxAudioContext;

  function isMicStream(stream) {
    return !!stream && typeof stream.getAudioTracks === "function" &&
      stream.getAudioTracks().some((t) => micTracks.has(t));
  }

  // The page's own graph receives the caller from this context's meter, sample-exact.
  function micSourceFor(ctx, stream) {
    let rec = meters.get(ctx);
    if (!rec) rec = installMeter(ctx, "page");
    if (!rec.micOut) {
      rec.micOut = ctx.createGain();
      if (rec.mic) nativeConnectU(rec.mic, rec.micOut);
    }
    if (!primary || primary.role === "harness") {
      primary = rec;
      emit({ type: "primary", ctx: rec.id });
    }
    try {
      Object.defineProperty(rec.micOut, "mediaStream", { value: stream, configurable: true });
    } catch { /* non-configurable in this build */ }
    log("microphone stream routed into page AudioContext " + rec.id);
    return rec.micOut;
  }

  NativeAudioContext.prototype.createMediaStreamSource = function (stream) {
    if (isMicStream(stream)) return micSourceFor(this, stream);
    return nativeCreateMSSU(this, stream);
  };
  const NativeMSSNode = window.MediaStreamAudioSourceNode;
  if (NativeMSSNode) {
    const Wrapped = function MediaStreamAudioSourceNode(ctx, options) {
      if (isMicStream(options?.mediaStream)) return micSourceFor(ctx, options.mediaStream);
      return new NativeMSSNode(ctx, options);
    };
    Wrapped.prototype = NativeMSSNode.prototype;
    window.MediaStreamAudioSourceNode = Wrapped;
  }

  function ensureHarness(sampleRate) {
    if (harness) return harness;
    const opts = { latencyHint: "interactive" };
    if (sampleRate) opts.sampleRate = sampleRate;
    const ctx = new NativeAudioContext(opts);
    harness = installMeter(ctx, "harness");
    if (!primary) {
      primary = harness;
      emit({ type: "primary", ctx: harness.id });
    }
    return harness;
  }

  function constraintValue(c) {
    if (c == null) return undefined;
    if (typeof c !== "object") return c;
    return c.exact ?? c.ideal ?? c.max ?? c.min;
  }

  async function virtualMicrophone(constraints) {
    const audio = typeof constraints.audio === "object" ? constraints.audio : {};
    const sampleRate = constraintValue(audio.sampleRate);
    const channelCount = Math.min(2, Math.max(1, constraintValue(audio.channelCount) ?? 1));
    const deviceId = constraintValue(audio.deviceId);
    if (
      audio.deviceId && typeof audio.deviceId === "object" && audio.deviceId.exact &&
      deviceId !== "vox-virtual-mic" && deviceId !== "default"
    ) {
      throw new DOMException("No microphone matches deviceId " + deviceId, "OverconstrainedError");
    }
    const rec = ensureHarness(sampleRate);
    await rec.ready;
    const dest = rec.ctx.createMediaStreamDestination();
    dest.channelCount = channelCount;
    nativeConnectU(rec.mic, dest);
    const track = dest.stream.getAudioTracks()[0];
    micTracks.add(track);
    const settings = {
      deviceId: "vox-virtual-mic",
      groupId: "vox",
      sampleRate: rec.ctx.sampleRate,
      channelCount,
      sampleSize: 16,
      echoCancellation: constraintValue(audio.echoCancellation) ?? true,
      noiseSuppression: constraintValue(audio.noiseSuppression) ?? true,
      autoGainControl: constraintValue(audio.autoGainControl) ?? true,
    };
    Object.defineProperty(track, "label", { value: "Vox virtual microphone" });
    track.getSettings = () => ({ ...settings });
    track.getConstraints = () => audio;
    track.applyConstraints = (c) => {
      Object.assign(audio, c ?? {});
      return Promise.resolve();
    };
    const clone = track.clone.bind(track);
    track.clone = () => {
      const t = clone();
      micTracks.add(t);
      return t;
    };
    let stream = dest.stream;
    if (constraints.video) {
      try {
        const video = await nativeGetUserMedia({ video: constraints.video });
        stream = new MediaStream([track, ...video.getVideoTracks()]);
      } catch (err) {
        log("video requested but unavailable: " + err);
      }
    }
    micStreams.push(stream);
    emit({ type: "getUserMedia", constraints: JSON.stringify(constraints) });
    const waiters = micWaiters;
    micWaiters = [];
    for (const w of waiters) w();
    return stream;
  }

  navigator.mediaDevices.getUserMedia = function (constraints) {
    if (!constraints || !constraints.audio) return nativeGetUserMedia(constraints);
    return virtualMicrophone(constraints);
  };
  const nativeEnumerate = navigator.mediaDevices.enumerateDevices?.bind(navigator.mediaDevices);
  navigator.mediaDevices.enumerateDevices = async function () {
    const list = nativeEnumerate ? (await nativeEnumerate()).filter((d) => d.kind !== "audioinput") : [];
    const mic = {
      deviceId: "vox-virtual-mic",
      groupId: "vox",
      kind: "audioinput",
      label: "Vox virtual microphone",
    };
    return [{ ...mic, toJSON: () => mic }, ...list];
  };
  for (const legacy of ["getUserMedia", "webkitGetUserMedia"]) {
    if (navigator[legacy]) {
      navigator[legacy] = (c, ok, fail) => navigator.mediaDevices.getUserMedia(c).then(ok, fail);
    }
  }
  if (navigator.permissions?.query) {
    const nativeQuery = navigator.permissions.query.bind(navigator.permissions);
    navigator.permissions.query = (d) =>
      d?.name === "microphone"
        ? Promise.resolve({ state: "granted", name: "microphone", onchange: null, addEventListener() {} })
        : nativeQuery(d);
  }

  // Media elements. src-played elements are rendered through the primary context (their sound
  // keeps reaching the speakers through its destination); srcObject elements keep playing on
  // their own while the same stream is fed to the meter.
  function tapElement(el) {
    if (!primary || !primary.node) {
      const target = primary ?? ensureHarness();
      target.ready.then(() => tapElement(el));
      return;
    }
    const stream = srcObjectDesc.get.call(el);
    const prev = tapped.get(el);
    if (stream) {
      if (prev?.stream === stream) return;
      if (!stream.getAudioTracks || stream.getAudioTracks().length === 0) {
        stream.addEventListener?.("addtrack", () => tapElement(el), { once: true });
        return;
      }
      const node = nativeCreateMSSU(primary.ctx, stream);
      nativeConnectU(node, primary.node);
      tapped.set(el, { stream, node, ctx: primary.ctx });
      emit({ type: "tap", kind: "srcObject", ctx: primary.id });
      return;
    }
    if (prev?.element) return;
    const url = el.currentSrc || el.src;
    if (!url) return;
    let sameOrigin = true;
    try {
      const u = new URL(url, location.href);
      sameOrigin = u.origin === location.origin || u.protocol === "blob:" || u.protocol === "data:" ||
        el.crossOrigin != null;
    } catch { /* keep default */ }
    if (sameOrigin) {
      const node = nativeCreateMESU(primary.ctx, el);
      nativeConnectU(node, primary.ctx.destination);
      nativeConnectU(node, primary.node);
      tapped.set(el, { element: true, node, ctx: primary.ctx });
      emit({ type: "tap", kind: "src", ctx: primary.id });
    } else if (typeof el.captureStream === "function") {
      // Cross-origin media rendered through Web Audio would be muted, so observe a capture.
      const node = nativeCreateMSSU(primary.ctx, el.captureStream());
      nativeConnectU(node, primary.node);
      tapped.set(el, { element: true, node, ctx: primary.ctx });
      emit({ type: "tap", kind: "capture", ctx: primary.id });
    }
  }
  const safeTap = (el) => {
    try {
      tapElement(el);
    } catch (err) {
      log("element tap failed: " + err);
    }
  };
  HTMLMediaElement.prototype.play = function () {
    safeTap(this);
    return nativePlay.apply(this, arguments);
  };
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    configurable: true,
    enumerable: srcObjectDesc.enumerable,
    get() {
      return srcObjectDesc.get.call(this);
    },
    set(v) {
      srcObjectDesc.set.call(this, v);
      if (v && (this.autoplay || !this.paused)) safeTap(this);
    },
  });
  // A page that routes an element into its own graph after we did gets our node back.
  NativeAudioContext.prototype.createMediaElementSource = function (el) {
    const t = tapped.get(el);
    if (t?.element && t.ctx === this && t.node instanceof MediaElementAudioSourceNode) {
      try {
        nativeDisconnectU(t.node, this.destination);
      } catch { /* already */ }
      return t.node;
    }
    return nativeCreateMESU(this, el);
  };
  const onPlayEvent = (e) => {
    if (e.target instanceof HTMLMediaElement) safeTap(e.target);
  };
  document.addEventListener("play", onPlayEvent, true);
  const nativeAttachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function () {
    const root = nativeAttachShadow.apply(this, arguments);
    root.addEventListener("play", onPlayEvent, true);
    return root;
  };

  // Network profiles (method relay): every peer connection goes through Vox's TURN server, which
  // the browser reaches through the impaired path, whatever ICE servers the page names; host and
  // server-reflexive candidates are not gathered, so no media can go around it.
  if (CONFIG.turn && window.RTCPeerConnection) {
    const BasePC = window.RTCPeerConnection;
    const baseSetConfiguration = BasePC.prototype.setConfiguration;
    const imposed = (config) => {
      const out = {};
      const ks = keys(config ?? {});
      for (let i = 0; i < ks.length; i++) out[ks[i]] = config[ks[i]];
      out.iceServers = [{
        urls: CONFIG.turn.urls,
        username: CONFIG.turn.username,
        credential: CONFIG.turn.credential,
      }];
      out.iceTransportPolicy = "relay";
      return out;
    };
    const TurnPC = function RTCPeerConnection(config, ...rest) {
      return Reflect.construct(BasePC, [imposed(config), ...rest], new.target ?? TurnPC);
    };
    TurnPC.prototype = BasePC.prototype;
    defineProperty(TurnPC.prototype, "constructor", { value: TurnPC, writable: true, configurable: true });
    BasePC.prototype.setConfiguration = function (config) {
      return applyFn(baseSetConfiguration, this, [imposed(config)]);
    };
    window.RTCPeerConnection = TurnPC;
    if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = TurnPC;
  }

  // Strict egress: UDP is off in this browser (the agent's launch flags), and the ICE servers
  // and remote candidates a page names are reported, so the agent can fail the run naming a
  // blocked destination instead of it silently not connecting.
  const NativePC = window.RTCPeerConnection;
  if (CONFIG.strictEgress && NativePC) {
    const report = (host) => emit({ type: "ice", host: String(host) });
    const iceServers = (config) => {
      for (const server of config?.iceServers ?? []) {
        for (const url of [].concat(server?.urls ?? server?.url ?? [])) {
          const m = String(url).match(/^(?:stuns?|turns?):(\[[^\]]+\]|[^:?]+)/);
          if (m) report(m[1]);
        }
      }
    };
    const candidates = (text) => {
      for (const m of String(text ?? "").matchAll(/candidate:\S+ \d+ \S+ \d+ (\S+) \d+/g)) report(m[1]);
    };
    const nativeAddIce = NativePC.prototype.addIceCandidate;
    const nativeSetRemote = NativePC.prototype.setRemoteDescription;
    const nativeSetConfiguration = NativePC.prototype.setConfiguration;
    const PC = function RTCPeerConnection(config, ...rest) {
      iceServers(config);
      return Reflect.construct(NativePC, [config, ...rest], new.target ?? PC);
    };
    PC.prototype = NativePC.prototype;
    defineProperty(PC.prototype, "constructor", { value: PC, writable: true, configurable: true });
    NativePC.prototype.addIceCandidate = function (c) {
      candidates(typeof c === "string" ? c : c?.candidate);
      return applyFn(nativeAddIce, this, arguments);
    };
    NativePC.prototype.setRemoteDescription = function (d) {
      candidates(d?.sdp);
      return applyFn(nativeSetRemote, this, arguments);
    };
    NativePC.prototype.setConfiguration = function (config) {
      iceServers(config);
      return applyFn(nativeSetConfiguration, this, arguments);
    };
    window.RTCPeerConnection = PC;
    if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = PC;
  }

  // Offline voice segmentation with the meter's definition (see meter_worklet.js).
  function segments(pcm, sampleRate) {
    const d = CONFIG.detector;
    const ms = (v) => Math.max(1, Math.round((v * sampleRate) / 1000));
    const confirm = ms(d.confirmMs);
    const minCount = Math.round(confirm * d.minFraction);
    let first = -1;
    let last = -1;
    let voiced = false;
    let cand = -1;
    let count = 0;
    let candLast = -1;
    for (let f = 0; f < pcm.length; f++) {
      const x = pcm[f];
      const a = x < 0 ? -x : x;
      if (!voiced) {
        if (a >= d.theta) {
          if (cand < 0) {
            cand = f;
            count = 0;
          }
          count++;
          candLast = f;
        }
        if (cand >= 0 && f - cand + 1 >= confirm) {
          if (count >= minCount) {
            voiced = true;
            if (first < 0) first = cand;
            last = candLast;
          } else cand = -1;
        }
      } else if (a >= d.theta) last = f;
      else if (f - last >= ms(d.holdMs)) {
        voiced = false;
        cand = -1;
      }
    }
    return { first, last };
  }

  function decodeBase64(b64) {
    const bin = nativeAtob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = charCodeAt(bin, i);
    return bytes.buffer;
  }

  async function decodeFor(ctx, bytes) {
    const buf = await decodeAudio(ctx, sliceBuffer(bytes, 0));
    const out = new Float32Array(buf.length);
    for (let c = 0; c < buf.numberOfChannels; c++) {
      const ch = buf.getChannelData(c);
      for (let i = 0; i < out.length; i++) out[i] += ch[i] / buf.numberOfChannels;
    }
    return out;
  }

  function rms(pcm, from, to) {
    let s = 0;
    const a = Math.max(0, from);
    const b = Math.min(pcm.length, to);
    for (let i = a; i < b; i++) s += pcm[i] * pcm[i];
    return Math.sqrt(s / Math.max(1, b - a));
  }

  function makeNoise(kind, length, seed) {
    const out = new Float32Array(length);
    let s = seed >>> 0 || 1;
    const rand = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return ((s >>> 0) / 4294967296) * 2 - 1;
    };
    let b0 = 0, b1 = 0, b2 = 0;
    for (let i = 0; i < length; i++) {
      const w = rand();
      if (kind === "pink") {
        b0 = 0.99765 * b0 + w * 0.099046;
        b1 = 0.963 * b1 + w * 0.2965164;
        b2 = 0.57 * b2 + w * 1.0526913;
        out[i] = (b0 + b1 + b2 + w * 0.1848) * 0.2;
      } else if (kind === "brown") {
        b0 = (b0 + 0.02 * w) / 1.02;
        out[i] = b0 * 3.5;
      } else out[i] = w * 0.5;
    }
    return out;
  }

  async function noiseFor(ctx, spec, length) {
    let pcm;
    if (spec.b64) {
      const src = await decodeFor(ctx, decodeBase64(spec.b64));
      pcm = new Float32Array(length);
      for (let i = 0; i < length; i++) pcm[i] = src[i % src.length];
    } else pcm = makeNoise(spec.type ?? "white", length, spec.seed ?? 12345);
    return pcm;
  }

  function dbToGain(db) {
    return Math.pow(10, db / 20);
  }

  // Prepares one utterance for one context: decode, optional gain, optional noise at an SNR.
  async function prepare(rec, u) {
    const ctx = rec.ctx;
    let pcm;
    if (u.b64) pcm = await decodeFor(ctx, decodeBase64(u.b64));
    else pcm = new Float32Array(Math.round((u.durationMs * ctx.sampleRate) / 1000));
    if (u.gainDb) {
      const g = dbToGain(u.gainDb);
      for (let i = 0; i < pcm.length; i++) pcm[i] *= g;
    }
    const seg = u.b64 ? segments(pcm, ctx.sampleRate) : { first: -1, last: -1 };
    const rmsOfClean = seg.first >= 0 ? rms(pcm, seg.first, seg.last + 1) : 0;
    if (u.noise) {
      const noise = await noiseFor(ctx, u.noise, pcm.length);
      let g;
      if (u.noise.levelDb != null || seg.first < 0) {
        g = dbToGain(u.noise.levelDb ?? -30) / Math.max(1e-9, rms(noise, 0, noise.length));
      } else {
        const speech = rms(pcm, seg.first, seg.last + 1);
        g = speech / dbToGain(u.noise.snrDb ?? 10) / Math.max(1e-9, rms(noise, 0, noise.length));
      }
      for (let i = 0; i < pcm.length; i++) pcm[i] += noise[i] * g;
    }
    const speechRms = seg.first >= 0 ? rmsOfClean : 0;
    return { pcm, voicedStart: seg.first, voicedEnd: seg.last, speechRms };
  }

  async function readyMeters() {
    const recs = [...meters.values()];
    await Promise.all(recs.map((r) => r.ready));
    return recs.filter((r) => r.node);
  }

  const api = {
    hasMicrophone() {
      return micStreams.length > 0;
    },
    // Resolves once the page has opened the microphone (or rejects after timeoutMs).
    waitForMicrophone(timeoutMs) {
      if (micStreams.length > 0) return Promise.resolve(true);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("the page never opened the microphone")), timeoutMs);
        micWaiters.push(() => {
          clearTimeout(t);
          resolve(true);
        });
      });
    },
    // Queues one utterance on every meter; each emits utt_start/utt_end with its own frames.
    async speak(u) {
      const recs = await readyMeters();
      if (recs.length === 0) throw new Error("no audio context is running in the page");
      const prepared = await Promise.all(recs.map((r) => prepare(r, u)));
      recs.forEach((r, i) => {
        const p = prepared[i];
        let bgGain;
        if (backgroundSpec?.snrDb != null && p.speechRms > 0) {
          bgGain = p.speechRms / dbToGain(backgroundSpec.snrDb) / dbToGain(backgroundSpec.levelDb ?? -35);
        }
        // After a `pause` step the utterance is held until afterMs past the last voiced sample of
        // utterance afterId, on each context's own clock (the caller resumes when the pause ends).
        const hold = u.afterId != null ? { afterId: u.afterId, afterMs: u.afterMs } : {};
        postTo(r.mic.port, { type: "utterance", id: u.id, ...p, bgGain, ...hold }, [p.pcm.buffer]);
      });
      return {
        primary: primary?.id ?? null,
        ctxs: recs.map((r) => r.id),
        voiced: prepared[0].voicedStart >= 0,
      };
    },
    async background(spec) {
      backgroundSpec = spec;
      const recs = await readyMeters();
      for (const r of recs) {
        if (!spec) {
          postTo(r.mic.port, { type: "background", pcm: null });
          continue;
        }
        const seconds = 20;
        const pcm = await noiseFor(r.ctx, spec, seconds * r.ctx.sampleRate);
        const g = dbToGain(spec.levelDb ?? -35) / Math.max(1e-9, rms(pcm, 0, pcm.length));
        for (let i = 0; i < pcm.length; i++) pcm[i] *= g;
        postTo(r.mic.port, { type: "background", pcm }, [pcm.buffer]);
      }
    },
    async setHold(holdMs) {
      for (const r of await readyMeters()) postTo(r.node.port, { type: "hold", holdMs });
    },
    primary() {
      return primary ? { ctx: primary.id, frame: primary.lastFrame, voiced: !!primary.voiced } : null;
    },
    // Recording of one meter as Int16 PCM, base64, caller left and agent right.
    recording(ctxId, fromChunk, maxChunks) {
      const rec = [...meters.values()].find((r) => r.id === ctxId);
      if (!rec) return null;
      const chunks = rec.recording.slice(fromChunk, fromChunk + maxChunks);
      let n = 0;
      for (const c of chunks) n += c.pcm.length;
      const bytes = new Uint8Array(n * 2);
      let o = 0;
      for (const c of chunks) {
        // Int16Array bytes are little-endian on every platform Chromium runs on.
        bytes.set(new Uint8Array(c.pcm.buffer, c.pcm.byteOffset, c.pcm.byteLength), o);
        o += c.pcm.byteLength;
      }
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        bin += applyFn(fromCharCode, null, bytes.subarray(i, i + 0x8000));
      }
      return {
        sampleRate: rec.ctx.sampleRate,
        firstFrame: chunks[0]?.frame ?? 0,
        chunks: chunks.length,
        total: rec.recording.length,
        b64: nativeBtoa(bin),
      };
    },
  };
  defineProperty(window, "__vox", { value: freeze(api), writable: false, configurable: false });
})();
