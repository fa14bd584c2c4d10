/**
 * Headless Chromium for the runner, with its sandbox on. Chromium refuses its sandbox as
 * root, so an agent running as root starts the browser as an unprivileged user (VOX_BROWSER_USER,
 * default `vox-browser`, created when missing) through `setpriv`, with a profile that user owns.
 * `--no-sandbox` happens only when VOX_AGENT_NO_SANDBOX=1 is set, and is logged.
 */
import puppeteer, { type Browser } from "puppeteer-core";
import { dieWithAgentArgs } from "./die_with_agent.ts";
import { STRICT_CHROMIUM_FLAGS } from "./egress.ts";

/** Flags every Vox browser gets; autoplay is allowed because no one clicks in a headless run. */
export const CHROMIUM_FLAGS = [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
  // The audio service in the browser process rather than a process of its own (which Chromium
  // runs unsandboxed anyway): one process and one IPC hop less per rendered audio buffer,
  // −8 % CPU per call in bench:capacity.
  "--disable-features=AudioServiceOutOfProcess",
];

/** A launched browser and how to dispose of it (and its temporary profile). */
export interface LaunchedBrowser {
  browser: Browser;
  /** Whether Chromium runs with its sandbox. */
  sandboxed: boolean;
  /** The user Chromium runs as when the agent dropped root for it. */
  user: string | null;
  close(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: o.success, out: d.decode(o.stdout).trim(), err: d.decode(o.stderr).trim() };
  } catch (err) {
    return { ok: false, out: "", err: (err as Error).message };
  }
}

/** The uid and gid of the browser's user, creating it (a system user without a home) if missing. */
export async function browserUser(name: string): Promise<{ uid: number; gid: number }> {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) throw new Error(`VOX_BROWSER_USER: not a user name: ${name}`);
  let uid = await run("id", ["-u", name]);
  if (!uid.ok) {
    const add = await run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
    uid = await run("id", ["-u", name]);
    // Another agent on this host may have created it meanwhile; only a user still missing is an error.
    if (!uid.ok) throw new Error(`cannot create the browser's user ${name}: ${add.err}`);
    if (add.ok) console.error(`vox agent: created user ${name} to run Chromium with its sandbox`);
  }
  const gid = await run("id", ["-g", name]);
  if (!uid.ok || !gid.ok) throw new Error(`cannot look up the browser's user ${name}`);
  return { uid: Number(uid.out), gid: Number(gid.out) };
}

/** Whether the operator opted out of Chromium's sandbox (VOX_AGENT_NO_SANDBOX=1). */
export function sandboxDisabled(): boolean {
  return ["1", "true", "yes"].includes(Deno.env.get("VOX_AGENT_NO_SANDBOX") ?? "");
}

/**
 * Launches Chromium (CHROMIUM_PATH or /usr/bin/chromium) with a fresh profile, its sandbox on,
 * and extra `args`. `prefix` runs before Chromium (e.g. `ip netns exec NS`, which needs root;
 * the privilege drop comes after it). `strictEgress` adds the WebRTC flags of the strict policy.
 */
export async function launchChromium(
  opts: {
    headless?: boolean;
    executablePath?: string;
    prefix?: string[];
    pipe?: boolean;
    args?: string[];
    strictEgress?: boolean;
    /** Leave SIGINT/SIGTERM/SIGHUP to the caller (the daemon drains before the browser goes). */
    keepOnSignals?: boolean;
  } = {},
): Promise<LaunchedBrowser> {
  const userDataDir = await Deno.makeTempDir({ prefix: "vox-agent-chromium-" });
  const chromium = opts.executablePath ?? Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
  const noSandbox = sandboxDisabled();
  let user: string | null = null;
  const command = [...(opts.prefix ?? [])];
  const env: Record<string, string> = {};
  if (noSandbox) {
    console.error("vox agent: WARNING Chromium runs WITHOUT its sandbox (VOX_AGENT_NO_SANDBOX is set)");
  } else if (Deno.build.os === "linux" && Deno.uid() === 0) {
    user = Deno.env.get("VOX_BROWSER_USER") || "vox-browser";
    const { uid, gid } = await browserUser(user);
    await Deno.chown(userDataDir, uid, gid);
    command.push("setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--");
    // Chromium writes caches under $HOME; root's home is not the browser's to write.
    env.HOME = userDataDir;
  }
  // The parent-death signal (Chromium dies with the agent, SIGKILL included) comes after the
  // change of user: the kernel clears it when a process's credentials change.
  const life = dieWithAgentArgs();
  if (life.length === 0) {
    console.error("setpriv not found: Chromium may outlive an agent killed with SIGKILL");
  }
  command.push(...life, chromium);
  let wrapperDir: string | null = null;
  let executablePath = chromium;
  if (command.length > 1) {
    wrapperDir = await Deno.makeTempDir({ prefix: "vox-agent-launch-" });
    executablePath = `${wrapperDir}/chromium`;
    const quoted = command.map((a) => `'${a.replaceAll("'", `'"'"'`)}'`).join(" ");
    await Deno.writeTextFile(executablePath, `#!/bin/sh\nexec ${quoted} "$@"\n`);
    await Deno.chmod(executablePath, 0o755);
  }
  const close = async () => {
    if (wrapperDir) await Deno.remove(wrapperDir, { recursive: true }).catch(() => {});
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
  };
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath,
      headless: opts.headless ?? true,
      userDataDir,
      // A pipe instead of a DevTools port works when Chromium lives in another network namespace.
      pipe: opts.pipe ?? false,
      args: [
        ...CHROMIUM_FLAGS,
        ...(noSandbox ? ["--no-sandbox"] : []),
        ...(opts.strictEgress ? STRICT_CHROMIUM_FLAGS : []),
        ...(opts.args ?? []),
      ],
      env: { ...Deno.env.toObject(), ...env },
      ...(opts.keepOnSignals ? { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false } : {}),
    });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    browser,
    sandboxed: !noSandbox,
    user,
    close: async () => {
      await browser.close().catch(() => {});
      await close();
    },
  };
}
