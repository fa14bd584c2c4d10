/**
 * Where `vox` finds its server and API key: VOX_URL / VOX_API_KEY (CI), else the per-user file
 * `vox login` writes ($VOX_CONFIG, else $XDG_CONFIG_HOME/vox/config.json, else
 * ~/.config/vox/config.json), created with mode 0600 because it holds a secret.
 */
import { dirname, join } from "node:path";
import { CliError } from "./errors.ts";

/** A server and the key to use with it. */
export interface Credentials {
  url: string;
  apiKey: string;
}

/** The config file's path. */
export function configPath(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  if (env.VOX_CONFIG) return env.VOX_CONFIG;
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : null);
  if (!base) throw new CliError("cannot place the config file: set HOME, XDG_CONFIG_HOME or VOX_CONFIG");
  return join(base, "vox", "config.json");
}

/** The stored credentials, if any. */
export async function readConfig(path: string): Promise<Partial<Credentials>> {
  try {
    const data = JSON.parse(await Deno.readTextFile(path));
    return { url: typeof data.url === "string" ? data.url : undefined, apiKey: data.apiKey };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw new CliError(`${path}: unreadable config file (${(err as Error).message})`);
  }
}

/** Writes credentials readable by the user alone (0600, also when the file existed before). */
export async function writeConfig(path: string, creds: Credentials): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(path, JSON.stringify(creds, null, 2) + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600);
}

/** Normalizes a server URL (no trailing slash); a malformed one is a CliError. */
export function serverUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError(`server URL "${raw}" is not a URL (e.g. https://vox.example.com)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new CliError(`server URL "${raw}" must be http or https`);
  }
  return u.origin + u.pathname.replace(/\/+$/, "");
}

/** Credentials from the environment first, the config file second; a CliError when there are none. */
export async function credentials(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<Credentials> {
  const file = env.VOX_URL && env.VOX_API_KEY ? {} : await readConfig(configPath(env));
  const url = env.VOX_URL || file.url;
  if (!url) {
    throw new CliError("not logged in: run `vox login --url <server>` or set VOX_URL and VOX_API_KEY");
  }
  // The stored key goes only to the server it was stored for, never to another VOX_URL.
  const stored = file.url && file.apiKey && serverUrl(file.url) === serverUrl(url) ? file.apiKey : undefined;
  const apiKey = env.VOX_API_KEY || stored;
  if (!apiKey) {
    throw new CliError(
      file.apiKey
        ? `no API key for ${serverUrl(url)}: the stored one is for ${file.url}; set VOX_API_KEY or vox login`
        : "not logged in: run `vox login --url <server>` or set VOX_URL and VOX_API_KEY",
    );
  }
  return { url: serverUrl(url), apiKey };
}
