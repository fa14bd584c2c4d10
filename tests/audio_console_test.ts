// The console's audio page in Chromium against a real server: drop a clip on the zone, see it
// listed with its waveform and play it, see a refusal named beside a file that is not audio,
// rename, see which eval set uses a clip (and that it then offers no delete), delete with a
// confirmation; and an eval set's guided editor offering clips and voices for a speak step.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { parse } from "yaml";
import { toBase64 } from "../agent/audio.ts";
import { axeProblems } from "./_a11y.ts";
import { createTestApp } from "./_app.ts";
import { signedIn } from "./_auth.ts";
import { hydrated, launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const origin = `http://127.0.0.1:${server.addr.port}`;
const chromium = await launchBrowser();
const tmp = await Deno.makeTempDir({ prefix: "vox-audio-console-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await db.close();
  await Deno.remove(tmp, { recursive: true });
});

/** The bar heights of a clip's waveform on the page (each bar's `M x y1 V y2` in the SVG path). */
function bars(page: Page, clip: string): Promise<number[]> {
  return page.$eval(
    `tr[data-clip="${clip}"] svg.c-waveform path`,
    (path) =>
      [...(path.getAttribute("d") ?? "").matchAll(/M[\d.]+ ([\d.]+)V([\d.]+)/g)].map((m) =>
        Number(m[2]) - Number(m[1])
      ),
  );
}

/** Drops a file with these bytes on the upload zone, as a user dragging it from their desktop would. */
async function drop(page: Page, name: string, bytes: Uint8Array) {
  await page.$eval(
    ".c-drop",
    (zone, name, b64) => {
      const bin = atob(b64 as string);
      const data = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], name as string));
      for (const type of ["dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    name,
    toBase64(bytes),
  );
}

Deno.test("upload by drag and drop, play, a named refusal, rename, used by, delete", async () => {
  const wav = join(tmp, "greeting.wav");
  await new Deno.Command("espeak-ng", { args: ["-w", wav, "Good morning, I am calling about my order."] })
    .output();
  const u = await signedIn(sql, { name: "Audio Ann" });
  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const [cookieName, value] = u.cookie.split("=");
  await context.setCookie({ name: cookieName, value, domain: "127.0.0.1", path: "/", httpOnly: true });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // The projects page links to the project's audio.
  await page.goto(`${origin}/console/projects`);
  await Promise.all([
    page.waitForNavigation(),
    page.click(`tr[data-project="${u.defaultProjectId}"] a[href$="/audio"]`),
  ]);
  assert.equal(new URL(page.url()).pathname, `/console/projects/${u.defaultProjectId}/audio`);
  await hydrated(page);
  assert.match(await page.$eval("main", (el) => el.textContent ?? ""), /No clips yet/);
  assert.ok(await page.$('audio[src="/api/v1/audio/library/v1-greeting.ogg"]'), "the library is listed");

  // Drag and drop: stored, the page reloads with the clip.
  await Promise.all([page.waitForNavigation(), drop(page, "greeting.wav", await Deno.readFile(wav))]);
  await hydrated(page);
  const row = await page.$eval('tr[data-clip="greeting.wav"]', (el) => el.textContent ?? "");
  assert.match(row, /wav, 22050 Hz, mono/);
  assert.match(row, /no eval set/);
  // Its waveform is drawn: one bar per slice, speech tall somewhere and not one flat line.
  const greeting = await bars(page, "greeting.wav");
  assert.equal(greeting.length, 120);
  assert.ok(Math.max(...greeting) > 8, `tallest bar ${Math.max(...greeting)} of 32`);
  assert.ok(Math.max(...greeting) - Math.min(...greeting) > 6, "the bars follow the speech");
  // It plays, and the browser decodes the length the server measured.
  const duration = await page.$eval('tr[data-clip="greeting.wav"] audio', async (el) => {
    const audio = el as HTMLAudioElement;
    audio.muted = true;
    await audio.play();
    audio.pause();
    return audio.duration;
  });
  const [{ durationMs }] = await sql`
    SELECT b.duration_ms FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id
    WHERE pa.project_id = ${u.defaultProjectId} AND pa.name = 'greeting.wav'`;
  assert.ok(
    Math.abs(duration * 1000 - durationMs) < 30,
    `${duration} s in the browser, ${durationMs} ms stored`,
  );

  // A text file with an audio name: the refusal is shown beside it, nothing stored.
  await drop(page, "notes.mp3", new TextEncoder().encode("not audio at all\n".repeat(20)));
  await page.waitForSelector(".c-upload-results [role=alert]");
  assert.match(
    await page.$eval(".c-upload-results", (el) => el.textContent ?? ""),
    /notes\.mp3: file: not an audio file Vox accepts/,
  );

  // Rename.
  await page.click('tr[data-clip="greeting.wav"] details summary');
  const input = 'tr[data-clip="greeting.wav"] input[name="name"], tr[data-clip="greeting.wav"] input';
  await page.$eval(input, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(input, "hello_caller.wav");
  await Promise.all([
    page.waitForNavigation(),
    page.click('tr[data-clip="greeting.wav"] button[type=submit]'),
  ]);
  await hydrated(page);
  assert.ok(await page.$('tr[data-clip="hello_caller.wav"]'));

  // An eval set uses it: listed, with no rename or delete offered.
  const set = await app.request("/api/v1/eval-sets", {
    method: "POST",
    headers: { ...u.headers, origin, "sec-fetch-site": "same-origin", "content-type": "application/json" },
    body: JSON.stringify({
      projectId: u.defaultProjectId,
      name: "Morning caller",
      config: { steps: [{ action: "speak", file: "hello_caller.wav" }, { action: "wait_for_voice" }] },
    }),
  });
  assert.equal(set.status, 201, await set.clone().text());
  const { id: setId } = await set.json();
  await page.reload();
  await hydrated(page);
  assert.equal(
    await page.$eval('tr[data-clip="hello_caller.wav"] .c-used-by a', (el) => el.getAttribute("href")),
    `/console/eval-sets/${setId}`,
  );
  assert.equal(await page.$('tr[data-clip="hello_caller.wav"] [data-label="Delete"]'), null);

  // Unused again: deleted after the confirmation.
  await app.request(`/api/v1/eval-sets/${setId}`, {
    method: "DELETE",
    headers: { ...u.headers, origin, "sec-fetch-site": "same-origin" },
  });
  await page.reload();
  await hydrated(page);
  await page.click('tr[data-clip="hello_caller.wav"] [data-label="Delete"] button');
  await Promise.all([
    page.waitForNavigation(),
    page.click('tr[data-clip="hello_caller.wav"] .c-confirm button'),
  ]);
  assert.match(await page.$eval("main", (el) => el.textContent ?? ""), /No clips yet/);
  assert.deepEqual(errors, []);
  await context.close();
});

Deno.test("a clip's waveform follows its audio, without JavaScript too; the guided editor offers clips and voices", async () => {
  // One second of silence, then one second of a loud tone: the envelope must show both halves.
  const tone = join(tmp, "tone.wav");
  const made = await new Deno.Command("sox", {
    args: [
      "-n",
      "-r",
      "16000",
      "-c",
      "1",
      "-b",
      "16",
      tone,
      "synth",
      "1",
      "sine",
      "440",
      "vol",
      "0.8",
      "pad",
      "1",
      "0",
    ],
  }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const u = await signedIn(sql, { name: "Guided Gail" });
  const same = { ...u.headers, origin, "sec-fetch-site": "same-origin" };
  const form = new FormData();
  form.append("file", new File([await Deno.readFile(tone)], "tone.wav"));
  form.append("name", "half_tone.wav");
  const up = await app.request(`/api/v1/projects/${u.defaultProjectId}/audio`, {
    method: "POST",
    headers: same,
    body: form,
  });
  assert.equal(up.status, 201, await up.clone().text());

  // The envelope, from the API and in the page as served (no script involved).
  const peaks = await app.request(
    `/api/v1/projects/${u.defaultProjectId}/audio/half_tone.wav/peaks`,
    { headers: u.headers },
  );
  assert.equal(peaks.status, 200);
  assert.match(peaks.headers.get("content-type") ?? "", /application\/json/);
  const { peaks: envelope } = await peaks.json() as { peaks: number[] };
  assert.equal(envelope.length, 120);
  assert.ok(envelope.slice(0, 58).every((p) => p < 0.02), "the first second is silent");
  assert.ok(envelope.slice(62).every((p) => p > 0.7 && p <= 0.81), "the second is the 0.8 tone");
  // The listing carries the same envelope when asked (the page's one request), and only then.
  const listing = async (query: string) => {
    const res = await app.request(`/api/v1/projects/${u.defaultProjectId}/audio${query}`, {
      headers: u.headers,
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { clips: { name: string; peaks?: number[] }[] }).clips;
  };
  assert.deepEqual((await listing("?peaks=true")).map((c) => [c.name, c.peaks]), [[
    "half_tone.wav",
    envelope,
  ]]);
  assert.equal((await listing(""))[0].peaks, undefined);
  const html =
    await (await app.request(`/console/projects/${u.defaultProjectId}/audio`, { headers: u.headers }))
      .text();
  assert.match(html, /<svg[^>]*aria-label="Waveform of half_tone.wav"/);

  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const [cookieName, value] = u.cookie.split("=");
  await context.setCookie({ name: cookieName, value, domain: "127.0.0.1", path: "/", httpOnly: true });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${origin}/console/projects/${u.defaultProjectId}/audio`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const drawn = await bars(page, "half_tone.wav");
  assert.ok(drawn.slice(0, 58).every((h) => h <= 1.1), `silence drawn as a hairline: ${drawn.slice(0, 58)}`);
  assert.ok(drawn.slice(62).every((h) => h > 22), `the tone drawn tall: ${drawn.slice(62)}`);
  assert.ok(
    await page.$eval(
      'tr[data-clip="half_tone.wav"] svg.c-waveform',
      (el) => el.getBoundingClientRect().width,
    ) > 100,
  );
  assert.deepEqual(await axeProblems(page), []);

  // An eval set's guided editor: the speak step offers the upload, the library and the voices.
  const set = await app.request("/api/v1/eval-sets", {
    method: "POST",
    headers: { ...same, "content-type": "application/json" },
    body: JSON.stringify({
      projectId: u.defaultProjectId,
      name: "Tone caller",
      config: { steps: [{ action: "speak", text: "Hello there" }, { action: "wait_for_voice" }] },
    }),
  });
  assert.equal(set.status, 201, await set.clone().text());
  const { id: setId } = await set.json();
  await page.goto(`${origin}/console/eval-sets/${setId}`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.click("[data-testid=edit-yaml-guided-view]");
  await page.waitForSelector("[data-testid=edit-yaml-guided]");
  const options = (id: string) =>
    page.$$eval(`#${id} option`, (els) => els.map((e) => (e as HTMLOptionElement).value));
  const files = await options("edit-yaml-audio-files");
  assert.ok(files.includes("half_tone.wav"), `${files}`);
  assert.ok(files.includes("v1-interruption.ogg"), `${files}`);
  const voices = await options("edit-yaml-voices");
  for (const v of ["en-us", "flite:slt", "openai:alloy"]) assert.ok(voices.includes(v), `${voices}`);

  // The phrase gets a voice from its list; a new speak step the upload; a barge-in a library clip.
  const guided = "[data-testid=edit-yaml-guided]";
  const listOf = (sel: string) => page.$eval(sel, (el) => (el as HTMLInputElement).list?.id ?? null);
  assert.equal(await listOf(`${guided} .ryo-step:nth-child(1) .ryo-voice`), "edit-yaml-voices");
  await page.type(`${guided} .ryo-step:nth-child(1) .ryo-voice`, "flite:slt");
  await page.select(`${guided} .ryo-add select`, "speak");
  await page.select(`${guided} .ryo-step:nth-child(3) select`, "file");
  assert.equal(await listOf(`${guided} .ryo-step:nth-child(3) .ryo-say`), "edit-yaml-audio-files");
  await page.type(`${guided} .ryo-step:nth-child(3) .ryo-say`, "half_tone.wav");
  await page.select(`${guided} .ryo-add select`, "barge_in");
  await page.select(`${guided} .ryo-step:nth-child(4) select`, "file");
  await page.type(`${guided} .ryo-step:nth-child(4) .ryo-say`, "v1-interruption.ogg");
  assert.deepEqual(await axeProblems(page), []);
  await page.click("[data-testid=edit-yaml-yaml-view]");
  const yaml = await page.$eval("#edit-yaml", (el) => (el as HTMLTextAreaElement).value);
  const written = [
    { action: "speak", text: "Hello there", voice: "flite:slt" },
    { action: "wait_for_voice" },
    { action: "speak", file: "half_tone.wav" },
    { action: "barge_in", file: "v1-interruption.ogg" },
  ];
  assert.deepEqual(parse(yaml).steps, written);

  // Saved as written, and the server accepts the names (it checks every clip an eval set names).
  await Promise.all([page.waitForNavigation(), page.click("#edit button[type=submit]")]);
  const [row] = await sql`SELECT config FROM eval_sets WHERE id = ${setId}`;
  assert.deepEqual(row.config.steps, written);
  assert.deepEqual(errors, []);
  await context.close();
});
