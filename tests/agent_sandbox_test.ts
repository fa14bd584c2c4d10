// Chromium as the eval agent launches it: sandboxed, and never as root.
import assert from "node:assert/strict";
import { launchChromium } from "../agent/browser.ts";

Deno.test("the agent's Chromium runs with its sandbox on, as an unprivileged user when the agent is root", async () => {
  const launched = await launchChromium();
  try {
    assert.equal(launched.sandboxed, true);
    const pid = launched.browser.process()?.pid;
    assert.ok(pid, "the browser process is known");
    const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
    assert.ok(!cmdline.includes("--no-sandbox"), "no --no-sandbox flag");
    const uid = Number((await Deno.readTextFile(`/proc/${pid}/status`)).match(/^Uid:\s+(\d+)/m)![1]);
    assert.notEqual(uid, 0, "Chromium does not run as root");
    if (Deno.uid() === 0) assert.equal(launched.user, "vox-browser");
    const page = await launched.browser.newPage();
    await page.goto("chrome://sandbox");
    const text = await page.evaluate(() => document.body.innerText);
    assert.match(text, /Seccomp-BPF sandbox\s+Yes/);
    assert.match(text, /You are adequately sandboxed/);
  } finally {
    await launched.close();
  }
});
