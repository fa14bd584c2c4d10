/** Pids of postgres processes serving `dataDir` (read from /proc). */
export function postgresPids(dataDir: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (cmd[0].endsWith("postgres") && cmd.includes(dataDir)) pids.push(Number(e.name));
    } catch { /* the process ended meanwhile */ }
  }
  return pids;
}
