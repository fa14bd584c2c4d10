// The queues a team would otherwise pick, measured on the same PostgreSQL as Vox, with what
// Vox's own bench measures: job inserted → handler started with idle workers, and jobs/s
// through insert → start → complete from a backlog at a fixed concurrency.
//
// Each peer runs as its documentation recommends for low latency: graphile-worker with its
// defaults (LISTEN/NOTIFY on job insert is built in; the 2 s poll is only a fallback), pg-boss
// with `useListenNotify` and a queue created with `notify: true` (polling at its 0.5 s floor
// as the backstop). Both keep their own schemas in the bench database.
import { Logger, run as runGraphileWorker } from "graphile-worker";
import { PgBoss } from "pg-boss";
import { createSql } from "../lib/db.ts";
import { percentile, r2, sleep } from "./lib.ts";

/** What one peer measured. `null` when the run was too short to compute a figure. */
export interface PeerFigures {
  dispatch_p50_ms: number | null;
  dispatch_p99_ms: number | null;
  dispatch_samples: number;
  jobs_per_s: number | null;
  jobs: number;
}

/** How much to measure. */
export interface PeerScale {
  /** Workers (concurrency) waiting while single jobs are inserted one at a time. */
  idleWorkers: number;
  /** Latency samples after 20 warm-up jobs. */
  samples: number;
  /** Jobs in the backlog for the throughput run. */
  backlog: number;
  /** Concurrency of the throughput run (Vox uses one job per agent, so agents). */
  concurrency: number;
}

const WARMUP = 20;
const PGBOSS_BATCH = 5;

function figures(lat: number[], completed: number, secs: number): PeerFigures {
  return {
    dispatch_p50_ms: lat.length > 0 ? r2(percentile(lat, 50)) : null,
    dispatch_p99_ms: lat.length > 0 ? r2(percentile(lat, 99)) : null,
    dispatch_samples: lat.length,
    jobs_per_s: completed > 0 && secs > 0 ? r2(completed / secs) : null,
    jobs: completed,
  };
}

/** graphile-worker: latency with idle workers, then throughput from a backlog. */
export async function benchGraphileWorker(dbUrl: string, scale: PeerScale): Promise<PeerFigures> {
  // Its info lines ("Worker connected…") would drown the bench's figures; errors still print.
  const logger = new Logger(() => (level, message) => {
    if (level === "error") console.error("graphile-worker:", message);
  });
  let onStart: (() => void) | null = null;
  let started = 0;
  const runner = await runGraphileWorker({
    connectionString: dbUrl,
    concurrency: scale.idleWorkers,
    noHandleSignals: true,
    pollInterval: 2000,
    logger,
    taskList: {
      latency: () => {
        onStart?.();
        return Promise.resolve();
      },
      backlog: () => {
        started++;
        return Promise.resolve();
      },
    },
  });
  const lat: number[] = [];
  // Inserts go through the SQL function graphile-worker documents for other clients, on a
  // connection of their own, as Vox's bench inserts through its own pool.
  const sql = createSql(dbUrl, { max: 4, appName: "bench-peer" });
  try {
    for (let i = 0; i < scale.samples + WARMUP; i++) {
      const got = new Promise<void>((r) => onStart = r);
      const t0 = performance.now();
      await sql`SELECT graphile_worker.add_job('latency', '{}'::json)`;
      await got;
      if (i >= WARMUP) lat.push(performance.now() - t0);
      await sleep(2);
    }
  } finally {
    await runner.stop();
  }

  // Throughput: the backlog first, then a runner at the same concurrency as Vox's agents.
  await sql`
    SELECT graphile_worker.add_jobs(array_agg(
      ROW('backlog', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
    FROM generate_series(1, ${scale.backlog})`;
  const t0 = performance.now();
  const tp = await runGraphileWorker({
    connectionString: dbUrl,
    concurrency: scale.concurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    logger,
    taskList: {
      backlog: () => {
        started++;
        return Promise.resolve();
      },
    },
  });
  started = 0;
  let secs = 0;
  try {
    for (;;) {
      const [{ n }] =
        await sql`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'backlog'`;
      if (n === 0) break;
      await sleep(50);
    }
    secs = (performance.now() - t0) / 1000;
  } finally {
    await tp.stop();
    await sql.end();
  }
  return figures(lat, scale.backlog, secs);
}

/** pg-boss: latency with idle workers (LISTEN/NOTIFY on), then throughput from a backlog. */
export async function benchPgBoss(dbUrl: string, scale: PeerScale): Promise<PeerFigures> {
  const boss = new PgBoss({
    connectionString: dbUrl,
    schema: "pgboss",
    useListenNotify: true,
  });
  boss.on("error", (err: unknown) => console.error("pg-boss:", err));
  await boss.start();
  const lat: number[] = [];
  let onStart: (() => void) | null = null;
  try {
    await boss.createQueue("latency", { notify: true });
    await boss.work("latency", {
      localConcurrency: scale.idleWorkers,
      batchSize: 1,
      pollingIntervalSeconds: 0.5,
    }, () => {
      onStart?.();
      return Promise.resolve();
    });
    await sleep(500);
    for (let i = 0; i < scale.samples + WARMUP; i++) {
      const got = new Promise<void>((r) => onStart = r);
      const t0 = performance.now();
      await boss.send("latency", {});
      await got;
      if (i >= WARMUP) lat.push(performance.now() - t0);
      await sleep(2);
    }
    await boss.offWork("latency");

    await boss.createQueue("backlog", { notify: true });
    const chunk = 5_000;
    for (let done = 0; done < scale.backlog; done += chunk) {
      await boss.insert(
        "backlog",
        Array.from({ length: Math.min(chunk, scale.backlog - done) }, () => ({ data: {} })),
      );
    }
    let completed = 0;
    let finish: (() => void) | null = null;
    const finished = new Promise<void>((r) => finish = r);
    const t0 = performance.now();
    // A worker that fetched a job waits out its polling interval before the next fetch unless
    // a NOTIFY or a burst trigger wakes it; a preloaded backlog sends no NOTIFY, so the docs'
    // answer for a backlog is batches with `burstWhenBatchFull`. Batches of BATCH with
    // concurrency / BATCH workers keep the jobs in flight at most `concurrency`, as with Vox.
    const workers = Math.max(1, Math.floor(scale.concurrency / PGBOSS_BATCH));
    await boss.work("backlog", {
      localConcurrency: workers,
      batchSize: PGBOSS_BATCH,
      burstWhenBatchFull: true,
      pollingIntervalSeconds: 0.5,
    }, (jobs: unknown[]) => {
      completed += jobs.length;
      if (completed >= scale.backlog) queueMicrotask(() => finish?.());
      return Promise.resolve();
    });
    await finished;
    // The last handler has returned; its completion is the next statement pg-boss sends.
    for (;;) {
      const [{ n }] = await boss.getDb().executeSql(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'backlog' AND state <> 'completed'`,
      ).then((r: { rows: { n: number }[] }) => r.rows);
      if (n === 0) break;
      await sleep(20);
    }
    const secs = (performance.now() - t0) / 1000;
    return figures(lat, completed, secs);
  } finally {
    await boss.stop({ graceful: false }).catch(() => {});
  }
}
