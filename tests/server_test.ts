import assert from "node:assert/strict";
import { freePort } from "../lib/embedded_pg.ts";
import { postgresPids } from "./_procs.ts";
import { serverReady } from "./_wait.ts";

/** The server's stderr so far, kept so a failed assertion can say why the process exited. */
const stderrOf = new Map<Deno.ChildProcess, string[]>();

function startServer(dataDir: string, port: number): Deno.ChildProcess {
  const env: Record<string, string> = { ...Deno.env.toObject(), VOX_DATA_DIR: dataDir, PORT: String(port) };
  delete env.DATABASE_URL;
  env.VOX_DEMO = "false";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env,
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  stderrOf.set(child, lines);
  child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        lines.push(chunk);
        if (lines.length > 200) lines.shift();
      },
    }),
  ).catch(() => {});
  return child;
}

Deno.test(
  "the server starts on its embedded database, survives kill -9, and stops cleanly",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "vox-server-" });
    await Deno.chmod(dataDir, 0o755);
    const children: Deno.ChildProcess[] = [];
    try {
      const port1 = freePort();
      const first = startServer(dataDir, port1);
      children.push(first);
      await serverReady(`http://127.0.0.1:${port1}`, { child: first });
      for (const path of ["/", "/healthz", "/agents"]) {
        const res = await fetch(`http://127.0.0.1:${port1}${path}`);
        assert.equal(res.status, 200, path);
        await res.body?.cancel();
      }
      first.kill("SIGKILL");
      await first.status;

      const port2 = freePort();
      const second = startServer(dataDir, port2);
      children.push(second);
      await serverReady(`http://127.0.0.1:${port2}`, { child: second });
      // A live dashboard stream must not hold the graceful shutdown open.
      const stream = await fetch(`http://127.0.0.1:${port2}/api/v1/metrics/stream`);
      assert.equal(stream.status, 200);
      const reader = stream.body!.getReader();
      await reader.read();
      second.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        second.status,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("the server did not stop within 30 s of SIGTERM")),
            30_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(
        status.code,
        0,
        `exit code ${status.code}; stderr:\n${stderrOf.get(second)?.join("").slice(-4000)}`,
      );
      // The server ended the stream rather than leaving it open.
      while (!(await reader.read()).done) { /* drained until the server closed it */ }
      // A clean stop takes the embedded database down with the server.
      assert.deepEqual(postgresPids(`${dataDir}/pg`), []);
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
      }
      for (const pid of postgresPids(`${dataDir}/pg`)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
