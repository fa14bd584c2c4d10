// In-process fan-out of live events to server-sent-event streams. Every process LISTENs to
// Postgres (lib/orchestrator.ts) and publishes here, so a stream on any process sees events
// caused on any other.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

export type Listener = (event: string, data: unknown) => void;

/** Topics: `job:<id>` (status and progress of one job), `metrics` (new mainline results). */
export class EventHub {
  #topics = new Map<string, Set<Listener>>();
  #streams = new Set<() => void>();
  #closed = false;

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

/**
 * Answers with an SSE stream of `topic`: first the `initial` events, then everything
 * published, with a comment every 15 s so proxies keep the connection open. Ends when the
 * client goes away or `until` returns true for an event (e.g. a job reached a final state).
 */
export function sseResponse(
  c: Context,
  hub: EventHub,
  topic: string,
  initial: { event: string; data: unknown }[],
  until?: (event: string, data: unknown) => boolean,
): Response {
  c.header("Cache-Control", "no-cache, no-transform");
  c.header("X-Accel-Buffering", "no");
  return streamSSE(c, async (stream) => {
    const queue: { event: string; data: unknown }[] = [...initial];
    let wake: (() => void) | null = null;
    let done = false;
    const unsubscribe = hub.subscribe(topic, (event, data) => {
      queue.push({ event, data });
      wake?.();
    });
    const stop = () => {
      done = true;
      wake?.();
    };
    stream.onAbort(stop);
    const untrack = hub.track(stop);
    const keepAlive = setInterval(() => {
      stream.write(": keep-alive\n\n").catch(() => {
        done = true;
        wake?.();
      });
    }, 15_000);
    try {
      while (!done) {
        while (queue.length > 0) {
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
    }
  });
}
