// `deno task screenshots`: every page (public, console, admin) at a desktop and a phone width,
// from a freshly seeded database with realistic data (several providers and regions, three
// weeks of results, a schedule, a failed job, a result with its recording), into
// .vox/screenshots/. Needs DATABASE_URL (a PostgreSQL server; a throwaway database is made
// and dropped, as the tests do) and Chromium (the eval agent's launcher finds it).
import { join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { createApiKey } from "../lib/auth/api_keys.ts";
import type { Sql } from "../lib/db.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { createSession, SESSION_COOKIE } from "../lib/auth/sessions.ts";
import { loadConfig } from "../lib/config.ts";
import { createSql } from "../lib/db.ts";
import { buildIslands } from "../lib/islands/bundle.ts";
import { createLogger } from "../lib/log.ts";
import { migrate } from "../lib/migrate.ts";
import { createDefaultProject } from "../lib/projects_default.ts";
import { seed } from "../lib/seed.ts";
import { importKey } from "../lib/secrets.ts";
import { createApp } from "../routes/app.ts";

const OUT = Deno.args[0] ?? join(".vox", "screenshots");
/** Optional second argument: only pages whose name contains it (e.g. `console-result`). */
const ONLY = Deno.args[1] ?? "";
const SIZES = [{ name: "desktop", width: 1280, height: 800 }, { name: "phone", width: 390, height: 844 }];

/** A stereo 16-bit WAV: caller (left) asks, agent (right) answers, caller barges in. */
function demoWav(rate = 16000, seconds = 6): Uint8Array {
  const frames = rate * seconds;
  const buf = new ArrayBuffer(44 + frames * 4);
  const v = new DataView(buf);
  const str = (o: number, s: string) => [...s].forEach((ch, i) => v.setUint8(o + i, ch.charCodeAt(0)));
  str(0, "RIFF");
  v.setUint32(4, 36 + frames * 4, true);
  str(8, "WAVEfmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 2, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 16, true);
  str(36, "data");
  v.setUint32(40, frames * 4, true);
  const voiced = (t: number, spans: [number, number][]) => spans.some(([a, b]) => t >= a && t < b);
  for (let i = 0; i < frames; i++) {
    const t = i / rate;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    const caller = voiced(t, [[0.5, 1.5], [3.6, 4.2]]) ? Math.sin(2 * Math.PI * 220 * t) * env * 0.6 : 0;
    const agent = voiced(t, [[2.1, 3.9], [4.9, 5.6]]) ? Math.sin(2 * Math.PI * 330 * t) * env * 0.6 : 0;
    v.setInt16(44 + i * 4, Math.round(caller * 32767), true);
    v.setInt16(46 + i * 4, Math.round(agent * 32767), true);
  }
  return new Uint8Array(buf);
}

/** A user with a Default project and a session cookie. */
async function signedIn(
  sql: Sql,
  u: { name: string; username: string; role?: string; isAdmin?: boolean },
): Promise<{ id: number; defaultProjectId: number; cookie: string }> {
  const [row] = await sql`
    INSERT INTO users (name, username, email, role, is_admin, activated_at)
    VALUES (${u.name}, ${u.username}, ${`${u.username}@example.test`}, ${u.role ?? "basic"}, ${
    u.isAdmin ?? false
  },
            now())
    RETURNING id`;
  const defaultProjectId = await createDefaultProject(sql, row.id);
  const { token } = await createSession(sql, row.id);
  return { id: row.id, defaultProjectId, cookie: `${SESSION_COOKIE}=${token}` };
}

async function seedData(sql: Sql) {
  const adminUser = await signedIn(sql, { isAdmin: true, name: "Ada Admin", username: "admin" });
  const user = await signedIn(sql, { role: "principal", name: "Riley Rivera", username: "riley" });
  const [project2] = await sql`
    INSERT INTO projects (name, description, owner_user_id, created_by)
    VALUES ('Support line', 'The phone agent of the support team', ${user.id}, ${user.id}) RETURNING id`;
  const [extra] = await sql`
    INSERT INTO providers (name, sku) VALUES ('ElevenLabs Agents', 0) RETURNING id, name, sku`;
  const providers = [...SEEDED_PROVIDERS.slice(0, 2), extra as { id: string; name: string }];
  const regions = ["eu-west-1", "us-east-1", "ap-south-1"];
  const workflows: { id: number; providerId: string }[] = [];
  for (const [i, p] of providers.entries()) {
    const [w] = await sql`
      INSERT INTO workflows (project_id, provider_id, name, config, is_mainline, created_by)
      VALUES (${i === 2 ? project2.id : user.defaultProjectId}, ${p.id}, ${`${p.name} starter`},
              ${
      sql.json({
        url: `https://agents.example.com/${p.id}`,
        steps: [{ action: "click", selector: "text=Start call" }],
      })
    },
              ${i < 2}, ${user.id}) RETURNING id`;
    workflows.push({ id: w.id, providerId: p.id });
  }
  const [evalSet] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline, created_by)
    VALUES (${user.defaultProjectId}, 'Greeting, two questions, one barge-in', ${
    sql.json({
      steps: [
        { action: "wait_for_voice" },
        { action: "speak", text: "What are your opening hours?" },
        { action: "wait_for_voice", metrics: ["response_latency"] },
        { action: "barge_in", text: "Sorry, one more thing" },
      ],
    })
  }, true, ${user.id}) RETURNING id`;
  const tokens = [];
  for (const region of regions.slice(0, 2)) {
    const t = await createAgentToken(sql, { name: `rack-${region}`, region, expiresAt: null });
    tokens.push(t.info);
  }
  const states = ["IDLE", "OCCUPIED", "OFFLINE"];
  for (const [i, t] of tokens.entries()) {
    const [agent] = await sql`
      INSERT INTO eval_agents (token_id, name, region, state, version, last_seen_at, last_job_at)
      VALUES (${t.id}, ${`agent-${t.region}`}, ${t.region}, ${
      states[i]
    }, 'vox_eval_agentd/1.0', now(), now()) RETURNING id`;
    // The busy agent is running a job right now (the admin's agents table shows it).
    if (states[i] === "OCCUPIED") {
      await sql`
        INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, attempts, agent_id, created_by,
                               started_at, progress)
        VALUES (${workflows[0].id}, ${evalSet.id}, ${t.region}, 'running', 1, ${agent.id}, ${user.id},
                now() - interval '40 seconds', ${sql.json({ step: 2, totalSteps: 4, message: "turn 1/2" })})`;
    }
  }
  // Three weeks of results: each workflow in two regions, twice a day.
  const now = Date.now();
  let last = 0;
  for (const [wi, w] of workflows.entries()) {
    for (const [ri, region] of regions.slice(0, 2).entries()) {
      for (let d = 21; d >= 0; d -= 0.5) {
        const at = new Date(now - d * 86_400_000 - (wi * 7 + ri * 3) * 60_000);
        const base = 520 + wi * 140 + ri * 60 + Math.round(80 * Math.sin(d + wi));
        const [job] = await sql`
          INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, attempts, created_by, created_at,
                                 started_at, finished_at)
          VALUES (${w.id}, ${evalSet.id}, ${region}, 'completed', 1, ${user.id}, ${at}, ${at}, ${at}) RETURNING id`;
        const turns = [
          {
            kind: "response",
            latency_ms: base,
            ok: true,
            run: 1,
            step: 3,
            caller_voiced_start_frame: 8000,
            caller_voiced_end_frame: 24000,
            agent_frame: 24000 + Math.round(base * 16),
            sample_rate: 16000,
          },
          {
            kind: "interrupt",
            latency_ms: 300 + wi * 40,
            ok: true,
            run: 1,
            step: 4,
            caller_voiced_start_frame: 57600,
            agent_frame: 57600 + (300 + wi * 40) * 16,
            sample_rate: 16000,
          },
        ];
        const [r] = await sql`
          INSERT INTO eval_results (job_id, workflow_id, eval_set_id, provider_id, region, is_mainline,
            response_latency_median, response_latency_sd, response_latency_p90, response_latency_n,
            interrupt_latency_median, interrupt_latency_sd, interrupt_latency_p90, interrupt_latency_n,
            network_resilience, naturalness, noise_reduction, turns, methods, report, created_at)
          VALUES (${job.id}, ${w.id}, ${evalSet.id}, ${w.providerId}, ${region}, ${wi < 2},
            ${base}, ${40 + wi * 5}, ${base + 180}, 6, ${300 + wi * 40}, 35, ${380 + wi * 40}, 2,
            ${80 - wi * 5}, ${72 + wi}, ${65 + wi * 3}, ${sql.json(turns)},
            ${sql.json({ response_latency: "vox-audioclock-response/1" })},
            ${
          sql.json({
            runs: [{ run: 1, recording: "recording-1.wav", sample_rate: 16000, recording_first_frame: 0 }],
          })
        },
            ${at}) RETURNING id`;
        last = job.id;
        void r;
      }
    }
  }
  const wav = demoWav();
  const sha = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", wav as Uint8Array<ArrayBuffer>)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await sql`
    INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data)
    VALUES (${last}, 'recording', 'recording-1.wav', 'audio/wav', ${wav.length}, ${sha}, ${wav})`;
  const [failed] = await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, attempts, created_by, started_at, finished_at,
                           error)
    VALUES (${workflows[2].id}, ${evalSet.id}, 'ap-south-1', 'failed', 3, ${user.id}, now(), now(),
            'step 1 (click "text=Start call"): no element matched within 10 s') RETURNING id`;
  await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, created_by)
    VALUES (${workflows[0].id}, ${evalSet.id}, 'ap-south-1', 'pending', ${user.id})`;
  await sql`
    INSERT INTO eval_schedules (workflow_id, eval_set_id, region, schedule_type, cron_expression, timezone,
                                is_enabled, next_run_at, created_by)
    VALUES (${
    workflows[0].id
  }, ${evalSet.id}, 'eu-west-1', 'recurring', '*/30 * * * *', 'Europe/Berlin', true,
            now() + interval '20 minutes', ${user.id})`;
  await createApiKey(sql, user.id, { name: "CI pipeline", expiresAt: null });
  return {
    admin: adminUser,
    user,
    lastJob: last,
    failedJob: failed.id as number,
    workflow: workflows[0].id,
    evalSet: evalSet.id,
  };
}

const adminUrl = Deno.env.get("DATABASE_URL");
if (!adminUrl) {
  console.error(
    "deno task screenshots needs DATABASE_URL (a PostgreSQL server; it makes and drops its own database)",
  );
  Deno.exit(2);
}
const dbName = `vox_screenshots_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const admin = createSql(adminUrl, { max: 1 });
await admin.unsafe(`CREATE DATABASE "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;
const sql = createSql(dbUrl.toString(), { max: 5 });
const log = createLogger();
try {
  await migrate(sql, { log });
  await seed(sql);
  // Dozens of page loads by one user in a minute: no rate limit in the way.
  await sql`UPDATE system_config SET value = ${sql.json({ max: 1_000_000, windowSeconds: 900 })}
            WHERE key IN ('rate_limit.general', 'rate_limit.auth')`;
  const s = await seedData(sql);
  const app = createApp({
    sql,
    config: loadConfig({ DATABASE_URL: dbUrl.toString(), VOX_SECRET_KEY: "0".repeat(64), VOX_DEMO: "false" }),
    assets: await buildIslands({ outRoot: join(".vox", "build", "islands"), log }),
    log,
    serverId: "screenshots",
    secretKey: await importKey(new Uint8Array(32).fill(7)),
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const pages: [string, string, string | null][] = [
    ["home", "/", null],
    ["realtime", "/realtime", null],
    ["leaderboard", "/leaderboard", null],
    ["dive", "/dive", null],
    ["pricing", "/pricing", null],
    ["agents", "/agents", null],
    ["run-your-own", "/run-your-own", null],
    ["login", "/login", null],
    ["console-projects", "/console/projects", s.user.cookie],
    ["console-workflows", "/console/workflows", s.user.cookie],
    ["console-workflow", `/console/workflows/${s.workflow}`, s.user.cookie],
    ["console-eval-sets", "/console/eval-sets", s.user.cookie],
    ["console-eval-set", `/console/eval-sets/${s.evalSet}`, s.user.cookie],
    ["console-jobs", "/console/jobs", s.user.cookie],
    ["console-result", `/console/jobs/${s.lastJob}`, s.user.cookie],
    ["console-failed-job", `/console/jobs/${s.failedJob}`, s.user.cookie],
    ["console-compare", `/console/compare?workflowId=${s.workflow}`, s.user.cookie],
    ["console-schedules", "/console/schedules", s.user.cookie],
    ["console-api-keys", "/console/api-keys", s.user.cookie],
    ["console-account", "/console/account", s.user.cookie],
    ["admin-users", "/admin/console/users", s.admin.cookie],
    ["admin-workers", "/admin/console/workers", s.admin.cookie],
    ["admin-jobs", "/admin/console/jobs", s.admin.cookie],
    ["admin-settings", "/admin/console/settings", s.admin.cookie],
    ["console-organization", "/console/organization", s.user.cookie],
    ["admin-organizations", "/admin/console/organizations", s.admin.cookie],
    ["admin-pricing", "/admin/console/pricing", s.admin.cookie],
    ["console-providers", "/console/providers", s.admin.cookie],
  ];
  await Deno.mkdir(OUT, { recursive: true });
  const chromium = await launchChromium();
  try {
    for (const size of SIZES) {
      for (const cookie of [null, s.user.cookie, s.admin.cookie]) {
        const context = await chromium.browser.createBrowserContext();
        if (cookie) {
          const [name, value] = cookie.split("=");
          await context.setCookie({ name, value, domain: "127.0.0.1", path: "/" });
        }
        const page = await context.newPage();
        await page.setViewport({ width: size.width, height: size.height });
        for (const [name, path, who] of pages) {
          if (who !== cookie || !name.includes(ONLY)) continue;
          await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
          await page.waitForFunction(() =>
            [...document.querySelectorAll<HTMLElement>("[data-island]")].every((el) => el.dataset.hydrated)
          );
          await new Promise((r) => setTimeout(r, 300)); // charts and waveforms draw after hydration
          await page.screenshot({
            path: join(OUT, `${name}-${size.name}.png`) as `${string}.png`,
            fullPage: true,
          });
        }
        await context.close();
      }
    }
  } finally {
    await chromium.close();
    await server.shutdown();
  }
  console.log(`screenshots of ${pages.length} pages at ${SIZES.length} widths in ${OUT}`);
} finally {
  await sql.end({ timeout: 5 });
  await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.end();
}
