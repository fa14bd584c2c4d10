/**
 * The Deno side of the page hooks (`agent/page/`): the script every document gets before its
 * own scripts run, with the voice detector's settings, and the frames that carry it.
 */
import type { Frame, Page } from "puppeteer-core";

/** Voice detection parameters shared by the meter and the offline segmentation of utterances. */
export const DETECTOR = {
  theta: 0.01, // -40 dBFS
  // A voiced onset needs a quarter of the next 30 ms above theta: speech passes at its first
  // voiced sample, while codec clicks (a WebRTC loopback emits ~9 ms ones) do not.
  confirmMs: 30,
  minFraction: 0.25,
  holdMs: 400,
};

let hooksSource: Promise<string> | null = null;
/** Per-run settings of the hooks. */
export interface HookOptions {
  verbose: boolean;
  /** Name of the run's binding (`page.exposeFunction`); the hooks take it off the window. */
  binding: string;
  /** Report ICE servers and remote candidates (the strict egress policy). */
  strictEgress: boolean;
  /** Network profiles (method relay): the TURN server every peer connection is forced through. */
  turn?: ImposedTurn | null;
}

/** The TURN server the hooks impose on every RTCPeerConnection, with `iceTransportPolicy: "relay"`. */
export interface ImposedTurn {
  urls: string[];
  username: string;
  credential: string;
}

/** The page hooks with the worklet and the detector settings filled in. */
export async function pageHooks(opts: HookOptions): Promise<string> {
  hooksSource ??= (async () => {
    const [hooks, worklet] = await Promise.all([
      Deno.readTextFile(new URL("./page/hooks.js", import.meta.url)),
      Deno.readTextFile(new URL("./page/meter_worklet.js", import.meta.url)),
    ]);
    return hooks.replace("__VOX_WORKLET__", JSON.stringify(worklet));
  })();
  return (await hooksSource).replace("__VOX_CONFIG__", JSON.stringify({ detector: DETECTOR, ...opts }));
}

/** Frames whose document has Vox hooks, main frame first. */
export async function voxFrames(page: Page): Promise<Frame[]> {
  const out: Frame[] = [];
  for (const f of page.frames()) {
    // deno-lint-ignore no-explicit-any
    if (await f.evaluate(() => !!(globalThis as any).__vox).catch(() => false)) out.push(f);
  }
  return out;
}

/**
 * Frames that opened the microphone (a voice widget may live in an iframe); waits up to
 * `timeoutMs` for one, or until `signal` aborts.
 */
export async function micFrames(page: Page, timeoutMs: number, signal?: AbortSignal): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const frames: Frame[] = [];
    for (const f of await voxFrames(page)) {
      // deno-lint-ignore no-explicit-any
      if (await f.evaluate(() => (globalThis as any).__vox.hasMicrophone()).catch(() => false)) {
        frames.push(f);
      }
    }
    if (frames.length > 0) return frames;
    if (signal?.aborted) {
      throw new Error("cancelled while waiting for the page to open the microphone");
    }
    if (Date.now() > deadline) {
      throw new Error(`the page never opened the microphone (waited ${timeoutMs} ms)`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
