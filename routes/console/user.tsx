// /console/*: what a signed-in user does in the browser (SPEC §9). Every page loads its data
// from /api/* in-process as the caller (./_api.ts) and renders it on the server; changes go
// through islands that call the same API from the browser.
import { type Context, Hono } from "hono";
import { toYaml } from "../../agent/format.ts";
import { Badge, Empty, ms, ofLimit, PageHead, Section, Table, when } from "../../components/console/ui.tsx";
import type { AudioChoices } from "../../components/run_your_own/steps.ts";
import type { FormField } from "../../islands/console_form.tsx";
import CompareChart from "../../islands/compare_chart.tsx";
import ScheduleForm from "../../islands/schedule_form.tsx";
import JobLive from "../../islands/job_live.tsx";
import Recording, { type RecordingTurn } from "../../islands/recording.tsx";
import { Receipts } from "../../components/console/receipts.tsx";
import { TurnTakingCard, turnTakingOf } from "../../components/console/turn_taking.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import type { SessionView } from "../../lib/auth/session_list.ts";
import { Island } from "../../lib/islands/marker.tsx";
import { FINAL_JOB_STATUSES } from "../../lib/job_status.ts";
import { canMakePrivate, canMarkMainline } from "../../lib/roles.ts";
import type { ApiGet } from "./_api.ts";
import { Action, consolePage, Form, guarded, jobFilterParams, StatusField } from "./_page.tsx";

interface Project {
  id: number;
  name: string;
  description: string;
  ownerUserId: number | null;
  workflows: number;
  evalSets: number;
  createdAt: string;
}
interface Limits {
  ownerKind: string;
  maxProjects: number;
  maxWorkflowsPerProject: number;
}
interface Item {
  id: number;
  projectId: number;
  name: string;
  description: string;
  config: Record<string, unknown>;
  visibility: "public" | "private";
  isMainline: boolean;
  updatedAt: string;
  editable: boolean;
  provider?: { id: string; name: string; sku: number };
}
interface Job {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  status: string;
  scheduleId: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  repeat: number;
}

/**
 * What an eval set's guided editor offers a speak step: the project's clip names, the library's
 * and the voices, from the same API a script would use. A project whose clips cannot be listed
 * offers the library and voices alone.
 */
async function audioChoices(get: ApiGet, c: Context<AppEnv>, projectId: number): Promise<AudioChoices> {
  const [clips, library] = await Promise.all([
    get<{ clips: { name: string }[] }>(c, `/api/v1/projects/${projectId}/audio`).then(
      (r) => r.clips,
      () => [],
    ),
    get<{ clips: { name: string }[]; voices: string[] }>(c, "/api/v1/audio/library"),
  ]);
  return {
    clips: clips.map((x) => x.name),
    library: library.clips.map((x) => x.name),
    voices: library.voices,
  };
}

interface Stats {
  median: number | null;
  sd: number | null;
  p90: number | null;
  n: number;
}
interface Schedule {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  scheduleType: "once" | "recurring";
  cronExpression: string | null;
  timezone: string;
  runAt: string | null;
  isEnabled: boolean;
  nextRunAt: string | null;
  runCount: number;
  maxRuns: number | null;
}
interface ResultSummary {
  id: number;
  jobId: number;
  workflowId: number;
  region: string;
  responseLatency: Stats;
  interruptLatency: Stats;
  createdAt: string;
}
interface ResultDetail {
  id: number;
  jobId: number;
  workflowId: number;
  region: string;
  responseLatency: Stats;
  interruptLatency: Stats;
  networkResilience: number | null;
  naturalness: number | null;
  noiseReduction: number | null;
  methods: Record<string, string>;
  createdAt: string;
  turns: Record<string, unknown>[];
  report: {
    runs?: {
      run?: number;
      recording?: string | null;
      sample_rate?: number;
      recording_first_frame?: number;
    }[];
  } | null;
  reportSha256: string | null;
  artifacts: { name: string; kind: string; contentType: string; sizeBytes: number; sha256: string }[];
}
interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  usageCount: number;
  status: string;
}

type Kind = "workflows" | "eval-sets";
const NOUN: Record<Kind, string> = { workflows: "workflow", "eval-sets": "eval set" };

const WORKFLOW_TEMPLATE = `url: https://example.com/your-voice-agent
steps:
  - action: click
    selector: "text=Start call"
`;
const EVAL_SET_TEMPLATE = `steps:
  - action: wait_for_voice
  - action: wait_for_silence
  - action: speak
    text: Hello, what can you do for me?
  - action: wait_for_voice
    metrics: [response_latency]
`;

const DONE = new Set<string>(FINAL_JOB_STATUSES);

async function agentRegions(get: ApiGet, c: Parameters<ApiGet>[0]): Promise<string[]> {
  const { agents } = await get<{ agents: { region: string }[] }>(c, "/api/v1/agents");
  return [...new Set(agents.map((a) => a.region))].sort();
}

function regionField(regions: string[]): FormField {
  return regions.length
    ? {
      name: "region",
      label: "Region",
      type: "select",
      options: regions.map((r) => ({ value: r, label: r })),
      value: regions[0],
      required: true,
    }
    : {
      name: "region",
      label: "Region",
      required: true,
      hint: "No eval agent is online; the job waits in this region's queue until one connects",
    };
}

/** The /console routes; `get` asks the API as the caller. */
export function consoleRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  const page = (h: Parameters<typeof guarded>[2]) => guarded(deps, {}, h);

  app.get("/console", page((c) => Promise.resolve(c.redirect("/console/projects", 303))));

  // ── Projects ────────────────────────────────────────────────────────────────────────────
  app.get(
    "/console/projects",
    page(async (c) => {
      const { projects, limits } = await get<{ projects: Project[]; limits: Limits }>(c, "/api/v1/projects");
      const mine = projects.filter((p) => p.ownerUserId === c.var.user!.id).length;
      return consolePage(c, deps, {
        title: "Projects",
        body: (
          <>
            <PageHead
              title="Projects"
              lead={`A project holds workflows and eval sets. Your plan allows ${
                ofLimit(mine, limits.maxProjects, "projects")
              } and ${limits.maxWorkflowsPerProject} workflows in each.`}
            />
            {projects.length === 0
              ? <Empty title="No projects yet">Create your first project below.</Empty>
              : (
                <Table
                  caption="Your projects"
                  head={["Project", "Workflows", "Eval sets", "Created", "Actions"]}
                >
                  {projects.map((p) => (
                    <tr key={p.id} data-project={p.id}>
                      <td>
                        <a href={`/console/workflows?projectId=${p.id}`}>{p.name}</a>
                        {p.description && <div class="muted small">{p.description}</div>}
                      </td>
                      <td class={p.workflows >= limits.maxWorkflowsPerProject ? "c-at-limit" : undefined}>
                        {ofLimit(p.workflows, limits.maxWorkflowsPerProject, "workflows")}
                      </td>
                      <td>{p.evalSets}</td>
                      <td>{when(p.createdAt)}</td>
                      <td class="c-row-actions">
                        <a class="button small" href={`/console/projects/${p.id}/audio`}>Audio</a>
                        <details class="c-inline-edit">
                          <summary class="button small">Rename</summary>
                          <Form
                            {...{
                              id: `rename-${p.id}`,
                              method: "PATCH",
                              action: `/api/v1/projects/${p.id}`,
                              submit: "Save",
                              inline: true,
                              fields: [{ name: "name", label: "New name", value: p.name, required: true }],
                              then: { reload: true },
                            }}
                          />
                        </details>
                        <Action
                          {...{
                            label: "Delete",
                            method: "DELETE",
                            action: `/api/v1/projects/${p.id}`,
                            danger: true,
                            confirm:
                              `Deletes “${p.name}” with its ${p.workflows} workflows and ${p.evalSets} ` +
                              `eval sets, their schedules, jobs and results. This cannot be undone.`,
                          }}
                        />
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
            <Section title="New project">
              <Form
                {...{
                  id: "new-project",
                  method: "POST",
                  action: "/api/v1/projects",
                  submit: "Create project",
                  fields: [
                    { name: "name", label: "Name", required: true },
                    { name: "description", label: "Description", omitEmpty: true },
                  ],
                  then: { reload: true },
                }}
              />
            </Section>
          </>
        ),
      });
    }),
  );

  // ── Workflows and eval sets ────────────────────────────────────────────────────────────
  for (const kind of ["workflows", "eval-sets"] as Kind[]) {
    const noun = NOUN[kind];
    const Noun = noun[0].toUpperCase() + noun.slice(1);
    app.get(
      `/console/${kind}`,
      page(async (c) => {
        const q = (c.req.query("q") ?? "").trim().slice(0, 100);
        const projectId = Number(c.req.query("projectId")) || null;
        const [{ items }, { projects, limits }] = await Promise.all([
          get<{ items: Item[] }>(c, `/api/v1/${kind}?limit=200${projectId ? `&projectId=${projectId}` : ""}`),
          get<{ projects: Project[]; limits: Limits }>(c, "/api/v1/projects"),
        ]);
        const choices = kind === "eval-sets" && projects.length > 0
          ? await audioChoices(get, c, projectId ?? projects[0].id)
          : undefined;
        const needle = q.toLowerCase();
        const shown = needle
          ? items.filter((i) =>
            `${i.name} ${i.description} ${i.provider?.name ?? ""}`.toLowerCase().includes(needle)
          )
          : items;
        const projectName = new Map(projects.map((p) => [p.id, p.name]));
        const full = kind === "workflows"
          ? projects.filter((p) => p.workflows >= limits.maxWorkflowsPerProject)
          : [];
        return consolePage(c, deps, {
          title: `${Noun}s`,
          body: (
            <>
              <PageHead
                title={`${Noun}s`}
                lead={kind === "workflows"
                  ? "A workflow says how to reach a voice agent and start a call (a voice-agent-tester application)."
                  : "An eval set says what the caller does and what is measured (a voice-agent-tester scenario)."}
              />
              {full.map((p) => (
                <p key={p.id} class="c-limit" role="status">
                  Project “{p.name}” holds {ofLimit(p.workflows, limits.maxWorkflowsPerProject, "workflows")}
                  {" "}
                  — the limit of your plan. Delete a workflow below to make room for another.
                </p>
              ))}
              <form class="c-filters" method="get" action={`/console/${kind}`} role="search">
                <div class="c-field">
                  <label for="q">Search</label>
                  <input id="q" name="q" type="search" value={q} placeholder="name, description, provider" />
                </div>
                <div class="c-field">
                  <label for="projectId">Project</label>
                  <select id="projectId" name="projectId">
                    <option value="">All projects</option>
                    {projects.map((p) => (
                      <option key={p.id} value={String(p.id)} selected={p.id === projectId}>{p.name}</option>
                    ))}
                  </select>
                </div>
                <button class="button small" type="submit">Filter</button>
              </form>
              {shown.length === 0
                ? (
                  <Empty title={items.length ? `No ${noun}s match “${q}”` : `No ${noun}s yet`}>
                    {items.length ? "Try another search." : (
                      <>
                        Create one below, or start from <a href="/run-your-own">Run your own</a>.
                      </>
                    )}
                  </Empty>
                )
                : (
                  <Table
                    caption={`Your ${noun}s`}
                    head={[
                      "Name",
                      "Project",
                      ...(kind === "workflows" ? ["Provider"] : []),
                      "Visibility",
                      "Updated",
                      "Actions",
                    ]}
                  >
                    {shown.map((i) => (
                      <tr key={i.id} data-item={i.id}>
                        <td>
                          <a href={`/console/${kind}/${i.id}`}>{i.name}</a>
                          {i.isMainline && (
                            <>
                              <Badge value="mainline" />
                            </>
                          )}
                        </td>
                        <td>{projectName.get(i.projectId) ?? `#${i.projectId}`}</td>
                        {kind === "workflows" && <td>{i.provider?.name}</td>}
                        <td>{i.visibility}</td>
                        <td>{when(i.updatedAt)}</td>
                        <td class="c-row-actions">
                          {i.editable && (
                            <Action
                              {...{
                                label: "Duplicate",
                                method: "POST",
                                action: `/api/v1/${kind}`,
                                body: {
                                  projectId: i.projectId,
                                  name: `${i.name} (copy)`.slice(0, 200),
                                  description: i.description,
                                  config: i.config,
                                  ...(i.provider ? { provider: { id: i.provider.id } } : {}),
                                },
                              }}
                            />
                          )}
                          {i.editable && (
                            <Action
                              {...{
                                label: "Delete",
                                method: "DELETE",
                                action: `/api/v1/${kind}/${i.id}`,
                                danger: true,
                                confirm:
                                  `Deletes the ${noun} “${i.name}” with its schedules, jobs and results.`,
                              }}
                            />
                          )}
                        </td>
                      </tr>
                    ))}
                  </Table>
                )}
              <Section title={`New ${noun}`}>
                {projects.length === 0
                  ? (
                    <p class="muted">
                      Create a <a href="/console/projects">project</a> first.
                    </p>
                  )
                  : (
                    <Form
                      {...{
                        id: `new-${kind}`,
                        method: "POST",
                        action: `/api/v1/${kind}`,
                        submit: `Create ${noun}`,
                        fields: [
                          {
                            name: "projectId",
                            label: "Project",
                            type: "select",
                            number: true,
                            value: String(projectId ?? projects[0].id),
                            options: projects.map((p) => ({ value: String(p.id), label: p.name })),
                          },
                          { name: "name", label: "Name", required: true },
                          ...(kind === "workflows"
                            ? [{
                              name: "provider.name",
                              label: "Provider",
                              required: true,
                              hint: "The platform behind the agent, e.g. LiveKit Agents",
                            }]
                            : []),
                          {
                            name: "yaml",
                            label: kind === "workflows" ? "Application YAML" : "Scenario YAML",
                            type: "textarea" as const,
                            rows: 10,
                            yaml: true,
                            guided: kind === "workflows" ? "link" as const : "steps" as const,
                            choices,
                            value: kind === "workflows" ? WORKFLOW_TEMPLATE : EVAL_SET_TEMPLATE,
                            hint: "The voice-agent-tester format; errors show the line they are on",
                          },
                        ],
                        then: { redirect: `/console/${kind}/{id}` },
                      }}
                    />
                  )}
              </Section>
            </>
          ),
        });
      }),
    );

    app.get(
      `/console/${kind}/:id{[0-9]+}`,
      page(async (c) => {
        const id = Number(c.req.param("id"));
        const user = c.var.user!;
        const item = await get<Item>(c, `/api/v1/${kind}/${id}`);
        const [evalSets, regions, jobs] = kind === "workflows"
          ? await Promise.all([
            get<{ items: Item[] }>(c, "/api/v1/eval-sets?limit=200"),
            agentRegions(get, c),
            get<{ jobs: Job[] }>(c, `/api/v1/jobs?workflowId=${id}&limit=10`),
          ])
          : [null, [], null];
        const choices = kind === "eval-sets" && item.editable
          ? await audioChoices(get, c, item.projectId)
          : undefined;
        const flags: FormField[] = [];
        if (canMakePrivate(user)) {
          flags.push({
            name: "visibility",
            label: "Visibility",
            type: "select",
            value: item.visibility,
            options: [{ value: "public", label: "Public" }, { value: "private", label: "Private" }],
          });
        }
        if (canMarkMainline(user)) {
          flags.push({
            name: "isMainline",
            label: "Mainline (shown on the public boards)",
            type: "checkbox",
            value: item.isMainline,
          });
        }
        return consolePage(c, deps, {
          title: item.name,
          body: (
            <>
              <PageHead
                title={item.name}
                crumbs={[{ href: `/console/${kind}`, label: `${Noun}s` }]}
                lead={`${Noun} #${item.id} · ${item.visibility}${item.isMainline ? " · mainline" : ""}${
                  item.provider ? ` · ${item.provider.name}` : ""
                } · updated ${when(item.updatedAt)}`}
              >
                <a class="button small" href={`/api/v1/${kind}/${id}/yaml`} download>Download YAML</a>
              </PageHead>
              {kind === "workflows" && evalSets && (
                <Section title="Run now">
                  {evalSets.items.length === 0
                    ? (
                      <p class="muted">
                        Create an <a href="/console/eval-sets">eval set</a> to run this workflow with.
                      </p>
                    )
                    : (
                      <Form
                        {...{
                          id: "run",
                          method: "POST",
                          action: `/api/v1/workflows/${id}/run`,
                          submit: "Run now",
                          inline: true,
                          fields: [
                            {
                              name: "evalSetId",
                              label: "Eval set",
                              type: "select",
                              number: true,
                              value: String(evalSets.items[0].id),
                              options: evalSets.items.map((e) => ({ value: String(e.id), label: e.name })),
                            },
                            regionField(regions),
                            { name: "repeat", label: "Repeat", type: "number", number: true, value: 1 },
                          ],
                          then: { redirect: "/console/jobs/{id}" },
                        }}
                      />
                    )}
                </Section>
              )}
              <Section title={item.editable ? "Edit" : "Configuration"}>
                {item.editable
                  ? (
                    <Form
                      {...{
                        id: "edit",
                        method: "PATCH",
                        action: `/api/v1/${kind}/${id}`,
                        submit: "Save changes",
                        fields: [
                          { name: "name", label: "Name", value: item.name, required: true },
                          { name: "description", label: "Description", value: item.description },
                          ...flags,
                          {
                            name: "yaml",
                            label: "YAML",
                            type: "textarea",
                            rows: 14,
                            yaml: true,
                            guided: kind === "workflows" ? "link" as const : "steps" as const,
                            choices,
                            value: toYaml(item.config),
                            hint: "Validated by the same schema the eval agent loads; errors show their line",
                          },
                        ],
                        then: { reload: true },
                      }}
                    />
                  )
                  : <pre><code>{toYaml(item.config)}</code></pre>}
                {item.editable && (
                  <p class="muted small">
                    {!canMakePrivate(user) && "Private items need a Premium plan. "}
                    {!canMarkMainline(user) && "Marking mainline is for Principal and Fellow users."}
                  </p>
                )}
              </Section>
              {jobs && (
                <Section title="Recent jobs">
                  {jobs.jobs.length === 0
                    ? <Empty title="No jobs yet">Run this workflow above.</Empty>
                    : <JobsTable jobs={jobs.jobs} names={new Map()} />}
                </Section>
              )}
            </>
          ),
        });
      }),
    );
  }

  // ── Jobs and results ───────────────────────────────────────────────────────────────────
  app.get(
    "/console/jobs",
    page(async (c) => {
      const q = c.req.query();
      const { params, status } = jobFilterParams(q);
      for (const k of ["workflowId", "evalSetId", "scheduleId"]) {
        if (/^\d{1,15}$/.test(q[k] ?? "")) params.set(k, q[k]);
      }
      if (/^\d{4}-\d{2}-\d{2}$/.test(q.since ?? "")) params.set("since", `${q.since}T00:00:00Z`);
      const [{ jobs, total }, wf, es] = await Promise.all([
        get<{ jobs: Job[]; total: number }>(c, `/api/v1/jobs?${params}`),
        get<{ items: Item[] }>(c, "/api/v1/workflows?limit=200"),
        get<{ items: Item[] }>(c, "/api/v1/eval-sets?limit=200"),
      ]);
      const names = new Map<string, string>([
        ...wf.items.map((i) => [`w${i.id}`, i.name] as [string, string]),
        ...es.items.map((i) => [`e${i.id}`, i.name] as [string, string]),
      ]);
      const filtered = params.size > 1;
      return consolePage(c, deps, {
        title: "Jobs",
        body: (
          <>
            <PageHead
              title="Jobs"
              lead="Every evaluation you started or that ran on your projects, newest first."
            />
            <form class="c-filters" method="get" action="/console/jobs" aria-label="Filter jobs">
              <StatusField status={status} />
              <div class="c-field">
                <label for="f-workflow">Workflow</label>
                <select id="f-workflow" name="workflowId">
                  <option value="">Any</option>
                  {wf.items.map((i) => (
                    <option key={i.id} value={String(i.id)} selected={String(i.id) === q.workflowId}>
                      {i.name}
                    </option>
                  ))}
                </select>
              </div>
              <div class="c-field">
                <label for="f-evalset">Eval set</label>
                <select id="f-evalset" name="evalSetId">
                  <option value="">Any</option>
                  {es.items.map((i) => (
                    <option key={i.id} value={String(i.id)} selected={String(i.id) === q.evalSetId}>
                      {i.name}
                    </option>
                  ))}
                </select>
              </div>
              <div class="c-field">
                <label for="f-region">Region</label>
                <input id="f-region" name="region" value={q.region ?? ""} size={12} />
              </div>
              <div class="c-field">
                <label for="f-since">Since</label>
                <input id="f-since" name="since" type="date" value={q.since ?? ""} />
              </div>
              <button class="button small" type="submit">Filter</button>
            </form>
            {jobs.length === 0
              ? (
                <Empty
                  title={filtered ? "No jobs match these filters" : "No jobs yet — run your first evaluation"}
                >
                  {filtered ? <a href="/console/jobs">Clear the filters</a> : (
                    <>
                      Open a <a href="/console/workflows">workflow</a> and press Run now, or use{" "}
                      <a href="/run-your-own">Run your own</a>.
                    </>
                  )}
                </Empty>
              )
              : (
                <>
                  <p class="muted small">
                    {total} jobs{total > jobs.length ? `, the newest ${jobs.length} shown` : ""}
                  </p>
                  <JobsTable jobs={jobs} names={names} />
                </>
              )}
          </>
        ),
      });
    }),
  );

  app.get(
    "/console/jobs/:id{[0-9]+}",
    page(async (c) => {
      const id = Number(c.req.param("id"));
      const job = await get<Job>(c, `/api/v1/jobs/${id}`);
      let result: ResultDetail | null = null;
      if (job.status === "completed") {
        const { results } = await get<{ results: { id: number }[] }>(
          c,
          `/api/v1/results?jobId=${id}&limit=1`,
        );
        if (results[0]) result = await get<ResultDetail>(c, `/api/v1/results/${results[0].id}`);
      }
      const final = DONE.has(job.status);
      return consolePage(c, deps, {
        title: `Job ${id}`,
        body: (
          <>
            <PageHead
              title={`Job ${id}`}
              crumbs={[{ href: "/console/jobs", label: "Jobs" }]}
              lead={
                <>
                  <a href={`/console/workflows/${job.workflowId}`}>Workflow #{job.workflowId}</a> with{" "}
                  <a href={`/console/eval-sets/${job.evalSetId}`}>eval set #{job.evalSetId}</a> in{" "}
                  {job.region} · created {when(job.createdAt)}
                </>
              }
            >
              {job.status === "pending" && (
                <Action
                  {...{ label: "Cancel", method: "POST", action: `/api/v1/jobs/${id}/cancel`, danger: true }}
                />
              )}
            </PageHead>
            <Island
              name="job_live"
              component={JobLive}
              props={{ jobId: id, status: job.status, error: job.error, final, live: !!deps.orchestrator }}
            />
            {result && <ResultView result={result} />}
            {job.status === "completed" && !result && <p class="muted">The result is being stored.</p>}
          </>
        ),
      });
    }),
  );

  // ── Schedules ──────────────────────────────────────────────────────────────────────────
  app.get(
    "/console/schedules",
    page(async (c) => {
      const [{ schedules }, wf, es, regions] = await Promise.all([
        get<{ schedules: Schedule[] }>(c, "/api/v1/schedules?limit=200"),
        get<{ items: Item[] }>(c, "/api/v1/workflows?limit=200"),
        get<{ items: Item[] }>(c, "/api/v1/eval-sets?limit=200"),
        agentRegions(get, c),
      ]);
      const wfName = new Map(wf.items.map((i) => [i.id, i.name]));
      const esName = new Map(es.items.map((i) => [i.id, i.name]));
      return consolePage(c, deps, {
        title: "Schedules",
        body: (
          <>
            <PageHead
              title="Schedules"
              lead="A schedule runs a workflow with an eval set once or on a cron, in one region. Times below are UTC."
            />
            {schedules.length === 0
              ? <Empty title="No schedules yet">Create one below to measure your agent regularly.</Empty>
              : (
                <Table
                  caption="Your schedules"
                  head={["Pair", "Region", "When", "State", "Next run", "Runs", "Actions"]}
                >
                  {schedules.map((s) => (
                    <tr key={s.id} data-schedule={s.id}>
                      <td>
                        {wfName.get(s.workflowId) ?? `#${s.workflowId}`} ·{" "}
                        {esName.get(s.evalSetId) ?? `#${s.evalSetId}`}
                      </td>
                      <td>{s.region}</td>
                      <td>
                        {s.scheduleType === "recurring"
                          ? (
                            <>
                              <code>{s.cronExpression}</code> <span class="muted small">{s.timezone}</span>
                            </>
                          )
                          : `once, ${when(s.runAt)}`}
                      </td>
                      <td>
                        <Badge value={s.isEnabled ? "enabled" : "disabled"} />
                      </td>
                      <td>{when(s.nextRunAt)}</td>
                      <td>
                        <a href={`/console/jobs?scheduleId=${s.id}`}>
                          {s.runCount}
                          {s.maxRuns ? ` of ${s.maxRuns}` : ""}
                        </a>
                      </td>
                      <td class="c-row-actions">
                        <Action
                          {...{
                            label: s.isEnabled ? "Disable" : "Enable",
                            method: "PATCH",
                            action: `/api/v1/schedules/${s.id}`,
                            body: { isEnabled: !s.isEnabled },
                          }}
                        />
                        <Action
                          {...{
                            label: "Run now",
                            method: "POST",
                            action: `/api/v1/schedules/${s.id}/run-now`,
                            redirect: "/console/jobs/{id}",
                          }}
                        />
                        {s.scheduleType === "recurring" && (
                          <details class="c-inline-edit">
                            <summary class="button small">Edit</summary>
                            <Form
                              {...{
                                id: `edit-schedule-${s.id}`,
                                method: "PATCH",
                                action: `/api/v1/schedules/${s.id}`,
                                submit: "Save",
                                inline: true,
                                fields: [
                                  { name: "cronExpression", label: "Cron", value: s.cronExpression ?? "" },
                                  { name: "timezone", label: "Time zone", value: s.timezone },
                                  { name: "region", label: "Region", value: s.region },
                                ],
                                then: { reload: true },
                              }}
                            />
                          </details>
                        )}
                        <Action
                          {...{
                            label: "Delete",
                            method: "DELETE",
                            action: `/api/v1/schedules/${s.id}`,
                            danger: true,
                            confirm: "Deletes this schedule; the jobs it already ran and their results stay.",
                          }}
                        />
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
            <Section title="New schedule">
              {wf.items.length === 0 || es.items.length === 0
                ? (
                  <p class="muted">
                    A schedule needs a <a href="/console/workflows">workflow</a> and an{" "}
                    <a href="/console/eval-sets">eval set</a>.
                  </p>
                )
                : (
                  <Island
                    name="schedule_form"
                    component={ScheduleForm}
                    props={{
                      workflows: wf.items.map((i) => ({ id: i.id, name: i.name })),
                      evalSets: es.items.map((i) => ({ id: i.id, name: i.name })),
                      regions,
                    }}
                  />
                )}
            </Section>
          </>
        ),
      });
    }),
  );

  // ── Comparison ─────────────────────────────────────────────────────────────────────────
  app.get(
    "/console/compare",
    page(async (c) => {
      const ids = [
        ...new Set(
          c.req.queries("ids")?.flatMap((v) => v.split(",")).filter((v) => /^\d{1,15}$/.test(v)).map(
            Number,
          ) ?? [],
        ),
      ].slice(0, 10);
      const workflowId = /^\d{1,15}$/.test(c.req.query("workflowId") ?? "")
        ? c.req.query("workflowId")
        : null;
      const [list, wf] = await Promise.all([
        get<{ results: ResultSummary[] }>(
          c,
          `/api/v1/results?limit=50${workflowId ? `&workflowId=${workflowId}` : ""}`,
        ),
        get<{ items: Item[] }>(c, "/api/v1/workflows?limit=200"),
      ]);
      // A workflow over time: its latest results, oldest first, when no results were picked.
      const chosen = ids.length
        ? await Promise.all(ids.map((id) => get<ResultSummary>(c, `/api/v1/results/${id}`)))
        : workflowId
        ? list.results.slice(0, 10).reverse()
        : [];
      const wfName = new Map(wf.items.map((i) => [i.id, i.name]));
      const label = (r: ResultSummary) => `#${r.id} ${wfName.get(r.workflowId) ?? ""} ${r.region}`.trim();
      const base = chosen[0];
      const delta = (v: number | null, b: number | null) =>
        v === null || b === null ? "" : ` (${v - b >= 0 ? "+" : "−"}${Math.abs(Math.round(v - b))})`;
      return consolePage(c, deps, {
        title: "Compare results",
        body: (
          <>
            <PageHead
              title="Compare results"
              crumbs={[{ href: "/console/jobs", label: "Jobs" }]}
              lead="Pick two or more results, or a workflow to see its latest results over time."
            />
            {chosen.length >= 2 && (
              <Section title="Side by side">
                <Island
                  name="compare_chart"
                  component={CompareChart}
                  props={{
                    labels: chosen.map(label),
                    series: [
                      {
                        label: "response median",
                        values: chosen.map((r) => r.responseLatency.median),
                        color: "#6d6dfa",
                      },
                      {
                        label: "response p90",
                        values: chosen.map((r) => r.responseLatency.p90),
                        color: "#6d6dfa77",
                      },
                      {
                        label: "interrupt median",
                        values: chosen.map((r) => r.interruptLatency.median),
                        color: "#22c3a6",
                      },
                    ],
                  }}
                />
                <Table
                  caption="Compared results"
                  head={[
                    "Result",
                    "When",
                    "Response median (Δ)",
                    "p90",
                    "sd",
                    "n",
                    "Interrupt median (Δ)",
                    "n",
                  ]}
                >
                  {chosen.map((r) => (
                    <tr key={r.id} data-result={r.id}>
                      <td>
                        <a href={`/console/jobs/${r.jobId}`}>{label(r)}</a>
                      </td>
                      <td>{when(r.createdAt)}</td>
                      <td>
                        {ms(r.responseLatency.median)}
                        {r === base ? "" : delta(r.responseLatency.median, base.responseLatency.median)}
                      </td>
                      <td>{ms(r.responseLatency.p90)}</td>
                      <td>{ms(r.responseLatency.sd)}</td>
                      <td>{r.responseLatency.n}</td>
                      <td>
                        {ms(r.interruptLatency.median)}
                        {r === base ? "" : delta(r.interruptLatency.median, base.interruptLatency.median)}
                      </td>
                      <td>{r.interruptLatency.n}</td>
                    </tr>
                  ))}
                </Table>
                <p class="muted small">
                  Δ is against the first result. Medians of few turns move a lot: read them with n.
                </p>
              </Section>
            )}
            {chosen.length === 1 && (
              <p class="c-limit" role="status">Pick at least two results to compare.</p>
            )}
            <Section title="Results">
              {list.results.length === 0
                ? (
                  <Empty title="No results yet">
                    Run an evaluation; its result can then be compared here.
                  </Empty>
                )
                : (
                  <form method="get" action="/console/compare">
                    <Table
                      caption="Results to compare"
                      head={["Pick", "Result", "When", "Response median", "n"]}
                    >
                      {list.results.map((r) => (
                        <tr key={r.id}>
                          <td>
                            <input
                              type="checkbox"
                              name="ids"
                              value={String(r.id)}
                              id={`pick-${r.id}`}
                              checked={ids.includes(r.id)}
                              aria-label={`Compare ${label(r)}`}
                            />
                          </td>
                          <td>
                            <label for={`pick-${r.id}`}>{label(r)}</label>
                          </td>
                          <td>{when(r.createdAt)}</td>
                          <td>{ms(r.responseLatency.median)}</td>
                          <td>{r.responseLatency.n}</td>
                        </tr>
                      ))}
                    </Table>
                    <button class="button primary" type="submit">Compare</button>
                  </form>
                )}
            </Section>
          </>
        ),
      });
    }),
  );

  // ── API keys ───────────────────────────────────────────────────────────────────────────
  app.get(
    "/console/api-keys",
    page(async (c) => {
      const { apiKeys } = await get<{ apiKeys: ApiKey[] }>(c, "/api/v1/api-keys");
      return consolePage(c, deps, {
        title: "API keys",
        body: (
          <>
            <PageHead
              title="API keys"
              lead="An API key lets a script, CI job or the vox CLI act as you on /api/v1. Revoke a key the moment it leaks."
            />
            <Section title="New API key">
              <Form
                {...{
                  id: "new-key",
                  method: "POST",
                  action: "/api/v1/api-keys",
                  submit: "Create API key",
                  inline: true,
                  fields: [
                    { name: "name", label: "Name", required: true, hint: "Where you will use it, e.g. CI" },
                    {
                      name: "expiresAt",
                      label: "Expires (optional)",
                      type: "datetime-local",
                      omitEmpty: true,
                    },
                  ],
                  then: {
                    secret: {
                      field: "key",
                      title: "Your new API key.",
                      notice: "Copy it now: it is shown only this once.",
                      command: 'curl -H "Authorization: Bearer {secret}" {origin}/api/v1/user',
                    },
                  },
                }}
              />
            </Section>
            {apiKeys.length === 0
              ? <Empty title="No API keys yet">Create one above to use the API or the vox CLI.</Empty>
              : (
                <Table
                  caption="Your API keys"
                  head={["Name", "Key", "Status", "Created", "Last used", "Uses", "Actions"]}
                >
                  {apiKeys.map((k) => (
                    <tr key={k.id} data-key={k.id}>
                      <td>{k.name}</td>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td>
                        <Badge value={k.status} />
                      </td>
                      <td>{when(k.createdAt)}</td>
                      <td>{k.lastUsedAt ? when(k.lastUsedAt) : "never"}</td>
                      <td>{k.usageCount}</td>
                      <td class="c-row-actions">
                        {k.status === "active" && (
                          <Action
                            {...{
                              label: "Revoke",
                              method: "POST",
                              action: `/api/v1/api-keys/${k.id}/revoke`,
                              danger: true,
                              confirm: `Revokes “${k.name}”: requests with it fail from now on.`,
                            }}
                          />
                        )}
                        <Action
                          {...{
                            label: "Delete",
                            method: "DELETE",
                            action: `/api/v1/api-keys/${k.id}`,
                            danger: true,
                            confirm: `Deletes “${k.name}” and its usage record; it stops working.`,
                          }}
                        />
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
          </>
        ),
      });
    }),
  );

  // ── Account ────────────────────────────────────────────────────────────────────────────
  app.get(
    "/console/account",
    page(async (c) => {
      const { user } = await get<
        {
          user: {
            name: string;
            username: string;
            email: string;
            role: string;
            createdAt?: string;
            via: string;
          };
        }
      >(c, "/api/v1/user");
      const { sessions } = await get<{ sessions: SessionView[] }>(c, "/api/v1/user/sessions");
      return consolePage(c, deps, {
        title: "Account",
        body: (
          <>
            <PageHead title="Account" />
            <Section title="Profile">
              <dl class="c-dl">
                <dt>Name</dt>
                <dd>{user.name}</dd>
                <dt>Username</dt>
                <dd>{user.username}</dd>
                <dt>Email</dt>
                <dd>{user.email}</dd>
                <dt>Plan</dt>
                <dd>{user.role}</dd>
                <dt>Member since</dt>
                <dd>{when(user.createdAt)}</dd>
              </dl>
            </Section>
            <Section title="Password">
              <Form
                {...{
                  id: "password",
                  method: "POST",
                  action: "/api/v1/user/password",
                  submit: "Change password",
                  fields: [
                    {
                      name: "currentPassword",
                      label: "Current password",
                      type: "password",
                      autocomplete: "current-password",
                    },
                    {
                      name: "newPassword",
                      label: "New password",
                      type: "password",
                      autocomplete: "new-password",
                    },
                    {
                      name: "revokeApiKeys",
                      label: "Also revoke all my API keys (do this if the password may have leaked)",
                      type: "checkbox",
                      value: false,
                    },
                  ],
                  note: "Changing the password signs out every other browser.",
                  then: { reload: true },
                }}
              />
            </Section>
            <Section title="Signed-in browsers">
              <Table
                caption="Signed-in browsers"
                head={["Browser", "Address", "Signed in", "Last used", "Expires", "Actions"]}
              >
                {sessions.map((s) => (
                  <tr key={s.id} data-session={s.id}>
                    <td>
                      {browserOf(s.userAgent)} {s.current && <Badge value="this browser" />}
                    </td>
                    <td>{s.ip ?? "—"}</td>
                    <td>{when(s.createdAt)}</td>
                    <td>{when(s.lastSeenAt)}</td>
                    <td>{when(s.expiresAt)}</td>
                    <td>
                      <Action
                        label="Sign out"
                        method="DELETE"
                        action={`/api/v1/user/sessions/${s.id}`}
                        confirm={s.current
                          ? "Signs this browser out."
                          : `Signs out ${browserOf(s.userAgent)} (${s.ip ?? "unknown address"}).`}
                        danger
                        redirect={s.current ? "/login" : undefined}
                      />
                    </td>
                  </tr>
                ))}
              </Table>
              {sessions.filter((s) => !s.current).length > 0 && (
                <Action
                  label="Sign out every other browser"
                  method="DELETE"
                  action="/api/v1/user/sessions"
                  confirm={`Signs out ${
                    sessions.filter((s) => !s.current).length
                  } other browser(s); this one stays.`}
                  danger
                />
              )}
            </Section>
          </>
        ),
      });
    }),
  );

  return app;
}

/** "Chrome on Linux" from a user agent, or what is known of it. */
function browserOf(ua: string | null): string {
  if (!ua) return "Unknown browser";
  const name = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
    ? "Firefox"
    : /Chrome\/|Chromium\//.test(ua)
    ? "Chrome"
    : /Safari\//.test(ua)
    ? "Safari"
    : /curl\//.test(ua)
    ? "curl"
    : ua.split(/[ /]/)[0].slice(0, 30);
  const os = /Windows/.test(ua)
    ? "Windows"
    : /Android/.test(ua)
    ? "Android"
    : /iPhone|iPad/.test(ua)
    ? "iOS"
    : /Mac OS X/.test(ua)
    ? "macOS"
    : /Linux/.test(ua)
    ? "Linux"
    : null;
  return os ? `${name} on ${os}` : name;
}

function JobsTable({ jobs, names }: { jobs: Job[]; names: Map<string, string> }) {
  return (
    <Table caption="Jobs" head={["Job", "Status", "Workflow", "Eval set", "Region", "Created", "Finished"]}>
      {jobs.map((j) => (
        <tr key={j.id} data-job={j.id}>
          <td>
            <a href={`/console/jobs/${j.id}`}>#{j.id}</a>
          </td>
          <td>
            <Badge value={j.status} />
          </td>
          <td>{names.get(`w${j.workflowId}`) ?? `#${j.workflowId}`}</td>
          <td>{names.get(`e${j.evalSetId}`) ?? `#${j.evalSetId}`}</td>
          <td>{j.region}</td>
          <td>{when(j.createdAt)}</td>
          <td>{when(j.finishedAt)}</td>
        </tr>
      ))}
    </Table>
  );
}

function StatCard({ title, s }: { title: string; s: Stats }) {
  return (
    <div class="c-stat">
      <h3>{title}</h3>
      <p class="c-stat-main">
        {ms(s.median)} <span class="muted small">median</span>
      </p>
      <p class="muted small">p90 {ms(s.p90)} · sd {ms(s.sd)} · n = {s.n}</p>
    </div>
  );
}

function score(v: number | null): string {
  return v === null ? "—" : v.toFixed(2);
}

function ResultView({ result }: { result: ResultDetail }) {
  const wavs = result.artifacts.filter((a) => a.contentType.startsWith("audio/"));
  const runs = result.report?.runs ?? [];
  const turns = result.turns as unknown as RecordingTurn[];
  return (
    <>
      <Section title="Metrics">
        <div class="c-stats" data-testid="metrics">
          <StatCard title="Response latency" s={result.responseLatency} />
          <StatCard title="Interrupt latency" s={result.interruptLatency} />
          <TurnTakingCard value={turnTakingOf(result.report, result.turns)} />
          <div class="c-stat">
            <h3>Scores</h3>
            <p class="muted small">
              network resilience {score(result.networkResilience)} · noise reduction{" "}
              {score(result.noiseReduction)} · naturalness {score(result.naturalness)}
            </p>
          </div>
        </div>
        <p class="muted small">
          Methods: {Object.entries(result.methods).map(([k, v]) => `${k} ${v}`).join(" · ") || "—"}
        </p>
        <p class="c-downloads">
          <a class="button small" href={`/api/v1/results/${result.id}`} download={`result-${result.id}.json`}>
            Report JSON
          </a>
          <a class="button small" href={`/console/compare?workflowId=${result.workflowId}`}>
            Compare with earlier runs
          </a>
          {wavs.map((a) => (
            <a
              key={a.name}
              class="button small"
              href={`/api/v1/results/${result.id}/artifacts/${a.name}`}
              download
            >
              {a.name} ({Math.round(a.sizeBytes / 1024)} KB)
            </a>
          ))}
        </p>
      </Section>
      {/* The caller's stored speech (speech-<sha256>.wav, for a replay) is a download, not a call. */}
      {wavs.filter((a) => !a.name.startsWith("speech-")).map((a) => {
        const idx = runs.findIndex((r) => r.recording === a.name);
        const run = runs[idx];
        const runNo = run?.run ?? idx;
        const runTurns = turns.filter((t) => idx < 0 || t.run === undefined || t.run === runNo);
        return (
          <Section key={a.name} title={`Recording ${a.name}`}>
            <Island
              name="recording"
              component={Recording}
              props={{
                src: `/api/v1/results/${result.id}/artifacts/${a.name}`,
                turns: runTurns,
                firstFrame: run?.recording_first_frame ?? 0,
                sampleRate: run?.sample_rate ?? null,
              }}
            />
          </Section>
        );
      })}
      <Section title="Turns">
        {result.turns.length === 0
          ? <Empty title="No measured turns">The eval set measured nothing in this run.</Empty>
          : (
            <Table caption="Measured turns" head={["#", "Kind", "Latency", "OK", "Step", "Note"]} stack>
              {turns.map((t, i) => (
                <tr key={i} data-turn={i + 1}>
                  <td data-label="#">{i + 1}</td>
                  <td data-label="Kind">{t.kind}</td>
                  <td data-label="Latency">{ms(t.latency_ms)}</td>
                  <td data-label="OK">{t.ok ? "yes" : "no"}</td>
                  <td data-label="Step">{t.step ?? "—"}</td>
                  <td data-label="Note">{t.note ?? ""}</td>
                </tr>
              ))}
            </Table>
          )}
      </Section>
      <Receipts reportSha256={result.reportSha256} recordings={wavs} />
    </>
  );
}
