// The deployment recipes (compose.yaml, deploy/kubernetes/) and the docs about them, checked
// for what they promise: no container engine is needed to read them. Names of environment
// variables must be ones the server or the agent reads; secrets must come from references.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { configSchema } from "../lib/config.ts";
import { regionSchema } from "../agent/protocol.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const read = (path: string) => Deno.readTextFileSync(join(ROOT, path));
const exists = (path: string) => {
  try {
    Deno.statSync(join(ROOT, path));
    return true;
  } catch {
    return false;
  }
};

// deno-lint-ignore no-explicit-any
type Any = any;

/** Every variable lib/config.ts validates. */
const SERVER_ENV = new Set(Object.keys(configSchema.shape));

/** Every variable the agent reads: its settings' sources, and direct reads anywhere in agent/. */
const AGENT_ENV = (() => {
  const names = new Set<string>();
  for (const m of read("agent/daemon_settings.ts").matchAll(/env: "([A-Z0-9_]+)"/g)) names.add(m[1]);
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(join(ROOT, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.name.endsWith(".ts")) {
        for (const m of read(path).matchAll(/Deno\.env\.get\("([A-Z0-9_]+)"\)/g)) names.add(m[1]);
      }
    }
  };
  walk("agent");
  return names;
})();

/** Variables whose values are secrets: never written in a recipe. */
const SECRET_ENV = new Set([
  "VOX_SECRET_KEY",
  "INIT_CODE",
  "METRICS_TOKEN",
  "VOX_AGENT_TOKEN",
  "POSTGRES_PASSWORD",
  "GOOGLE_CLIENT_SECRET",
  "STRIPE_SECRET_KEY",
  "STRIPE_WEBHOOK_SECRET",
]);
/** A compose value that is only a reference to the environment (.env). */
const REFERENCE = /^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$/;

Deno.test("the agent's variables are found where the test looks for them", () => {
  // Guards the collection above: a refactor that hides them would make every check pass.
  for (const name of ["VOX_SERVER_URL", "VOX_AGENT_TOKEN", "VOX_AGENT_REGION", "CHROMIUM_PATH"]) {
    assert.ok(AGENT_ENV.has(name), name);
  }
  assert.ok(SERVER_ENV.has("DATABASE_URL") && SERVER_ENV.has("METRICS_TOKEN"));
});

Deno.test("compose.yaml: database, two servers behind the proxy, an agent, each checked for health", () => {
  const compose = parse(read("compose.yaml")) as Any;
  const s = compose.services;
  assert.deepEqual(Object.keys(s).sort(), ["agent", "db", "proxy", "vox1", "vox2"]);

  assert.deepEqual(s.db.healthcheck.test.slice(0, 2), ["CMD", "pg_isready"]);
  for (const name of ["vox1", "vox2"]) {
    const v = s[name];
    assert.equal(v.build, ".");
    assert.ok(exists("Dockerfile"));
    assert.match(v.healthcheck.test.join(" "), /\/readyz/, `${name} is healthy when ready`);
    assert.equal(v.depends_on.db.condition, "service_healthy");
    assert.match(v.environment.DATABASE_URL, /@db:5432\//);
    // The drain plus the 5 s the pool gets to close must fit in the stop grace period.
    const grace = parseInt(v.stop_grace_period);
    assert.ok(grace > Number(v.environment.VOX_DRAIN_SECONDS) + 5, `${name}: stop_grace_period ${grace}s`);
    assert.equal(v.environment.TRUST_PROXY, "true", "behind a proxy, client addresses come from it");
  }
  assert.equal(s.proxy.depends_on.vox1.condition, "service_healthy");
  assert.equal(s.proxy.depends_on.vox2.condition, "service_healthy");
  for (const volume of [...s.proxy.volumes, ...s.agent.volumes]) {
    const host = String(volume).split(":")[0];
    assert.ok(exists(host), `${host} (mounted by compose) exists`);
  }
  const caddy = read("deploy/compose/Caddyfile");
  assert.match(caddy, /reverse_proxy vox1:8000 vox2:8000/);
  assert.match(caddy, /health_uri \/readyz/);

  const agent = s.agent;
  assert.deepEqual(agent.profiles, ["agent"], "the agent starts once its token exists");
  assert.ok(exists(agent.build.dockerfile));
  assert.match(agent.environment.VOX_SERVER_URL, /^http:\/\/proxy:8080$/);
  assert.ok(parseInt(agent.shm_size) >= 1, "Chromium gets shared memory");
  assert.ok(
    parseInt(agent.stop_grace_period) > Number(agent.environment.VOX_AGENT_GRACE_SECONDS),
    "the agent may finish or hand back its jobs",
  );
});

Deno.test("compose.yaml: every variable is one Vox reads, and secrets only come from .env", () => {
  const compose = parse(read("compose.yaml")) as Any;
  const required = new Set<string>();
  for (const [service, def] of Object.entries(compose.services) as [string, Any][]) {
    const known = service === "agent" ? AGENT_ENV : service === "db" ? null : SERVER_ENV;
    for (const [name, raw] of Object.entries(def.environment ?? {})) {
      const value = String(raw);
      if (known) assert.ok(known.has(name), `${service}: ${name} is not a variable Vox reads`);
      if (SECRET_ENV.has(name)) assert.match(value, REFERENCE, `${service}: ${name} is written inline`);
      // A password inside a URL must be a reference too.
      const userinfo = /^[a-z]+:\/\/[^/@:]*:([^@]*)@/.exec(value);
      if (userinfo) assert.match(userinfo[1], REFERENCE, `${service}: ${name} has an inline password`);
      for (const m of value.matchAll(/\$\{([A-Z0-9_]+):\?/g)) required.add(m[1]);
    }
  }
  // Every variable compose insists on is explained in the example .env, which holds no value for it.
  const example = read("deploy/compose/env.example");
  for (const name of required) assert.match(example, new RegExp(`^${name}=$`, "m"), `env.example: ${name}`);
  assert.match(read(".gitignore"), /^\.env$/m, ".env is never committed");
});

function kustomizeDocuments(): Any[] {
  const dir = "deploy/kubernetes";
  const k = parse(read(`${dir}/kustomization.yaml`)) as Any;
  const listed = new Set<string>(k.resources);
  // Every manifest in the folder is applied, none is forgotten.
  const walk = (d: string): string[] =>
    [...Deno.readDirSync(join(ROOT, dir, d))].flatMap((e) =>
      e.isDirectory ? walk(`${d}${e.name}/`) : e.name.endsWith(".yaml") ? [`${d}${e.name}`] : []
    );
  assert.deepEqual(walk("").filter((f) => f !== "kustomization.yaml").sort(), [...listed].sort());
  return [...listed].flatMap((f) =>
    parseAllDocuments(read(`${dir}/${f}`)).map((d) => {
      assert.deepEqual(d.errors, [], f);
      return d.toJS();
    })
  );
}

function envOf(container: Any, docs: Any[]): Map<string, Any> {
  const env = new Map<string, Any>();
  for (const e of container.env ?? []) env.set(e.name, e);
  for (const from of container.envFrom ?? []) {
    const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === from.configMapRef?.name);
    assert.ok(cm, `ConfigMap ${from.configMapRef?.name} is part of the folder`);
    for (const [name, value] of Object.entries(cm.data)) env.set(name, { name, value });
  }
  return env;
}

Deno.test("Kubernetes: the server Deployment's probes, grace period, autoscaler and secrets", () => {
  const docs = kustomizeDocuments();
  assert.ok(!docs.some((d) => d.kind === "Secret"), "no Secret is committed; they are created by hand");
  const deployment = docs.find((d) => d.kind === "Deployment" && d.metadata.name === "vox-server");
  const pod = deployment.spec.template.spec;
  const [c] = pod.containers;
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.ports[0].containerPort, 8000);
  assert.ok(pod.securityContext.runAsNonRoot);

  const env = envOf(c, docs);
  for (const [name, e] of env) {
    assert.ok(SERVER_ENV.has(name), `${name} is not a variable of lib/config.ts`);
    if (SECRET_ENV.has(name) || /URL$/.test(name) && name.startsWith("DATABASE")) {
      assert.ok(e.valueFrom?.secretKeyRef, `${name} comes from a Secret`);
    }
  }
  for (const name of ["DATABASE_URL", "VOX_SECRET_KEY"]) {
    assert.equal(env.get(name)?.valueFrom.secretKeyRef.optional, undefined, `${name} is required`);
  }
  // preStop, then the drain, then 5 s of pool close, all inside the grace period.
  const preStop = Number(c.lifecycle.preStop.exec.command.at(-1));
  const drain = Number(env.get("VOX_DRAIN_SECONDS").value);
  assert.ok(pod.terminationGracePeriodSeconds > preStop + drain + 5, "grace period covers the drain");

  const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler");
  assert.deepEqual(hpa.spec.scaleTargetRef, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    name: "vox-server",
  });
  assert.ok(hpa.spec.minReplicas >= 2);
  assert.equal(deployment.spec.replicas, undefined, "the autoscaler owns the replica count");
  const service = docs.find((d) => d.kind === "Service" && d.metadata.name === "vox-server");
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
});

Deno.test("Kubernetes: one agent Deployment per region, token from a Secret, shared memory, non-root", () => {
  const docs = kustomizeDocuments();
  const agents = docs.filter((d) => d.kind === "Deployment" && d.metadata.name.startsWith("vox-agent-"));
  assert.ok(agents.length >= 2);
  const regions = new Set<string>();
  for (const d of agents) {
    const pod = d.spec.template.spec;
    const [c] = pod.containers;
    const env = envOf(c, docs);
    for (const name of env.keys()) assert.ok(AGENT_ENV.has(name), `${d.metadata.name}: ${name} is not read`);
    const region = env.get("VOX_AGENT_REGION").value;
    assert.ok(regionSchema.safeParse(region).success);
    assert.equal(d.metadata.name, `vox-agent-${region}`);
    regions.add(region);
    assert.equal(env.get("VOX_AGENT_TOKEN").valueFrom.secretKeyRef.name, `vox-agent-${region}`);
    const url = env.get("VOX_SERVER_URL").valueFrom.configMapKeyRef;
    assert.ok(docs.some((x) => x.kind === "ConfigMap" && x.metadata.name === url.name && x.data[url.key]));

    const shm = c.volumeMounts.find((m: Any) => m.mountPath === "/dev/shm");
    const volume = pod.volumes.find((v: Any) => v.name === shm?.name);
    assert.equal(volume?.emptyDir?.medium, "Memory", "/dev/shm is a memory emptyDir");
    assert.ok(pod.securityContext.runAsNonRoot && pod.securityContext.runAsUser > 0, "non-root");
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.ok(
      pod.terminationGracePeriodSeconds > Number(env.get("VOX_AGENT_GRACE_SECONDS").value),
      "jobs can finish or be handed back",
    );
  }
  assert.equal(regions.size, agents.length, "one Deployment per region");
});

Deno.test("the docs name only tasks that exist and variables Vox reads", () => {
  const tasks = new Set(Object.keys(JSON.parse(read("deno.json")).tasks));
  const docs = ["README.md", ...[...Deno.readDirSync(join(ROOT, "docs"))].map((e) => `docs/${e.name}`)];
  let seen = 0;
  for (const doc of docs) {
    const text = read(doc);
    for (const m of text.matchAll(/deno task ([a-z][a-z:-]*)/g)) {
      seen++;
      assert.ok(tasks.has(m[1]), `${doc}: deno task ${m[1]} does not exist`);
    }
  }
  assert.ok(seen > 10, "the docs were read");
  for (const doc of ["docs/deploy.md", "docs/operations.md"]) {
    for (const m of read(doc).matchAll(/`((?:VOX|DATABASE|METRICS)_[A-Z0-9_]+)`/g)) {
      assert.ok(SERVER_ENV.has(m[1]) || AGENT_ENV.has(m[1]), `${doc}: ${m[1]} is not a variable Vox reads`);
    }
  }
  // The commands of the first run refer to what exists.
  const deploy = read("docs/deploy.md");
  for (const m of deploy.matchAll(/sh (deploy\/[a-z_/]+\.sh) ([a-z]+)/g)) {
    assert.ok(exists(m[1]), m[1]);
    assert.match(read(m[1]), new RegExp(`^  ${m[2]}\\)`, "m"), `${m[1]} has a "${m[2]}" step`);
  }
  assert.match(deploy, /--profile agent/);
  assert.ok(parse(read("compose.yaml")).services.agent.profiles.includes("agent"));
});
