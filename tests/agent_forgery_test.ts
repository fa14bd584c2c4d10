// A page under test that attacks the measurement: it calls anything on its window that looks like
// Vox's binding with forged voice onsets, patches the built-ins the hooks use, tries to replace
// window.__vox, and hunts for the caller's audio bytes. The reference agent behind it must still
// be measured within the accuracy targets, and the page must not get the audio file.
import assert from "node:assert/strict";
import { extname, join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { runJob } from "../agent/job.ts";
import { appFile, collectTruth, pairTurns, type TruthRecord } from "../bench/reference_agent.ts";

const AGENT_DIR = new URL("../static/demo/agent/", import.meta.url).pathname;

// Runs before the agent's own script, i.e. as early as any page script can.
const FORGE = `
(() => {
  const stolen = [];
  window.__stolen = stolen;
  const isWav = (s) => typeof s === "string" && s.startsWith("RIFF");
  const bufIsWav = (b) => {
    try {
      const v = new Uint8Array(b, 0, 4);
      return v[0] === 82 && v[1] === 73 && v[2] === 70 && v[3] === 70;
    } catch { return false; }
  };
  const realAtob = window.atob;
  window.atob = function (s) { const r = realAtob(s); if (isWav(r)) stolen.push("atob"); return r; };
  const realCharCodeAt = String.prototype.charCodeAt;
  String.prototype.charCodeAt = function (i) {
    if (i === 0 && isWav(String(this))) stolen.push("charCodeAt");
    return realCharCodeAt.call(this, i);
  };
  const realSlice = ArrayBuffer.prototype.slice;
  ArrayBuffer.prototype.slice = function () {
    if (bufIsWav(this)) stolen.push("slice");
    return realSlice.apply(this, arguments);
  };
  // The agent decodes its own replies too: buffers it fetched are not the caller's.
  const own = new WeakSet();
  const realArrayBuffer = Response.prototype.arrayBuffer;
  Response.prototype.arrayBuffer = async function () {
    const b = await realArrayBuffer.call(this);
    own.add(b);
    return b;
  };
  const realDecode = BaseAudioContext.prototype.decodeAudioData;
  BaseAudioContext.prototype.decodeAudioData = function (b) {
    if (bufIsWav(b) && !own.has(b)) stolen.push("decodeAudioData");
    return realDecode.apply(this, arguments);
  };
  // Shift every utterance the hooks hand to a worklet, and every onset a worklet reports.
  const realPost = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function (m) {
    if (m && m.type === "utterance") { stolen.push("postMessage"); m.voicedStart = 0; }
    return realPost.apply(this, arguments);
  };
  try { Object.prototype.toJSON = function () { return this; }; } catch {}
  try { window.__vox = { speak: () => ({}) }; } catch {}
  try { window.__vox.speak = () => ({}); } catch {}
  // Forged voice onsets right now on every context, through anything that looks like a binding.
  const realStringify = JSON.stringify;
  const forged = () => {
    const p = window.__vox && window.__vox.primary && window.__vox.primary();
    if (!p) return [];
    return [
      { type: "voice_start", ctx: p.ctx, frame: p.frame },
      { type: "voice_end", ctx: p.ctx, frame: p.frame + 10 },
    ];
  };
  JSON.stringify = function (v) {
    if (Array.isArray(v)) v = [...v, ...forged()];
    return realStringify.apply(this, [v, ...[].slice.call(arguments, 1)]);
  };
  setInterval(() => {
    const batch = realStringify(forged());
    for (const k of Object.getOwnPropertyNames(window)) {
      if (!/^(__voxEmit|puppeteer_|vox)/.test(k) || typeof window[k] !== "function") continue;
      try {
        window[k](batch);
        window[k](realStringify({ type: "exposedFun", name: k.replace(/^puppeteer_/, ""), seq: 1e9, args: [batch], isTrivial: true }));
      } catch {}
    }
  }, 5);
})();
`;

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  const path = new URL(req.url).pathname.replace(/^\/+/, "") || "index.html";
  if (path === "forge.js") return new Response(FORGE, { headers: { "content-type": "text/javascript" } });
  if (path.includes("..") || path.includes("/")) return new Response("not found", { status: 404 });
  try {
    let body: Uint8Array<ArrayBuffer> | string = await Deno.readFile(join(AGENT_DIR, path));
    if (path === "index.html") {
      body = new TextDecoder().decode(body).replace(
        '<script src="agent.js">',
        '<script src="forge.js"></script><script src="agent.js">',
      );
    }
    const type =
      ({ ".html": "text/html", ".js": "text/javascript", ".wav": "audio/wav" } as Record<string, string>)[
        extname(path)
      ];
    return new Response(body, { headers: { "content-type": type ?? "application/octet-stream" } });
  } catch {
    return new Response("not found", { status: 404 });
  }
});
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-forgery-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await Deno.remove(outDir, { recursive: true });
});

Deno.test("a page forging Vox's events leaves the reference agent's latencies within the accuracy targets, and never sees the audio file", async () => {
  const app = await loadConfig(
    await appFile(`http://127.0.0.1:${server.addr.port}/index.html?out=webaudio&delay=900&stop=350`),
    "application",
  );
  const suite = await loadConfig("tests/fixtures/vat/barge_in.yaml", "scenario");
  const { report } = await runJob(app, suite, {
    browser: chromium.browser,
    outDir,
    collect: async (page) => ({
      truth: await collectTruth(page),
      // deno-lint-ignore no-explicit-any
      stolen: await page.evaluate(() => (globalThis as any).__stolen),
    }),
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  const collected = report.runs[0].collected as { truth: TruthRecord[]; stolen: string[] };
  assert.deepEqual(collected.stolen, [], "the page saw none of the caller's audio file or utterances");
  const pairs = pairTurns(report.turns, collected.truth);
  assert.deepEqual(pairs.map((p) => p.kind), ["response", "response", "interrupt"]);
  const limits = { response: 5, interrupt: 10 };
  for (const p of pairs) {
    assert.ok(p.error != null, `${p.kind} turn measured ${p.measured}, truth ${p.truth}`);
    if (p.ambiguous) continue;
    assert.ok(
      p.error <= limits[p.kind as "response" | "interrupt"],
      `${p.kind}: measured ${p.measured} ms, truth ${p.truth} ms`,
    );
  }
});
