// In-process fan-out of live events to server-sent-event streams. Every process LISTENs to
// Postgres (lib/orchestrator.ts) and publishes here, so a stream on any process sees events
// caused on any other.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { HttpError } from "./errors.ts";

export type Listener = (event: string, data: unknown) => void;

/** Bounds on live streams: documented in docs/security.md. */
export interface StreamLimits {
  /** Open streams of one client (an address for anonymous streams, a user when signed in). */
  perClient: number;
  /** Open streams of this process. */
  perProcess: number;
  /** Events waiting for one stream; a reader this far behind is dropped. */
  queue: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { perClient: 8, perProcess: 1000, queue: 256 };

/** Topics: `job:<id>` (status and progress of one job), `metrics` (new mainline results). */
export class EventHub {
  #topics = new Map<string, Set<Listener>>();
  #streams = new Set<() => void>();
  #perClient = new Map<string, number>();
  #open = 0;
  #closed = false;
  /** Streams dropped because their reader fell more than `limits.queue` events behind. */
  dropped = 0;

  constructor(readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS) {}

  /** Open streams of this process (for tests and the bench). */
  get openStreams(): number {
    return this.#open;
  }

  /**
   * Takes a place for one stream of `client`; returns its release, or a description of the
   * limit that is full.
   */
  admit(client: string): { release: () => void } | { full: "client" | "process" } {
    const mine = this.#perClient.get(client) ?? 0;
    if (this.#open >= this.limits.perProcess) return { full: "process" };
    if (mine >= this.limits.perClient) return { full: "client" };
    this.#open++;
    this.#perClient.set(client, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        const n = (this.#perClient.get(client) ?? 1) - 1;
        if (n <= 0) this.#perClient.delete(client);
        else this.#perClient.set(client, n);
      },
    };
  }

  /** True once close() ran: no stream stays open, new ones end at once. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Ends every open stream (graceful shutdown waits for in-flight responses, and a stream
   * to a live browser would otherwise never finish).
   */
  close(): void {
    this.#closed = true;
    for (const end of [...this.#streams]) end();
  }

  /** Registers a way to end an open stream; returns its removal. */
  track(end: () => void): () => void {
    if (this.#closed) {
      end();
      return () => {};
    }
    this.#streams.add(end);
    return () => this.#streams.delete(end);
  }

  /** Calls `fn` for every event on `topic` until the returned function is called. */
  subscribe(topic: string, fn: Listener): () => void {
    let set = this.#topics.get(topic);
    if (!set) this.#topics.set(topic, set = new Set());
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#topics.delete(topic);
    };
  }

  /** Delivers an event to the current subscribers of `topic`; a throwing subscriber is dropped. */
  publish(topic: string, event: string, data: unknown): void {
    const set = this.#topics.get(topic);
    if (!set) return;
    for (const fn of set) {
      try {
        fn(event, data);
      } catch {
        set.delete(fn);
      }
    }
  }

  /** Subscribers of a topic (for tests and the bench). */
  count(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0;
  }
}

/** What a stream sends first: fixed events, or a snapshot read once the stream listens. */
export type InitialEvents =
  | { event: string; data: unknown }[]
  | (() => Promise<{ event: string; data: unknown }[]>);

/**
 * Answers with an SSE stream of `topic`: first the `initial` events, then everything
 * published. A function `initial` is read after the stream subscribes, so nothing published
 * between the snapshot and the subscription is lost (events caught meanwhile follow it), with a comment every 15 s so proxies keep the connection open. Ends when the
 * client goes away or `until` returns true for an event (e.g. a job reached a final state).
 * At most `hub.limits.perClient` streams per `client` and `perProcess` in all (429 with
 * Retry-After beyond); a reader that falls `queue` events behind is dropped, so a stalled
 * client costs a bounded queue and never the server.
 */
export function sseResponse(
  c: Context,
  hub: EventHub,
  topic: string,
  client: string,
  initial: InitialEvents,
  until?: (event: string, data: unknown) => boolean,
): Response {
  const place = hub.admit(client);
  if ("full" in place) {
    throw new HttpError(
      429,
      "too_many_streams",
      place.full === "client"
        ? `At most ${hub.limits.perClient} live streams per client are open at once`
        : `This server has its maximum of ${hub.limits.perProcess} live streams open`,
      {
        headers: { "Retry-After": "30" },
        details: { limit: place.full === "client" ? "perClient" : "perProcess" },
      },
    );
  }
  c.header("Cache-Control", "no-cache, no-transform");
  c.header("X-Accel-Buffering", "no");
  return streamSSE(c, async (stream) => {
    const queue: { event: string; data: unknown }[] = Array.isArray(initial) ? [...initial] : [];
    let wake: (() => void) | null = null;
    let done = false;
    const stop = () => {
      done = true;
      wake?.();
    };
    const unsubscribe = hub.subscribe(topic, (event, data) => {
      if (done) return;
      if (queue.length >= hub.limits.queue) {
        // The reader is this far behind (a pending write waits on its socket): let it go.
        // Aborting the stream also rejects that write, so the loop below ends at once.
        hub.dropped++;
        queue.length = 0;
        unsubscribe();
        stop();
        stream.abort();
        return;
      }
      queue.push({ event, data });
      wake?.();
    });
    stream.onAbort(stop);
    const untrack = hub.track(stop);
    const keepAlive = setInterval(() => {
      stream.write(": keep-alive\n\n").catch(stop);
    }, 15_000);
    try {
      if (!Array.isArray(initial)) queue.unshift(...await initial());
      while (!done) {
        while (queue.length > 0 && !done) {
          const next = queue.shift()!;
          await stream.writeSSE({ event: next.event, data: JSON.stringify(next.data) });
          if (until?.(next.event, next.data)) done = true;
        }
        if (done) break;
        await new Promise<void>((resolve) => wake = resolve);
        wake = null;
      }
    } finally {
      clearInterval(keepAlive);
      untrack();
      unsubscribe();
      place.release();
    }
  });
}
