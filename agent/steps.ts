/**
 * The steps: what each action of the voice-agent-tester format (and Vox's additions) does on
 * the page. Page steps (click, fill, select …) are here; the audio steps hand over to turn
 * timing (`turns.ts`).
 */
import { join } from "node:path";
import type { LoadedConfig } from "./config.ts";
import type { Step } from "./format.ts";
import { DETECTOR } from "./page_hooks.ts";
import type { Session } from "./session.ts";
import { bargeIn, noiseOnly, setHold, speak, waitForSilence, waitForVoice } from "./turns.ts";

/**
 * Runs one step of an application or scenario file on the session's page. Returns the
 * step's own metrics (`listen`: `reply_ms`) for its `metrics:` list to pick from.
 */
export async function executeStep(
  s: Session,
  config: LoadedConfig,
  step: Step,
  n: number,
): Promise<Record<string, number> | undefined> {
  const page = s.page;
  const timeout = typeof step.timeout === "number" ? step.timeout : s.stepTimeoutMs;
  const selector = step.selector as string;
  switch (step.action) {
    case "click":
      await page.waitForSelector(selector, { timeout });
      await page.click(selector);
      return;
    case "click_with_retry": {
      const retries = typeof step.retries === "number" ? step.retries : 3;
      const delay = typeof step.delay === "number" ? step.delay : 1000;
      let last: unknown;
      for (let i = 0; i < retries; i++) {
        try {
          await page.waitForSelector(selector, { timeout: Math.min(timeout, 5000) });
          await page.click(selector);
          return;
        } catch (err) {
          last = err;
          await new Promise((r) => setTimeout(r, delay));
        }
      }
      throw last;
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
      await speak(s, config, step, n);
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
