// A Janus WebRTC gateway (Debian's `janus`) with only its EchoTest plugin and its plain-HTTP API on
// loopback, for the reference agent's `out=janus` mode: the agent's voice goes to Janus as
// WebRTC and comes back from it, so the media path is a real server's, not an in-page loopback.
import { join } from "node:path";

const LIB = "/usr/lib/x86_64-linux-gnu/janus";

/** Whether Janus is installed. */
export async function janusInstalled(): Promise<boolean> {
  try {
    await Deno.stat("/usr/bin/janus");
    await Deno.stat(join(LIB, "plugins", "libjanus_echotest.so"));
    return true;
  } catch {
    return false;
  }
}

/** Starts Janus on a free HTTP port; `url` is its API base (`http://127.0.0.1:P/janus`). */
export async function startJanus(): Promise<{ url: string; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "vox-janus-" });
  const so = async (folder: string) => {
    const out: string[] = [];
    for await (const e of Deno.readDir(join(LIB, folder))) if (e.name.endsWith(".so")) out.push(e.name);
    return out;
  };
  const plugins = (await so("plugins")).filter((p) => p !== "libjanus_echotest.so");
  const transports = (await so("transports")).filter((p) => p !== "libjanus_http.so");
  let lastErr = "";
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = 30000 + Math.floor(Math.random() * 9000);
    const rtp = 40000 + Math.floor(Math.random() * 90) * 100;
    await Deno.writeTextFile(
      join(dir, "janus.jcfg"),
      `general: {
  configs_folder = "${dir}"
  plugins_folder = "${LIB}/plugins"
  transports_folder = "${LIB}/transports"
  events_folder = "${LIB}/events"
  loggers_folder = "${LIB}/loggers"
  debug_level = 3
  session_timeout = 120
}
media: {
  rtp_port_range = "${rtp}-${rtp + 99}"
}
nat: {
  ice_ignore_list = "vmnet"
}
plugins: {
  disable = "${plugins.join(",")}"
}
transports: {
  disable = "${transports.join(",")}"
}
events: {
  broadcast = false
}
`,
    );
    await Deno.writeTextFile(
      join(dir, "janus.transport.http.jcfg"),
      `general: {
  json = "plain"
  base_path = "/janus"
  http = true
  port = ${port}
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
}
cors: {
  allow_origin = "*"
}
`,
    );
    await Deno.writeTextFile(join(dir, "janus.plugin.echotest.jcfg"), "general: {\n}\n");
    const child = new Deno.Command("/usr/bin/janus", {
      args: ["-F", dir, "-C", join(dir, "janus.jcfg"), "-o", "-N"],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => (exited = true, s));
    const url = `http://127.0.0.1:${port}/janus`;
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/info`);
        await res.body?.cancel();
        if (res.ok) {
          return {
            url,
            async close() {
              try {
                child.kill("SIGTERM");
              } catch { /* gone */ }
              const t = setTimeout(() => {
                try {
                  child.kill("SIGKILL");
                } catch { /* gone */ }
              }, 3000);
              await status;
              clearTimeout(t);
              await Deno.remove(dir, { recursive: true }).catch(() => {});
            },
          };
        }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 200));
    }
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    lastErr = `janus did not answer on ${url}`;
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw new Error(lastErr);
}
