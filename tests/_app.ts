// Builds an in-process app on a test database, with logs captured for assertions.
import { join } from "node:path";
import { createApp } from "../routes/app.ts";
import { buildIslands, type IslandAssets } from "../lib/islands/bundle.ts";
import { type Config, loadConfig } from "../lib/config.ts";
import type { AppDeps } from "../lib/context.ts";
import type { Sql } from "../lib/db.ts";
import { createLogger, type LogSink } from "../lib/log.ts";
import { importKey } from "../lib/secrets.ts";

let assets: Promise<IslandAssets> | undefined;

/** Island bundles, built once per test process (and cached on disk by content hash). */
export function testAssets(): Promise<IslandAssets> {
  assets ??= buildIslands({ outRoot: join(".vox", "build", "islands"), log: createLogger() });
  return assets;
}

/** Collected log lines of one app. */
export class LogCapture {
  lines: string[] = [];
  sink: LogSink = (_level, line) => this.lines.push(line);
  get text(): string {
    return this.lines.join("\n");
  }
}

/** A test configuration: valid defaults plus overrides. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: "postgres://test@127.0.0.1:5432/test",
    VOX_SECRET_KEY: "0".repeat(64),
    VOX_DEMO: "false",
    ...overrides,
  });
}

/** createApp() on `sql`, with captured logs. */
export async function createTestApp(sql: Sql, overrides: Partial<AppDeps> = {}) {
  const logs = new LogCapture();
  const log = createLogger({ test: true });
  const { configureLogging } = await import("../lib/log.ts");
  configureLogging("debug", logs.sink);
  const deps: AppDeps = {
    sql,
    config: testConfig(),
    assets: await testAssets(),
    log,
    serverId: "test",
    secretKey: await importKey(new Uint8Array(32).fill(7)),
    ...overrides,
  };
  return { app: createApp(deps), deps, logs };
}

/**
 * JSON calls to `app` as the holder of a session cookie: `api(cookie, method, path, body?)` →
 * status and parsed body (null when the body is not JSON).
 */
export function sessionApi(app: { request(path: string, init?: RequestInit): Response | Promise<Response> }) {
  return async (cookie: string, method: string, path: string, body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: { cookie, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    // deno-lint-ignore no-explicit-any
    return { status: res.status, body: await res.json().catch(() => null) as any };
  };
}
