/** Workflows, eval sets and projects looked up by name or id, and pushed or pulled as files. */
import { join } from "node:path";
import type { Api } from "./client.ts";
import { CliError } from "./errors.ts";
import { canonical, configDiff, type ConfigFile, type FileKind } from "./files.ts";
import { note } from "./io.ts";

/** A workflow or eval set as the API returns it. */
export interface Item {
  id: number;
  projectId: number;
  name: string;
  config: Record<string, unknown>;
  updatedAt: string;
}

const PATH = { workflow: "/api/v1/workflows", eval_set: "/api/v1/eval-sets" } as const;
const NOUN = { workflow: "workflow", eval_set: "eval set" } as const;

/** A project id from an id or a name (default: the caller's first project). */
export async function resolveProject(api: Api, ref?: string): Promise<number> {
  const { projects } = await api.json<{ projects: { id: number; name: string }[] }>("/api/v1/projects");
  if (!ref) {
    if (!projects.length) throw new CliError("you have no project; create one or pass --project");
    return projects[0].id;
  }
  const hit = projects.find((p) => String(p.id) === ref) ?? projects.find((p) => p.name === ref);
  if (!hit) {
    throw new CliError(
      `no project "${ref}" among yours (${projects.map((p) => `${p.id} ${p.name}`).join(", ") || "none"})`,
    );
  }
  return hit.id;
}

/** Items named `name` in the caller's projects (in one project when given). */
async function byName(api: Api, kind: FileKind, name: string, projectId?: number): Promise<Item[]> {
  const q = new URLSearchParams({ scope: "mine", name, limit: "200" });
  if (projectId) q.set("projectId", String(projectId));
  return (await api.json<{ items: Item[] }>(`${PATH[kind]}?${q}`)).items;
}

/** An item by id or by name; unknown or ambiguous names are CliErrors. */
export async function resolveItem(api: Api, kind: FileKind, ref: string, projectId?: number): Promise<Item> {
  if (/^\d+$/.test(ref)) {
    try {
      return await api.json<Item>(`${PATH[kind]}/${ref}`);
    } catch (err) {
      if (err instanceof CliError && / 404 /.test(err.message)) {
        throw new CliError(`no ${NOUN[kind]} with id ${ref} that you can see`);
      }
      throw err;
    }
  }
  const hits = await byName(api, kind, ref, projectId);
  if (hits.length === 0) throw new CliError(`no ${NOUN[kind]} named "${ref}" in your projects`);
  if (hits.length > 1) {
    throw new CliError(
      `${hits.length} ${NOUN[kind]}s are named "${ref}" (ids ${hits.map((h) => h.id).join(", ")}): ` +
        "pass --project or the id",
    );
  }
  return hits[0];
}

/** What push did to one file. */
export interface PushOutcome {
  file: string;
  kind: FileKind;
  name: string;
  id: number;
  action: "created" | "updated" | "unchanged";
  diff?: string;
}

/**
 * Creates or updates the item named after the file in the project: the same file twice
 * changes nothing (configs compared as the schema outputs them, key order aside).
 */
export async function pushFile(
  api: Api,
  file: ConfigFile,
  projectId: number,
  provider?: string,
): Promise<PushOutcome> {
  const [existing] = await byName(api, file.kind, file.name, projectId);
  const base = { file: file.path, kind: file.kind, name: file.name };
  if (!existing) {
    if (file.kind === "workflow" && !provider) {
      throw new CliError(
        `${file.path}: a new workflow needs --provider NAME (the company or product whose voice agent it runs)`,
      );
    }
    const created = await api.json<Item>(PATH[file.kind], "POST", {
      projectId,
      name: file.name,
      config: file.config,
      ...(file.kind === "workflow" ? { provider: { name: provider } } : {}),
    });
    return { ...base, id: created.id, action: "created", diff: configDiff({}, created.config) };
  }
  if (canonical(existing.config) === canonical(file.config)) {
    return { ...base, id: existing.id, action: "unchanged" };
  }
  const updated = await api.json<Item>(`${PATH[file.kind]}/${existing.id}`, "PATCH", {
    config: file.config,
    ...(file.kind === "workflow" && provider ? { provider: { name: provider } } : {}),
  });
  return { ...base, id: updated.id, action: "updated", diff: configDiff(existing.config, updated.config) };
}

/** Writes items as YAML files named after them into `dir`; returns the paths. */
export async function pullItems(
  api: Api,
  items: { kind: FileKind; item: Item }[],
  dir: string,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const { kind, item } of items) {
    const safe = item.name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "_") || `${kind}-${item.id}`;
    const path = join(dir, `${safe}.yaml`);
    await Deno.writeTextFile(path, await api.text(`${PATH[kind]}/${item.id}/yaml`));
    note(`${NOUN[kind]} ${item.name} (id ${item.id}) → ${path}`);
    paths.push(path);
  }
  return paths;
}

/** Every item of a kind in a project. */
export async function listProjectItems(api: Api, kind: FileKind, projectId: number): Promise<Item[]> {
  const q = new URLSearchParams({ scope: "mine", projectId: String(projectId), limit: "200" });
  return (await api.json<{ items: Item[] }>(`${PATH[kind]}?${q}`)).items;
}
