/**
 * The REST client of `vox`: every call authenticates with the API key, and every failure
 * becomes a CliError whose message names the server's answer, never the key.
 */
import { CliError } from "./errors.ts";
import type { Credentials } from "./settings.ts";

/** A Vox server reached with an API key. */
export class Api {
  constructor(readonly creds: Credentials) {}

  get url(): string {
    return this.creds.url;
  }

  /** A response for `path`; transport errors and non-2xx answers are CliErrors. */
  async fetch(
    path: string,
    init: RequestInit & { body?: string } = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        ...init,
        signal,
        headers: {
          authorization: `Bearer ${this.creds.apiKey}`,
          ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
          ...init.headers,
        },
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const why = (err as Error).message?.split("\n")[0] ?? String(err);
      throw new CliError(`cannot reach the Vox server at ${this.url}: ${why}`);
    }
    if (res.ok) return res;
    let detail = "";
    try {
      const body = await res.json();
      detail = body?.error?.message ?? "";
    } catch { /* not JSON */ }
    if (res.status === 401) {
      throw new CliError(
        `the server at ${this.url} refused the API key (401${detail ? `: ${detail}` : ""}); ` +
          "run `vox login` again or check VOX_API_KEY",
      );
    }
    throw new CliError(`${init.method ?? "GET"} ${path}: ${res.status} ${detail || res.statusText}`);
  }

  /** JSON of a GET, or of a request with a JSON body. */
  async json<T = Record<string, unknown>>(path: string, method = "GET", body?: unknown): Promise<T> {
    const res = await this.fetch(path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return await res.json() as T;
  }

  /** Text of a GET. */
  async text(path: string): Promise<string> {
    return await (await this.fetch(path)).text();
  }

  /**
   * Server-sent events of `path` until the server ends the stream or `signal` aborts; yields
   * `{ event, data }` with data parsed as JSON.
   */
  async *events(path: string, signal?: AbortSignal): AsyncGenerator<{ event: string; data: unknown }> {
    const res = await this.fetch(path, { headers: { accept: "text/event-stream" } }, signal);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
          let event = "message";
          const data: string[] = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length === 0) continue;
          try {
            yield { event, data: JSON.parse(data.join("\n")) };
          } catch { /* not JSON: not ours */ }
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
}
