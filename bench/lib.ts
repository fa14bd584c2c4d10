// Helpers for the benchmark programs.

/** The p-th percentile (0–100) of `values` by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Rounds for printing and JSON. */
export function r2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Resident set size of a process in KiB (Linux /proc). */
export async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Integer from the environment, or the default. */
export function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  return v ? Number(v) : fallback;
}

/** Waits until GET url answers 2xx. */
export async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not ready`);
    await sleep(100);
  }
}

/** Prints one figure line. */
export function report(label: string, value: string): void {
  console.log(`  ${label.padEnd(44)} ${value}`);
}

/** CPU seconds (user + system) a process has used so far (Linux /proc, 100 ticks/s). */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by every process whose command name is `comm` (e.g. the Postgres backends). */
export async function cpuSecondsOf(comm: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if ((await Deno.readTextFile(`/proc/${e.name}/comm`)).trim() !== comm) continue;
    } catch {
      continue;
    }
    total += await cpuSeconds(Number(e.name));
  }
  return total;
}
