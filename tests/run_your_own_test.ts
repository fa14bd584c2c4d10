// /run-your-own: the page for visitors and users, and the whole path in a browser: save,
// run, cancel, and a run an eval agent takes, watched live to its metrics.
// VOX_SCREENSHOTS=<dir> also saves screenshots of the page's states there.
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { parse } from "yaml";
import { SESSION_COOKIE } from "../lib/auth/sessions.ts";
import { sampleReport, SimAgent } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { signedIn } from "./_auth.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const shots = Deno.env.get("VOX_SCREENSHOTS");

Deno.test("GET /run-your-own shows the form and a way in to visitors", async () => {
  const { app } = await createTestApp(sql);
  const res = await app.request("/run-your-own");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  assert.match(html, /data-island="run_your_own"/);
  assert.match(html, /ConvoAI engine/);
  assert.match(html, /RTC engine/);
  assert.match(html, /data-testid="signin-prompt"/);
  assert.match(html, /href="\/login\?next=%2Frun-your-own"/);
  assert.match(html, /deno task agent run --app app\.yaml --suite suite\.yaml/);
  assert.doesNotMatch(html, /data-testid="save-run"/);
});

Deno.test("GET /run-your-own offers signed-in users their projects and Save and run", async () => {
  const { app } = await createTestApp(sql);
  const me = await signedIn(sql);
  const res = await app.request("/run-your-own", { headers: me.headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  assert.match(html, /data-testid="save-run"/);
  assert.doesNotMatch(html, /data-testid="signin-prompt"/);
  const props = JSON.parse(
    /data-island="run_your_own" data-props="([^"]*)"/.exec(html)![1].replaceAll("&quot;", '"'),
  );
  assert.deepEqual(props.projects, [{ id: me.defaultProjectId, name: "Default" }]);
  assert.ok(props.providers.some((p: { sku: number }) => p.sku === 0));
});

Deno.test("the login page carries /run-your-own back after signing in", async () => {
  const { app } = await createTestApp(sql);
  const res = await app.request("/login?next=%2Frun-your-own");
  assert.equal(res.status, 200);
  assert.match(await res.text(), /name="next" value="\/run-your-own"/);
});

/** Sets a form control's value the way typing would (so Preact's onInput sees it). */
async function setValue(page: Page, selector: string, value: string) {
  await page.$eval(selector, (el, v) => {
    const input = el as HTMLInputElement | HTMLTextAreaElement;
    const proto = Object.getPrototypeOf(input);
    Object.getOwnPropertyDescriptor(proto, "value")!.set!.call(input, v);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

async function shot(page: Page, name: string) {
  if (!shots) return;
  await Deno.mkdir(shots, { recursive: true });
  // The panel scrolls itself into view; a full-page shot from there would paint the sticky header mid-page.
  await page.evaluate(() => globalThis.scrollTo({ top: 0, behavior: "instant" }));
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

const textOf = (page: Page, selector: string) =>
  page.$eval(selector, (el) => (el as HTMLElement).innerText.trim());

Deno.test(
  "in a browser: bad input is shown at its field, a job is saved, run, cancelled, then measured live",
  async () => {
    const server = await startOrchServer(sql);
    const { browser, close } = await launchBrowser();
    const agents: SimAgent[] = [];
    try {
      const visitor = await browser.newPage();
      await visitor.setViewport({ width: 1280, height: 900 });
      await visitor.goto(`${server.baseUrl}/run-your-own`);
      await visitor.waitForSelector('[data-island="run_your_own"][data-hydrated="true"]');
      await shot(visitor, "0-visitor");
      await visitor.close();

      const me = await signedIn(sql);
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      await page.setCookie({ name: SESSION_COOKIE, value: me.cookie.split("=")[1], url: server.baseUrl });
      const open = async () => {
        await page.goto(`${server.baseUrl}/run-your-own`);
        await page.waitForSelector('[data-island="run_your_own"][data-hydrated="true"]');
      };
      await open();
      await shot(page, "1-empty");
      const workflows = async () =>
        Number((await sql`SELECT count(*) FROM workflows WHERE created_by = ${me.id}`)[0].count);

      // A link that is no URL: the API's message, next to the link.
      await setValue(page, 'input[name="productName"]', "Acme Voice");
      await setValue(page, 'input[name="link"]', "not a url");
      await setValue(page, 'input[name="region"]', "ryo-nobody");
      await page.click('[data-testid="save-run"]');
      await page.waitForSelector('[data-error-for="link"]');
      assert.match(await textOf(page, '[data-error-for="link"]'), /^yaml\.url: /);
      assert.equal(await workflows(), 0);

      // Malformed eval YAML: the API's message under the eval steps; the workflow saved first is removed.
      await setValue(page, 'input[name="link"]', "http://127.0.0.1:9/agent");
      await page.click('[data-testid="eval-yaml-tab"]');
      await page.waitForSelector('textarea[name="evalYaml"]');
      const goodEval = await page.$eval(
        'textarea[name="evalYaml"]',
        (el) => (el as HTMLTextAreaElement).value,
      );
      assert.match(goodEval, /action: speak/);
      await setValue(page, 'textarea[name="evalYaml"]', "steps: [\n  - action: speak\n");
      await page.click('[data-testid="save-run"]');
      await page.waitForSelector('[data-error-for="eval"]');
      assert.match(await textOf(page, '[data-error-for="eval"]'), /^yaml: /);
      assert.equal(await page.$('[data-error-for="link"]'), null);
      assert.equal(await workflows(), 0);

      await setValue(page, 'textarea[name="evalYaml"]', goodEval);
      assert.equal(await page.$('[data-error-for="eval"]'), null);

      // A region the API refuses: said at the region, after the workflow and eval set were made and removed.
      await setValue(page, 'input[name="region"]', "Not a region");
      await page.click('[data-testid="save-run"]');
      await page.waitForSelector('[data-error-for="region"]');
      assert.match(await textOf(page, '[data-error-for="region"]'), /^region: /);
      assert.equal(await workflows(), 0);
      assert.equal(
        Number((await sql`SELECT count(*) FROM eval_sets WHERE created_by = ${me.id}`)[0].count),
        0,
      );
      await setValue(page, 'input[name="region"]', "ryo-nobody");

      // A region no agent serves: the job waits, and can be cancelled.
      await shot(page, "2-filled");
      await page.click('[data-testid="save-run"]');
      await page.waitForSelector('[data-testid="job-panel"][data-status="pending"]');
      assert.equal(await page.$eval('[data-testid="job-status"]', (el) => el.textContent), "pending");
      assert.equal(await workflows(), 1);
      await page.click('[data-testid="cancel"]');
      await page.waitForSelector('[data-testid="job-panel"][data-status="cancelled"]');
      assert.equal(await page.$('[data-testid="cancel"]'), null);
      const [cancelled] = await sql`SELECT status FROM eval_jobs WHERE created_by = ${me.id}`;
      assert.equal(cancelled.status, "cancelled");

      // An agent in the region takes the next run; its progress and result arrive without reload.
      const agent = await SimAgent.connect({
        baseUrl: server.baseUrl,
        token: await agentToken(sql, "ryo"),
        name: "ryo-sim",
        region: "ryo",
        auto: false,
      });
      agents.push(agent);
      const offered = agent.waitFor((m) => m.type === "job.offer", 30_000);
      // The form learns of the new agent's region when the region field is focused.
      await page.$eval('input[name="region"]', (el) => (el as HTMLInputElement).blur());
      await page.focus('input[name="region"]');
      await page.waitForFunction(() =>
        document.querySelector(".ryo-field small")?.textContent?.includes("Eval agents are in: ryo")
      );
      await setValue(page, 'input[name="region"]', "ryo");
      // The product was saved by the run before: this run updates that pair in place.
      await page.waitForSelector('[data-testid="saved-pair"]');
      await page.click('[data-testid="save-run"]');
      const offer = await offered;
      assert.equal(await workflows(), 1);
      assert.equal(offer.type, "job.offer");
      const jobId = (offer as { jobId: number }).jobId;
      await page.waitForSelector(`[data-testid="job-panel"]`);
      assert.match(await textOf(page, ".ryo-job h2"), new RegExp(`#${jobId}$`));
      agent.send({ type: "job.accepted", jobId });
      await page.waitForSelector('[data-testid="job-panel"][data-status="running"]');
      agent.send({
        type: "job.progress",
        jobId,
        step: 2,
        totalSteps: 4,
        message: "turn 1/2",
        turn: { kind: "response", latency_ms: 812, ok: true },
      });
      await page.waitForFunction(
        () => document.querySelector('[data-testid="job-progress"]')?.textContent?.includes("Step 2 of 4"),
      );
      assert.match(await textOf(page, '[data-testid="turns"]'), /Response\s+812 ms/);
      await shot(page, "3-running");

      agent.result(jobId, sampleReport(812));
      await page.waitForSelector('[data-testid="job-panel"][data-status="completed"] [data-testid="result"]');
      const result = await textOf(page, '[data-testid="result"]');
      assert.match(result, /Response latency\s+812\s*ms median/i);
      assert.match(result, /p90\s+852 ms/);
      assert.match(result, /Interrupt latency\s+406\s*ms median/i);
      assert.match(result, /Naturalness\s+70/);
      await shot(page, "4-completed");

      // Back later: picking the product loads its saved link and steps; "save as new" makes a
      // second pair, and the run after that updates the newest one.
      await open();
      const [acme] = await sql`SELECT id FROM providers WHERE name = 'Acme Voice'`;
      await page.select('select[name="provider"]', acme.id);
      await page.waitForSelector('[data-testid="saved-pair"]');
      assert.equal(
        await page.$eval('input[name="link"]', (el) => (el as HTMLInputElement).value),
        "http://127.0.0.1:9/agent",
      );
      await page.click('[data-testid="eval-yaml-tab"]');
      assert.deepEqual(
        parse(await page.$eval('textarea[name="evalYaml"]', (el) => (el as HTMLTextAreaElement).value)),
        parse(goodEval),
      );
      await setValue(page, 'input[name="region"]', "ryo-nobody");
      await page.click('input[name="reuse"][value="new"]');
      await page.click('[data-testid="save-run"]');
      await page.waitForSelector('[data-testid="job-panel"][data-status="pending"]');
      assert.equal(await workflows(), 2);
      await page.click('[data-testid="cancel"]');
      await page.waitForSelector('[data-testid="job-panel"][data-status="cancelled"]');
      await setValue(page, 'textarea[name="evalYaml"]', "steps:\n  - action: wait_for_voice\n");
      await page.click('[data-testid="save-run"]');
      await page.waitForFunction(() =>
        document.querySelector('[data-testid="job-panel"]')?.getAttribute("data-status") === "pending"
      );
      assert.equal(await workflows(), 2);
      const [newest] = await sql`
        SELECT config FROM eval_sets WHERE created_by = ${me.id} ORDER BY id DESC LIMIT 1`;
      assert.deepEqual(newest.config, { steps: [{ action: "wait_for_voice" }] });
    } finally {
      for (const a of agents) await a.kill();
      await close();
      await server.stop();
    }
  },
);

Deno.test(
  "a job's event stream says running when an agent claims it, before any progress",
  async () => {
    const server = await startOrchServer(sql);
    let agent: SimAgent | undefined;
    try {
      const me = await signedIn(sql);
      const post = (path: string, body: unknown) =>
        fetch(`${server.baseUrl}${path}`, {
          method: "POST",
          headers: { ...me.headers, "content-type": "application/json", origin: server.baseUrl },
          body: JSON.stringify(body),
        }).then((r) => r.json());
      const wf = await post("/api/v1/workflows", {
        projectId: me.defaultProjectId,
        name: "claim",
        provider: { name: "Claim Labs", sku: 0 },
        config: { url: "http://127.0.0.1:9/agent", steps: [] },
      });
      const set = await post("/api/v1/eval-sets", {
        projectId: me.defaultProjectId,
        name: "claim",
        config: { steps: [{ action: "wait_for_voice" }] },
      });
      const job = await post(`/api/v1/workflows/${wf.id}/run`, { evalSetId: set.id, region: "ryo-claim" });
      assert.equal(job.status, "pending");
      // Bounded, so a missing event fails the test instead of hanging it.
      const res = await fetch(`${server.baseUrl}/api/v1/jobs/${job.id}/events`, {
        headers: me.headers,
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(res.status, 200);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const until = async (text: string) => {
        while (!seen.includes(text)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${text}: ${seen}`);
          seen += value;
        }
      };
      await until('"status":"pending"');
      agent = await SimAgent.connect({
        baseUrl: server.baseUrl,
        token: await agentToken(sql, "ryo-claim"),
        name: "claimer",
        region: "ryo-claim",
        auto: false,
      });
      await until('"status":"running"');
      assert.doesNotMatch(seen, /event: progress/);
      await reader.cancel();
    } finally {
      await agent?.kill();
      await server.stop();
    }
  },
);
