import { useEffect, useState } from "preact/hooks";
import type { AdminAgent, PublicAgent } from "../lib/agents.ts";

type Agent = PublicAgent & Partial<Pick<AdminAgent, "currentJobs">>;

/**
 * Live list of eval agents with a region filter; refreshes itself every 15 s from `source`
 * (the public list by default). With `jobs` (the admin's list) it shows each agent's current job.
 */
export default function AgentsTable(props: { agents: Agent[]; source?: string; jobs?: boolean }) {
  const [agents, setAgents] = useState(props.agents);
  const [region, setRegion] = useState("all");
  const [updated, setUpdated] = useState<string | null>(null);

  useEffect(() => {
    const timer = setInterval(async () => {
      const res = await fetch(props.source ?? "/api/v1/agents");
      if (!res.ok) return;
      const body = await res.json() as { agents: Agent[] };
      setAgents(body.agents);
      setUpdated(new Date().toLocaleTimeString());
    }, 15_000);
    return () => clearInterval(timer);
  }, []);

  const regions = [...new Set(agents.map((a) => a.region))].sort();
  const shown = region === "all" ? agents : agents.filter((a) => a.region === region);
  const count = (state: PublicAgent["state"]) => shown.filter((a) => a.state === state).length;

  return (
    <section class="card">
      <div class="toolbar">
        <label>
          Region{" "}
          <select
            name="region"
            value={region}
            onChange={(e) => setRegion((e.target as HTMLSelectElement).value)}
          >
            <option value="all">All regions</option>
            {regions.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </label>
        <span class="summary" data-testid="agent-summary">
          {shown.length} agents · {count("IDLE")} idle · {count("OCCUPIED")} busy · {count("OFFLINE")} offline
        </span>
        {updated && <span class="muted">updated {updated}</span>}
      </div>
      {shown.length === 0
        ? <p class="empty">No eval agents{region === "all" ? "" : ` in ${region}`} yet.</p>
        : (
          // Scrolls sideways on a phone instead of widening the page; focusable for the keyboard.
          <div class="table-scroll" tabIndex={0} role="region" aria-label="Eval agents">
            <table class="table">
              <thead>
                <tr>
                  <th>Agent</th>
                  <th>Region</th>
                  <th>State</th>
                  <th>Last seen</th>
                  {props.jobs && <th>Current job</th>}
                </tr>
              </thead>
              <tbody>
                {shown.map((a) => (
                  <tr key={a.id} data-region={a.region}>
                    <td>{a.name || `agent ${a.id}`}</td>
                    <td>{a.region}</td>
                    <td>
                      <span class={`state state-${a.state.toLowerCase()}`}>{a.state}</span>
                    </td>
                    <td>
                      {a.lastSeenAt
                        ? new Date(a.lastSeenAt).toISOString().replace("T", " ").slice(0, 19) + " UTC"
                        : "never"}
                    </td>
                    {props.jobs && (
                      <td data-testid="current-job">
                        {(a.currentJobs ?? []).length === 0
                          ? "—"
                          : (a.currentJobs ?? []).map((j) => (
                            <div key={j.id}>
                              job {j.id} · {j.workflowName}
                              {j.startedAt && (
                                <span class="muted">
                                  {` since ${new Date(j.startedAt).toISOString().slice(11, 19)} UTC`}
                                </span>
                              )}
                            </div>
                          ))}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
    </section>
  );
}
