// Bounded agent sockets, artifacts, live streams and fair use (issue 10, part B).
import assert from "node:assert/strict";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { CreateBucketCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { AGENT_WS_PATH, MAX_ARTIFACT_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "../agent/protocol.ts";
import { SimAgent } from "../bench/sim_agent.ts";
import { artifactStoreFromConfig, S3ArtifactStore } from "../lib/artifact_store.ts";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { pruneArtifacts } from "../lib/artifacts.ts";
import { createJob } from "../lib/queue.ts";
import { createSchedule, getSchedule, tickSchedules } from "../lib/schedules.ts";
import { testConfig } from "./_app.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, insertEvalPair, type OrchServer, spawnServer, startOrchServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";
import { rawUpgrade } from "./_bytes.ts";

const db = await createTestDatabase();
const sql = db.sql;
const server = await startOrchServer(sql, {}, {
  config: testConfig({ VOX_ARTIFACT_BYTES_PER_JOB: String(5000) }),
});
const base = server.baseUrl;
Deno.test.afterAll(async () => {
  await server.stop();
  await db.close();
});

const report = {
  metrics: {
    response_latency: { median: 1, sd: 0, p90: 1, n: 1 },
    interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
    network_resilience: null,
    noise_reduction: null,
    naturalness: null,
  },
  turns: [],
};

/** A job running on a fresh agent of a fresh token in `region`. */
async function heldJob(s: Pick<OrchServer, "baseUrl">, region: string) {
  const token = await agentToken(sql, region);
  const agent = await SimAgent.connect({ baseUrl: s.baseUrl, token, name: "a", region, auto: false });
  const pair = await insertEvalPair(sql);
  const job = await createJob(sql, { ...pair, region });
  await agent.seen((m) => m.type === "job.offer" && m.jobId === job.id);
  return { token, agent, pair, job };
}

function put(
  baseUrl: string,
  token: string,
  jobId: number,
  name: string,
  body: BodyInit,
  type = "audio/wav",
) {
  return fetch(`${baseUrl}/api/agent/jobs/${jobId}/artifacts/${name}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body,
  });
}

/** A raw HTTP/1.1 upgrade request to the agent socket, kept in `conns`; resolves with the status line. */
async function upgradeKept(port: number, conns: Deno.Conn[]) {
  const answer = await rawUpgrade(port, AGENT_WS_PATH);
  conns.push(answer.conn);
  return answer;
}

Deno.test("tokenless agent upgrades are refused at once with 401: no socket, nothing held", async () => {
  const port = Number(new URL(base).port);
  const conns: Deno.Conn[] = [];
  try {
    const answers: { status: string; conn: Deno.Conn; rest: Uint8Array }[] = [];
    // 1,000 upgrades without a token from one address.
    for (let i = 0; i < 1000; i += 50) {
      answers.push(...await Promise.all(Array.from({ length: 50 }, () => upgradeKept(port, conns))));
    }
    const statuses = answers.map((a) => a.status);
    assert.deepEqual([...new Set(statuses)], ["HTTP/1.1 401 Unauthorized"]);
    // The body says why, as the daemon reads it.
    const res = await fetch(`${base}${AGENT_WS_PATH}`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.error.details.reason, "malformed");
    assert.equal(body.error.details.closeCode, 4001);
    // An agent with the token in its upgrade header is not held up by them.
    const token = await agentToken(sql, "gate");
    const agent = await SimAgent.connect({ baseUrl: base, token, name: "g", region: "gate" });
    assert.ok(agent.registered);
    await agent.kill();
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
  }
});

Deno.test("an oversize frame closes an agent socket with 1009", async () => {
  const url = base.replace(/^http/, "ws") + AGENT_WS_PATH;
  const token = await agentToken(sql, "oversize");
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  ws.onopen = () => ws.send("x".repeat(MAX_FRAME_BYTES + 1));
  const e = await closed;
  assert.equal(e.code, 1009);
  assert.match(e.reason, /larger than/);
});

Deno.test("artifacts: unknown names 400, a 21st 409, past the job total 413, no echoed Content-Type", async () => {
  const { token, agent, job, pair } = await heldJob(server, "art-limits");
  for (const name of ["call.wav", "recording-0.wav", "recording-100.wav", "..%2Frecording-1.wav"]) {
    const res = await put(base, token, job.id, name, new Uint8Array(3));
    assert.equal(res.status, 400, name);
    assert.match((await res.json()).error.message, /^name: /);
  }
  // The job total is 5000 bytes here: 4000 fit, then 1001 more do not (Content-Length first,
  // then a streamed body without one).
  const first = await put(base, token, job.id, "recording-1.wav", new Uint8Array(4000).fill(1), "text/html");
  assert.equal(first.status, 201);
  await first.body?.cancel();
  const over = await put(base, token, job.id, "recording-2.wav", new Uint8Array(1001));
  assert.equal(over.status, 413);
  assert.match((await over.json()).error.message, /1000 bytes left of its 5000-byte artifact total/);
  const streamed = new ReadableStream({
    start(c) {
      c.enqueue(new Uint8Array(600));
      c.enqueue(new Uint8Array(600));
      c.close();
    },
  });
  const over2 = await put(base, token, job.id, "recording-2.wav", streamed);
  assert.equal(over2.status, 413);
  await over2.body?.cancel();
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_artifacts WHERE job_id = ${job.id}`;
  assert.equal(n, 1, "a refused upload leaves no row");
  assert.equal(
    (await sql`SELECT count(*)::int AS n FROM eval_artifact_chunks c JOIN eval_artifacts a ON a.id = c.artifact_id
               WHERE a.job_id = ${job.id}`)[0].n,
    1,
  );
  for (let i = 2; i <= 20; i++) {
    const res = await put(base, token, job.id, `recording-${i}.wav`, new Uint8Array(10));
    assert.equal(res.status, 201, `recording-${i}`);
    await res.body?.cancel();
  }
  const extra = await put(base, token, job.id, "recording-21.wav", new Uint8Array(10));
  assert.equal(extra.status, 409);
  const body = await extra.json();
  assert.equal(body.error.code, "too_many_artifacts");
  assert.equal(body.error.details.max, 20);

  // The download serves a fixed type for the name, whatever the agent sent.
  agent.send({ type: "job.result", jobId: job.id, report, artifacts: [] });
  await agent.waitFor((m) => m.type === "job.ack" && m.jobId === job.id);
  const [result] = await sql`SELECT id FROM eval_results WHERE job_id = ${job.id}`;
  const key = await apiKeyFor(sql, pair.userId);
  const dl = await fetch(`${base}/api/v1/results/${result.id}/artifacts/recording-1.wav`, {
    headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get("content-type"), "audio/wav");
  assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), new Uint8Array(4000).fill(1));
  await agent.kill();
});

Deno.test({
  name: "a 64 MiB recording streams through: the server's RSS grows by a few MiB, not 64",
  sanitizeResources: false,
  async fn() {
    const proc = await spawnServer(db.url);
    const rss = async () => {
      const status = await Deno.readTextFile(`/proc/${proc.child.pid}/status`);
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
      return kb("VmRSS") / 1024;
    };
    try {
      const { token, agent, job } = await heldJob(proc, "art-rss");
      // A small upload first, so the code paths are loaded before measuring.
      const warm = await put(proc.baseUrl, token, job.id, "recording-1.wav", new Uint8Array(1 << 20));
      assert.equal(warm.status, 201);
      await warm.body?.cancel();
      // RSS sampled while the upload runs (VmHWM would also hold the start-up's peak).
      const before = await rss();
      let highest = before;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const now = await rss();
          if (now > highest) highest = now;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      let sent = 0;
      const piece = new Uint8Array(1 << 20).map((_, i) => i * 7);
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= MAX_ARTIFACT_BYTES) return c.close();
          c.enqueue(piece.slice());
          sent += piece.length;
        },
      });
      const res = await put(proc.baseUrl, token, job.id, "recording-2.wav", body);
      sampling = false;
      await sampler;
      assert.equal(res.status, 201);
      assert.equal((await res.json()).sizeBytes, MAX_ARTIFACT_BYTES);
      const grew = highest - before;
      console.log(
        `server RSS ${before.toFixed(1)} MiB before, at most ${highest.toFixed(1)} MiB during a ${
          MAX_ARTIFACT_BYTES >> 20
        } MiB upload (+${grew.toFixed(1)} MiB)`,
      );
      assert.ok(grew < 16, `RSS grew by ${grew.toFixed(1)} MiB`);
      const [row] = await sql`SELECT size_bytes, storage FROM eval_artifacts WHERE job_id = ${job.id}
                              AND name = 'recording-2.wav'`;
      assert.deepEqual({ ...row }, { sizeBytes: MAX_ARTIFACT_BYTES, storage: "postgres" });
      await agent.kill();
    } finally {
      await proc.stop();
    }
  },
});

Deno.test({
  name: "with the S3 store the recording lands in the bucket, downloads byte-identical and expires",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const s3rver = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir });
    const addr = await s3rver.run();
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${addr.port}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    await client.send(new CreateBucketCommand({ Bucket: "vox-artifacts" }));
    // The store as VOX_ARTIFACT_STORE=s3 and its settings build it.
    const store = artifactStoreFromConfig(testConfig({
      VOX_ARTIFACT_STORE: "s3",
      VOX_S3_ENDPOINT: `http://127.0.0.1:${addr.port}`,
      VOX_S3_BUCKET: "vox-artifacts",
      VOX_S3_ACCESS_KEY_ID: "S3RVER",
      VOX_S3_SECRET_ACCESS_KEY: "S3RVER",
    }));
    assert.ok(store instanceof S3ArtifactStore);
    const s3server = await startOrchServer(sql, {}, { artifactStore: store });
    try {
      const { token, agent, job, pair } = await heldJob(s3server, "art-s3");
      // Over one 5 MiB part, so the multipart path runs.
      const wav = new Uint8Array(6 * 1024 * 1024 + 123).map((_, i) => (i * 31) & 0xff);
      const res = await put(s3server.baseUrl, token, job.id, "recording-1.wav", wav);
      assert.equal(res.status, 201);
      await res.body?.cancel();
      const [row] =
        await sql`SELECT id, storage, storage_key, data FROM eval_artifacts WHERE job_id = ${job.id}`;
      assert.equal(row.storage, "s3");
      assert.equal(row.data, null);
      const head = await client.send(new HeadObjectCommand({ Bucket: "vox-artifacts", Key: row.storageKey }));
      assert.equal(head.ContentLength, wav.length);
      agent.send({ type: "job.result", jobId: job.id, report, artifacts: [] });
      await agent.waitFor((m) => m.type === "job.ack" && m.jobId === job.id);
      const [result] = await sql`SELECT id FROM eval_results WHERE job_id = ${job.id}`;
      const key = await apiKeyFor(sql, pair.userId);
      const dl = await fetch(`${s3server.baseUrl}/api/v1/results/${result.id}/artifacts/recording-1.wav`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(dl.status, 200);
      assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), wav);
      // Retention: an artifact older than the setting goes, with its object.
      assert.equal(await pruneArtifacts(sql, store, 30), 0);
      await sql`UPDATE eval_artifacts SET created_at = now() - interval '31 days' WHERE id = ${row.id}`;
      assert.equal(await pruneArtifacts(sql, store, 30), 1);
      await assert.rejects(
        client.send(new HeadObjectCommand({ Bucket: "vox-artifacts", Key: row.storageKey })),
      );
      await agent.kill();
    } finally {
      await s3server.stop();
      await s3rver.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("metrics streams: the (N+1)th from one client is 429 with Retry-After", async () => {
  const hub = server.orch.events;
  const open: Response[] = [];
  try {
    for (let i = 0; i < hub.limits.perClient; i++) {
      const res = await fetch(`${base}/api/v1/metrics/stream`);
      assert.equal(res.status, 200);
      open.push(res);
    }
    const extra = await fetch(`${base}/api/v1/metrics/stream`);
    assert.equal(extra.status, 429);
    assert.ok(Number(extra.headers.get("retry-after")) > 0);
    const body = await extra.json();
    assert.equal(body.error.code, "too_many_streams");
    assert.equal(body.error.details.limit, "perClient");
    // Closing one frees its place.
    await open.pop()!.body!.cancel();
    await eventually(async () => {
      const res = await fetch(`${base}/api/v1/metrics/stream`);
      if (res.status === 200) open.push(res);
      else await res.body?.cancel();
      return res.status === 200;
    }, "a place after a stream closed");
  } finally {
    for (const r of open) await r.body?.cancel();
  }
  await eventually(() => hub.openStreams === 0, "all streams released");
});

Deno.test("a stalled SSE reader is dropped once its queue is full; the others keep streaming", async () => {
  const hub = server.orch.events;
  const port = Number(new URL(base).port);
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await stalled.write(
      new TextEncoder().encode(`GET /api/v1/metrics/stream HTTP/1.1\r\nHost: x\r\n\r\n`),
    );
    await eventually(() => hub.count("metrics") === 1, "the stalled stream subscribed");
    const droppedBefore = hub.dropped;
    // 64 KiB events: the socket buffers fill, the stream's writes wait, its queue grows.
    const payload = { blob: "x".repeat(64 * 1024) };
    for (let i = 0; i < 2000 && hub.count("metrics") > 0; i++) {
      hub.publish("metrics", "result", payload);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await eventually(() => hub.count("metrics") === 0, "the stalled reader dropped");
    assert.equal(hub.dropped, droppedBefore + 1);
    await eventually(() => hub.openStreams === 0, "its place released");
  } finally {
    stalled.close();
  }
});

Deno.test("fair use: the 21st pending job of a basic user is 429 naming max_pending_jobs", async () => {
  const pair = await insertEvalPair(sql);
  const key = await apiKeyFor(sql, pair.userId);
  const run = () =>
    fetch(`${base}/api/v1/workflows/${pair.workflowId}/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ evalSetId: pair.evalSetId, region: "nobody-here" }),
    });
  for (let i = 0; i < 20; i++) {
    const res = await run();
    assert.equal(res.status, 201, `job ${i + 1}`);
    await res.body?.cancel();
  }
  const res = await run();
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) > 0);
  const body = await res.json();
  assert.equal(body.error.code, "plan_limit");
  assert.equal(body.error.details.limit, "max_pending_jobs");
  assert.match(body.error.message, /at most 20 jobs/);
  // The limit lives in plan_limits: an admin raising it lets the user queue again.
  await sql`UPDATE plan_limits SET max_pending_jobs = 21 WHERE owner_kind = 'basic'`;
  try {
    const again = await run();
    assert.equal(again.status, 201);
    await again.body?.cancel();
  } finally {
    await sql`UPDATE plan_limits SET max_pending_jobs = 20 WHERE owner_kind = 'basic'`;
  }
});

Deno.test("fair use: schedules below the minimum interval are 400, past the count 403 plan_limit", async () => {
  const pair = await insertEvalPair(sql);
  const key = await apiKeyFor(sql, pair.userId);
  const create = (cronExpression: string) =>
    fetch(`${base}/api/v1/schedules`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        workflowId: pair.workflowId,
        evalSetId: pair.evalSetId,
        region: "nobody-here",
        scheduleType: "recurring",
        cronExpression,
      }),
    });
  for (const cron of ["* * * * *", "*/30 * * * *", "0,10 9 * * 1"]) {
    const res = await create(cron);
    assert.equal(res.status, 400, cron);
    const body = await res.json();
    assert.equal(body.error.code, "invalid_input");
    assert.match(body.error.message, /^cronExpression: .*every 60 minutes/);
    assert.equal(body.error.details.limit, "min_schedule_interval_minutes");
  }
  for (let i = 0; i < 5; i++) {
    const res = await create(`${i} * * * *`);
    assert.equal(res.status, 201, `schedule ${i + 1}`);
    const s = await res.json();
    // Patching a schedule to fire more often is refused the same way.
    if (i === 0) {
      const patch = await fetch(`${base}/api/v1/schedules/${s.id}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ cronExpression: "*/5 * * * *" }),
      });
      assert.equal(patch.status, 400);
      await patch.body?.cancel();
    }
  }
  const sixth = await create("30 * * * *");
  assert.equal(sixth.status, 403);
  const body = await sixth.json();
  assert.equal(body.error.code, "plan_limit");
  assert.equal(body.error.details.limit, "max_schedules");
});

/**
 * A schedule of the owner's item and someone else's public `kind` item fires; once that item
 * turns private, the next due time fires nothing and disables the schedule with the reason.
 */
async function scheduleStopsWhenPrivate(kind: "workflow" | "eval set") {
  const owner = await insertEvalPair(sql);
  const other = await createUser(sql, { role: "premium" });
  const [item] = kind === "workflow"
    ? await sql`
      INSERT INTO workflows (project_id, provider_id, name, config, created_by)
      VALUES (${other.defaultProjectId}, ${SEEDED_PROVIDERS[0].id}, 'theirs',
              ${sql.json({ url: "http://127.0.0.1/agent", steps: [] })}, ${other.id})
      RETURNING id`
    : await sql`
      INSERT INTO eval_sets (project_id, name, config, created_by)
      VALUES (${other.defaultProjectId}, 'theirs', ${sql.json({ steps: [{ action: "wait_for_voice" }] })},
              ${other.id})
      RETURNING id`;
  const schedule = await createSchedule(sql, {
    workflowId: kind === "workflow" ? item.id : owner.workflowId,
    evalSetId: kind === "eval set" ? item.id : owner.evalSetId,
    region: "nobody-here",
    scheduleType: "recurring",
    cronExpression: "0 * * * *",
    createdBy: owner.userId,
  });
  const due = () =>
    sql`UPDATE eval_schedules SET next_run_at = now() - interval '1 minute' WHERE id = ${schedule.id}`;
  await due();
  const fired = await tickSchedules(sql);
  assert.equal(
    fired.filter((j) => j.scheduleId === schedule.id).length,
    1,
    `fires while the ${kind} is public`,
  );
  if (kind === "workflow") await sql`UPDATE workflows SET visibility = 'private' WHERE id = ${item.id}`;
  else await sql`UPDATE eval_sets SET visibility = 'private' WHERE id = ${item.id}`;
  await due();
  const after = await tickSchedules(sql);
  assert.equal(after.filter((j) => j.scheduleId === schedule.id).length, 0, "no job once it is private");
  const s = (await getSchedule(sql, schedule.id))!;
  assert.equal(s.isEnabled, false);
  assert.equal(s.nextRunAt, null);
  assert.match(s.stoppedReason!, new RegExp(`${kind} ${item.id} is no longer visible`));
  const key = await apiKeyFor(sql, owner.userId);
  const shown = await (await fetch(`${base}/api/v1/schedules/${schedule.id}`, {
    headers: { authorization: `Bearer ${key}` },
  })).json();
  assert.match(shown.stoppedReason, /no longer visible/);
}

Deno.test("a schedule whose eval set turns private stops firing and says why", () =>
  scheduleStopsWhenPrivate("eval set"));

Deno.test("a schedule whose workflow turns private stops firing and names the workflow", () =>
  scheduleStopsWhenPrivate("workflow"));

Deno.test("a schedule of an owner at the pending-job cap misses its firing and moves on", async () => {
  const pair = await insertEvalPair(sql);
  for (let i = 0; i < 20; i++) {
    await createJob(sql, { ...pair, region: "nobody-here", createdBy: pair.userId });
  }
  const schedule = await createSchedule(sql, {
    workflowId: pair.workflowId,
    evalSetId: pair.evalSetId,
    region: "nobody-here",
    scheduleType: "recurring",
    cronExpression: "0 * * * *",
    createdBy: pair.userId,
  });
  await sql`UPDATE eval_schedules SET next_run_at = now() - interval '1 minute' WHERE id = ${schedule.id}`;
  const fired = await tickSchedules(sql);
  assert.equal(fired.filter((j) => j.scheduleId === schedule.id).length, 0);
  const s = (await getSchedule(sql, schedule.id))!;
  assert.equal(s.isEnabled, true);
  assert.ok(new Date(s.nextRunAt!) > new Date(), "moved to its next firing");
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_jobs WHERE created_by = ${pair.userId}`;
  assert.equal(n, 20);
});

Deno.test("a good token only in hello (as older agents sent it) is refused at the upgrade", async () => {
  const token = await agentToken(sql, "hello-token");
  const url = base.replace(/^http/, "ws") + AGENT_WS_PATH;
  const ws = new WebSocket(url);
  const ended = new Promise<{ opened: boolean; code: number }>((resolve) => {
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        token,
        name: "h",
        region: "hello-token",
        version: "t",
        capacity: 1,
        activeJobs: [],
      }));
    };
    ws.onerror = () => {};
    ws.onclose = (e) => resolve({ opened, code: e.code });
  });
  assert.equal((await ended).opened, false);
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_agents WHERE region = 'hello-token'`;
  assert.equal(n, 0);
});

Deno.test("VOX_ARTIFACT_STORE=s3 needs a bucket, and S3 keys come in pairs", () => {
  const base = { DATABASE_URL: "postgres://x@127.0.0.1/x", VOX_SECRET_KEY: "0".repeat(64) };
  assert.throws(() => loadConfig({ ...base, VOX_ARTIFACT_STORE: "s3" }), (e: ConfigError) => {
    assert.match(e.message, /VOX_S3_BUCKET: is required when VOX_ARTIFACT_STORE=s3/);
    return true;
  });
  assert.throws(
    () => loadConfig({ ...base, VOX_S3_ACCESS_KEY_ID: "k" }),
    /VOX_S3_SECRET_ACCESS_KEY: VOX_S3_ACCESS_KEY_ID and VOX_S3_SECRET_ACCESS_KEY must be set together/,
  );
  const c = loadConfig(base);
  assert.equal(c.VOX_ARTIFACT_STORE, "postgres");
  assert.equal(c.VOX_ARTIFACTS_PER_JOB, 20);
  assert.equal(c.VOX_ARTIFACT_BYTES_PER_JOB, 256 * 1024 * 1024);
  assert.equal(c.VOX_ARTIFACT_RETENTION_DAYS, 0);
});
