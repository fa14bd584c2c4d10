// Waiting in tests: poll a condition until it holds, always with a bound, so a missing event
// fails the test with a message that names what never happened instead of hanging the run.

/** How long to keep polling and how often. */
export interface WaitOptions {
  /** Give up after this long; default 15 s. */
  timeoutMs?: number;
  /** Pause between two polls; default 25 ms. */
  intervalMs?: number;
}

/**
 * Polls `fn` until it returns a truthy value and returns that value; after the timeout (a
 * number is the timeout in ms) throws "timed out waiting for <what>". An error thrown by `fn`
 * ends the wait at once; catch inside `fn` what only means "not yet".
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  what: string | (() => string),
  options: number | WaitOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 15_000, intervalMs = 25 } = typeof options === "number"
    ? { timeoutMs: options }
    : options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms`: for tests that check that something does NOT happen for a while. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Waits until `GET <baseUrl>/readyz` answers 200 (a server process that is up and migrated).
 * With `child`, fails as soon as that process exits instead of waiting out the timeout.
 */
export async function serverReady(
  baseUrl: string,
  opts: { child?: Deno.ChildProcess; timeoutMs?: number } = {},
): Promise<void> {
  let exited: Deno.CommandStatus | null = null;
  opts.child?.status.then((s) => exited = s);
  await eventually(
    async () => {
      if (exited) {
        throw new Error(`the server for ${baseUrl} exited with code ${exited.code} before it was ready`);
      }
      try {
        const res = await fetch(`${baseUrl}/readyz`);
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false; // not listening yet
      }
    },
    `${baseUrl}/readyz to answer 200`,
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100 },
  );
}
