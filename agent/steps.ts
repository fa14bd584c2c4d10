/**
 * The steps: what each action of the voice-agent-tester format (and Vox's additions) does on
 * the page. Page steps (click, fill, select …) are here; the audio steps hand over to turn
 * timing (`turns.ts`).
 */
import { join } from "node:path";
import type { LoadedConfig } from "./config.ts";
import { clickAttempts, type Step } from "./format.ts";
import { DETECTOR } from "./page_hooks.ts";
import type { Session } from "./session.ts";
import { backchannel, pause, settlePause, speakTurn, speechNearby } from "./turn_taking.ts";
import { bargeIn, noiseOnly, setHold, waitForSilence, waitForVoice } from "./turns.ts";

/**
 * Runs one step of an application or scenario file on the session's page. Returns the
 * step's own metrics (`listen`: `reply_ms`) for its `metrics:` list to pick from.
 */
export async function executeStep(
  s: Session,
  config: LoadedConfig,
  step: Step,
  n: number,
  /** The steps that follow in the same file (a speak before a pause queues the one after it). */
  upcoming: Step[] = [],
): Promise<Record<string, number> | undefined> {
  const page = s.page;
  const timeout = typeof step.timeout === "number" ? step.timeout : s.stepTimeoutMs;
  const selector = step.selector as string;
  // A caller's pause ends at the next speak; any other step waits it out first.
  if (s.pendingPause && step.action !== "speak") await settlePause(s);
  switch (step.action) {
    case "click":
      await page.waitForSelector(selector, { timeout });
      await page.click(selector);
      return;
    case "click_with_retry":
      await clickWithRetry(s, step, timeout);
      return;
    case "execute_javascript": {
      // Evaluated in the page like the page's own scripts (the tester's `page.evaluate(code)`);
      // numbers in an object it returns are metrics the step's `metrics:` can pick.
      // Bounded by the step timeout: code that never settles does not hold the run.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result: unknown = await Promise.race([
        page.evaluate(step.code as string),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the code did not finish within ${timeout} ms`)),
            timeout,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      if (!result || typeof result !== "object") return;
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(result)) {
        if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
      }
      return out;
    }
    case "wait":
    case "wait_for_element":
      await page.waitForSelector(selector, { timeout });
      return;
    case "type":
      await page.waitForSelector(selector, { timeout });
      await page.focus(selector);
      await page.type(selector, step.text as string);
      return;
    case "fill":
      await page.waitForSelector(selector, { timeout });
      await page.$eval(selector, (el, value) => {
        const input = el as HTMLInputElement;
        if (input.tagName !== "INPUT" && input.tagName !== "TEXTAREA") {
          throw new Error(`fill needs an input or textarea, found ${input.tagName}`);
        }
        input.value = value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }, String(step.text));
      return;
    case "select":
      await select(s, step, timeout);
      return;
    case "sleep":
      await abortableSleep(step.time as number, s.queue.signal);
      return;
    case "screenshot": {
      // Always inside the job's own output folder, under a name Vox makes: the schema allows
      // only plain names (no folder, no `..`), and the run number keeps repetitions apart.
      const dir = typeof step.outputDir === "string" ? join(s.outDir, step.outputDir) : s.outDir;
      await Deno.mkdir(dir, { recursive: true });
      const stem = typeof step.filename === "string" ? step.filename.replace(/\.png$/i, "") : "screenshot";
      await page.screenshot({ path: join(dir, `${stem}_run${s.run}_step${n}.png`) as `${string}.png` });
      return;
    }
    case "speak":
      await speakTurn(s, config, step, n, upcoming);
      return;
    case "pause":
      pause(s, config, step, n);
      return;
    case "backchannel":
      await backchannel(s, config, step, n, timeout);
      return;
    case "speech_nearby":
      await speechNearby(s, config, step, n);
      return;
    case "barge_in":
      await bargeIn(s, config, step, n, timeout);
      return;
    case "noise":
      await noiseOnly(s, config, step, n);
      return;
    case "wait_for_voice":
      await waitForVoice(s, timeout);
      return;
    case "wait_for_silence":
      if (typeof step.silence_ms === "number") await setHold(s, step.silence_ms);
      await waitForSilence(s, timeout);
      if (typeof step.silence_ms === "number") await setHold(s, DETECTOR.holdMs);
      return;
    case "listen": {
      // Vox does not send audio to an external transcription service; it measures the
      // reply and keeps it in the recording. The step still waits for a whole reply.
      await waitForVoice(s, timeout);
      const end = await waitForSilence(s, timeout);
      const start = s.lastVoiceStart!;
      return { reply_ms: s.ms(end.ctx!, end.frame! - start.frame!) };
    }
  }
}

/** Waits `ms`, or less when `signal` aborts (a cancelled job or its deadline). */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Texts a widget shows when its voice calls are not enabled yet (voice-agent-tester's list). */
const NOT_READY = [
  "unauthenticated web calls",
  "support unauthenticated",
  "not configured",
  "configuration required",
];

/**
 * `click_with_retry`, as voice-agent-tester ran it: up to `retries` attempts (0 or absent: 2).
 * An attempt waits for the selector (the step timeout the first time, 5 s after); when it is
 * missing and the widget says it is not configured, the page is reloaded before the next
 * attempt. After a click it waits `checkDelay` ms and checks that a call started (an agent
 * audio element is playing into the meters, or an <audio>/<video> holds a stream); when not,
 * it clicks again after `retryDelay` ms. A call that never shows is not a failure (the
 * tester's rule); a selector that never shows is.
 */
async function clickWithRetry(s: Session, step: Step, timeout: number) {
  const page = s.page;
  const selector = step.selector as string;
  const attempts = clickAttempts(step);
  const retryDelay = typeof step.retryDelay === "number"
    ? step.retryDelay
    : typeof step.delay === "number"
    ? step.delay
    : 3000;
  const checkDelay = typeof step.checkDelay === "number" ? step.checkDelay : 4000;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await page.waitForSelector(selector, { timeout: attempt === 1 ? timeout : Math.min(timeout, 5000) });
    } catch (err) {
      const host = selector.split(">>>")[0].trim();
      const text = await page.evaluate((h) => {
        try {
          const el = document.querySelector(h);
          return ((el?.shadowRoot ?? el)?.textContent ?? "").toLowerCase();
        } catch {
          return "";
        }
      }, host).catch(() => "");
      const notReady = NOT_READY.some((t) => text.includes(t));
      if (attempt === attempts) {
        throw notReady
          ? new Error(`the widget says it is not configured for web calls: "${selector}" never appeared`)
          : new Error(
            `selector "${selector}" not found after ${attempts} attempts (${(err as Error).message})`,
          );
      }
      await abortableSleep(retryDelay, s.queue.signal);
      if (notReady) {
        await page.reload({ waitUntil: "load", timeout });
        await abortableSleep(2000, s.queue.signal);
      }
      continue;
    }
    await page.click(selector);
    await abortableSleep(checkDelay, s.queue.signal);
    if (await callStarted(s)) return;
    if (attempt < attempts) {
      s.progress(
        `    click_with_retry: no call after ${checkDelay} ms, clicking again (${attempt + 1}/${attempts})`,
      );
      await abortableSleep(retryDelay, s.queue.signal);
    }
  }
}

/** Whether the page shows a call: the meters tapped an agent element, or a media element holds a stream. */
async function callStarted(s: Session): Promise<boolean> {
  if (s.queue.events.some((e) => e.type === "tap")) return true;
  return await s.page.evaluate(() =>
    [...document.querySelectorAll("audio, video")].some((e) => (e as HTMLMediaElement).srcObject != null)
  ).catch(() => false);
}

/** `select`: a <select> by value(s) or option text, a checkbox or radio, or a custom list by text. */
async function select(s: Session, step: Step, timeout: number) {
  const page = s.page;
  const selector = step.selector as string;
  await page.waitForSelector(selector, { timeout });
  const info = await page.$eval(selector, (el) => ({
    tag: el.tagName,
    type: (el as HTMLInputElement).type ?? null,
    multiple: (el as HTMLSelectElement).multiple ?? false,
  }));
  if (info.tag === "SELECT") {
    if (Array.isArray(step.values)) await page.select(selector, ...(step.values as string[]));
    else if (typeof step.value === "string") await page.select(selector, step.value);
    else if (typeof step.text === "string") {
      await page.$eval(selector, (el, text) => {
        const sel = el as HTMLSelectElement;
        const opt = [...sel.options].find((o) => o.textContent?.trim() === text.trim());
        if (!opt) throw new Error(`no option with text "${text}"`);
        sel.value = opt.value;
        sel.dispatchEvent(new Event("change", { bubbles: true }));
        sel.dispatchEvent(new Event("input", { bubbles: true }));
      }, step.text);
    } else throw new Error("select needs value, values or text");
  } else if (info.tag === "INPUT" && info.type === "checkbox") {
    const checked = await page.$eval(selector, (el) => (el as HTMLInputElement).checked);
    const target = typeof step.checked === "boolean" ? step.checked : !checked;
    if (checked !== target) await page.click(selector);
  } else if (info.tag === "INPUT" && info.type === "radio") {
    await page.click(selector);
  } else if (typeof step.text === "string") {
    await page.evaluate(
      (sel, text) => {
        const parent = document.querySelector(sel);
        const opts = parent ? [...parent.querySelectorAll("[role=option], li, a, .option, div")] : [];
        const opt = opts.find((o) => o.textContent?.trim() === text.trim()) as HTMLElement | undefined;
        if (!opt) throw new Error(`no option with text "${text}" in ${sel}`);
        opt.click();
      },
      selector,
      step.text,
    );
  } else await page.click(selector);
}
