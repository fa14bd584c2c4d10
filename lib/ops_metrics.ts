// Operational metrics for GET /metrics (Prometheus): the queue, jobs and agents as the
// database sees them (the same on every process), and this process's own counters (requests,
// dispatch latency, agent sockets, the LISTEN probe). Not the public metrics of voice agents,
// which are lib/metrics.ts and /api/v1/metrics.
import type { Sql } from "./db.ts";
import type { Orchestrator } from "./orchestrator.ts";
import { Counter, type MetricFamily, renderExposition } from "./prometheus.ts";

/** The states of eval_agents.state (its CHECK constraint in migrations/00001_init.sql). */
const AGENT_STATES = ["IDLE", "OCCUPIED", "OFFLINE"] as const;

/** The request counter createApp() keeps and /metrics reports. */
export function requestCounter(): Counter {
  return new Counter(
    "vox_http_requests_total",
    "HTTP requests this process answered, by method and status code (agent sockets not included).",
  );
}

/**
 * Everything /metrics reports, as text exposition. Three small queries, each on a partial
 * index or a small table: pending and running jobs, the claimable queue per region, and agents
 * by region and state. Jobs in final states are not counted: over 1M jobs `count(*) GROUP BY
 * status` took 280-420 ms against about 1 ms for these two partial-index counts (shared 2-core
 * machine, 10k pending, 1k running); their rate is vox_job_transitions_total instead.
 */
export async function renderOpsMetrics(
  sql: Sql,
  opts: { serverId: string; requests: Counter; orchestrator?: Orchestrator },
): Promise<string> {
  const [jobs, queue, agents] = await Promise.all([
    sql<{ pending: number; running: number }[]>`
      SELECT (SELECT count(*) FROM eval_jobs WHERE status = 'pending')::int AS pending,
             (SELECT count(*) FROM eval_jobs WHERE status = 'running')::int AS running`,
    sql<{ region: string; n: number; oldest: number }[]>`
      SELECT region, count(*)::int AS n,
             extract(epoch FROM now() - min(greatest(created_at, run_after)))::float8 AS oldest
      FROM eval_jobs WHERE status = 'pending' AND run_after <= now() GROUP BY region ORDER BY region`,
    sql<{ region: string; state: string; n: number }[]>`
      SELECT region, state, count(*)::int AS n FROM eval_agents GROUP BY region, state ORDER BY region, state`,
  ]);
  const families: MetricFamily[] = [
    {
      name: "vox_server_info",
      help: "This server process (always 1); server_id is the id in logs and eval_agents.server_id.",
      type: "gauge",
      samples: [{ labels: { server_id: opts.serverId }, value: 1 }],
    },
    {
      name: "vox_jobs",
      help:
        "Jobs waiting (pending) and being measured (running) in the database (the same on every process).",
      type: "gauge",
      samples: (["pending", "running"] as const).map((s) => ({ labels: { status: s }, value: jobs[0][s] })),
    },
    {
      name: "vox_queue_depth",
      help: "Pending jobs claimable now, by region (the same on every process).",
      type: "gauge",
      samples: queue.map((r) => ({ labels: { region: r.region }, value: r.n })),
    },
    {
      name: "vox_queue_oldest_seconds",
      help: "How long the oldest claimable job of each region has waited, in seconds.",
      type: "gauge",
      samples: queue.map((r) => ({ labels: { region: r.region }, value: Math.max(0, r.oldest) })),
    },
    {
      name: "vox_agents",
      help: "Eval agents by region and state (the same on every process).",
      type: "gauge",
      samples: agentSamples(agents),
    },
    opts.requests.family(),
  ];
  const orch = opts.orchestrator;
  if (orch) {
    const sockets = new Map<string, number>();
    for (const c of orch.connections.values()) sockets.set(c.region, (sockets.get(c.region) ?? 0) + 1);
    families.push(
      {
        name: "vox_agent_connections",
        help: "Agent sockets held by this process, by region.",
        type: "gauge",
        samples: [...sockets].sort().map(([region, n]) => ({ labels: { region }, value: n })),
      },
      orch.dispatchLatency.family(),
      orch.jobTransitions.family(),
    );
    const listener = orch.listener?.health();
    if (listener) {
      families.push(
        {
          name: "vox_listener_degraded",
          help: "1 when this process's LISTEN connection failed to deliver its own probe NOTIFY " +
            "(dispatch by polling only, live streams miss events); 0 otherwise.",
          type: "gauge",
          samples: [{ value: listener.state === "degraded" ? 1 : 0 }],
        },
        {
          name: "vox_listener_probes_sent_total",
          help: "Probe notifications this process sent to itself.",
          type: "counter",
          samples: [{ value: listener.probesSent }],
        },
        {
          name: "vox_listener_probes_received_total",
          help: "Probe notifications this process received back on its LISTEN connection.",
          type: "counter",
          samples: [{ value: listener.probesReceived }],
        },
      );
    }
  }
  families.push({
    name: "vox_process_resident_memory_bytes",
    help: "Resident memory of this process in bytes.",
    type: "gauge",
    samples: [{ value: Deno.memoryUsage().rss }],
  });
  return renderExposition(families);
}

// Every state of every region that has agents, zeros included, so "no agent online in a
// region" is a 0 an alert can see rather than a missing series.
function agentSamples(rows: { region: string; state: string; n: number }[]) {
  const counts = new Map(rows.map((r) => [`${r.region} ${r.state}`, r.n]));
  const regions = [...new Set(rows.map((r) => r.region))].sort();
  return regions.flatMap((region) =>
    AGENT_STATES.map((state) => ({ labels: { region, state }, value: counts.get(`${region} ${state}`) ?? 0 }))
  );
}
