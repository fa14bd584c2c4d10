/**
 * Group commit for small per-request writes. Items that arrive while a write is in flight wait
 * for the next one, which carries all of them, so under load N concurrent requests cost one
 * statement instead of N, and alone a request costs exactly what it did before (its batch holds
 * only itself and starts at once). Every caller still awaits the statement that carries its item,
 * so nothing is acknowledged before it is written and nothing is left running behind a response.
 */
export function batcher<T, R>(run: (items: T[]) => Promise<R[]>): (item: T) => Promise<R> {
  type Waiting = { item: T; resolve: (r: R) => void; reject: (e: unknown) => void };
  let queue: Waiting[] = [];
  let running = false;

  const drain = async () => {
    running = true;
    // Items queued in the same tick as the first join its batch.
    await Promise.resolve();
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        const out = await run(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(out[i]));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    running = false;
  };

  return (item: T) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!running) void drain();
    });
}

/** One batcher per key (e.g. per database handle), made on first use. */
export function batcherPer<K extends object, T, R>(
  make: (key: K) => (items: T[]) => Promise<R[]>,
): (key: K, item: T) => Promise<R> {
  const batchers = new WeakMap<K, (item: T) => Promise<R>>();
  return (key, item) => {
    let b = batchers.get(key);
    if (!b) batchers.set(key, b = batcher(make(key)));
    return b(item);
  };
}
