// CPU time and memory of this process and everything it started (Chromium's browser, zygote,
// renderers, GPU and utility processes), read from /proc on Linux. The capacity bench samples
// it while calls run to report CPU seconds per call-minute, peak RSS per call and which kind of
// process costs most.

const TICK = 100; // USER_HZ: /proc reports CPU times in 1/100 s on every Linux ABI Deno runs on
const PAGE = 4096;

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, s: this process's own threads. */
  own: number;
  /** cutime + cstime, s: children it has reaped. */
  children: number;
  rssBytes: number;
}

/** Proportional set size (shared pages split between their users), bytes; null when unreadable. */
function readPss(pid: number): number | null {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`).match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function readStat(pid: number | "self"): Stat | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name is in parentheses and may itself hold spaces or parentheses.
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return {
      pid: pid === "self" ? Deno.pid : pid,
      ppid: Number(f[1]),
      own: (Number(f[11]) + Number(f[12])) / TICK,
      children: (Number(f[13]) + Number(f[14])) / TICK,
      rssBytes: Number(f[21]) * PAGE,
    };
  } catch {
    return null; // gone between listing and reading
  }
}

/** What a process is, from its command line: `agent` (this process) or a Chromium process type. */
function processKind(pid: number): string {
  if (pid === Deno.pid) return "agent";
  try {
    // Chromium rewrites its process title, so its arguments may be joined by spaces.
    const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split(/[\0 ]/);
    const type = args.find((a) => a.startsWith("--type="))?.slice(7);
    if (/crashpad/.test(args[0] ?? "")) return "crashpad";
    if (!type) return /chrom/.test(args[0] ?? "") ? "browser" : "other";
    if (type === "utility") {
      const sub = args.find((a) => a.startsWith("--utility-sub-type="))?.slice(19) ?? "";
      // network.mojom.NetworkService → network, audio.mojom.AudioService → audio, …
      return `utility:${sub.split(".")[0] || "other"}`;
    }
    return type === "gpu-process" ? "gpu" : type;
  } catch {
    return "other";
  }
}

/** CPU seconds this thread has run, from the scheduler (ns resolution, unlike /proc ticks). */
function threadCpuS(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e9;
  } catch {
    return 0;
  }
}

/** Own CPU seconds of each thread of `pid` by thread name (digits dropped: pools count as one). */
function threadTimes(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
        const name = Number(t.name) === pid
          ? "main"
          : text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")).replace(/[\d/:]+$/, "");
        const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
        out.set(`${t.name} ${name}`, (Number(f[11]) + Number(f[12])) / TICK);
      } catch { /* thread ended */ }
    }
  } catch { /* process ended */ }
  return out;
}

/** Usage of the process tree over a window: CPU seconds (total and per process kind) and peak RSS. */
export interface TreeUsage {
  /** CPU seconds of the whole tree in the window, exact (processes that exited included). */
  cpuS: number;
  /** CPU seconds per process kind, from each process's last sample. */
  byKind: Record<string, number>;
  /** CPU of processes that exited between samples (mostly renderers of closed contexts), s. */
  unattributedS: number;
  /** Largest sum of RSS over the tree seen in one sample (shared pages counted once per process). */
  peakRssBytes: number;
  /** Largest sum of PSS (shared pages split between the processes sharing them) in one sample. */
  peakPssBytes: number;
  /** PSS per process kind in the sample with the largest total, bytes. */
  pssByKindAtPeak: Record<string, number>;
  /** CPU seconds per process kind and thread name (`renderer main`, `renderer Realtime`, …). */
  byThread: Record<string, number>;
  /** Samples taken and the CPU they cost this process (already taken out of `agent`), s. */
  samples: number;
  samplerS: number;
}

/**
 * Samples the tree under this process every `everyMs` until `stop()`. The total CPU is exact:
 * live processes' own time plus what their parents have reaped; per kind, a process that
 * exits counts up to its last sample and the rest is reported as `unattributedS`.
 */
export function sampleTree(everyMs = 500): { stop(): TreeUsage } {
  const first = new Map<number, { own: number; kind: string }>();
  const last = new Map<number, { own: number; kind: string }>();
  let total0 = 0;
  let totalNow = 0;
  let peak = 0;
  let peakPss = 0;
  let pssByKindAtPeak: Record<string, number> = {};
  // Per thread: "pid tid name" → own CPU seconds at the first and the last sample.
  const threadFirst = new Map<string, number>();
  const threadLast = new Map<string, { s: number; label: string }>();
  let samples = 0;
  let samplerS = 0;
  const sample = (initial: boolean) => {
    const c0 = threadCpuS();
    const all: Stat[] = [];
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const s = readStat(Number(e.name));
      if (s) all.push(s);
    }
    const byParent = new Map<number, Stat[]>();
    for (const s of all) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s]);
    const tree: Stat[] = [];
    const self = readStat("self");
    if (self) tree.push(self);
    for (let i = 0; i < tree.length; i++) tree.push(...(byParent.get(tree[i].pid) ?? []));
    let total = 0;
    let rss = 0;
    let pss = 0;
    const pssByKind: Record<string, number> = {};
    for (const s of tree) {
      total += s.own + s.children;
      rss += s.rssBytes;
      const kind = last.get(s.pid)?.kind ?? processKind(s.pid);
      const p = readPss(s.pid) ?? s.rssBytes;
      pss += p;
      pssByKind[kind] = (pssByKind[kind] ?? 0) + p;
      if (initial) first.set(s.pid, { own: s.own, kind });
      last.set(s.pid, { own: s.own, kind });
      if (s.pid === Deno.pid) continue; // the agent's threads are one figure: this sampler runs in them
      for (const [key, t] of threadTimes(s.pid)) {
        const k = `${s.pid} ${key}`;
        if (initial) threadFirst.set(k, t);
        threadLast.set(k, { s: t, label: `${kind} ${key.slice(key.indexOf(" ") + 1)}` });
      }
    }
    if (initial) total0 = total;
    totalNow = total;
    peak = Math.max(peak, rss);
    if (pss > peakPss) {
      peakPss = pss;
      pssByKindAtPeak = pssByKind;
    }
    samples++;
    // Reading /proc is synchronous work of this thread: its cost is known and taken out.
    samplerS += threadCpuS() - c0;
  };
  sample(true);
  const timer = setInterval(() => sample(false), everyMs);
  return {
    stop(): TreeUsage {
      clearInterval(timer);
      sample(false);
      const byKind: Record<string, number> = {};
      let attributed = 0;
      for (const [pid, l] of last) {
        const d = l.own - (first.get(pid)?.own ?? 0);
        byKind[l.kind] = (byKind[l.kind] ?? 0) + d;
        attributed += d;
      }
      byKind.agent = Math.max(0, (byKind.agent ?? 0) - samplerS);
      const byThread: Record<string, number> = {};
      for (const [k, l] of threadLast) {
        byThread[l.label] = (byThread[l.label] ?? 0) + l.s - (threadFirst.get(k) ?? 0);
      }
      const cpuS = Math.max(0, totalNow - total0 - samplerS);
      return {
        cpuS,
        byKind,
        unattributedS: Math.max(0, cpuS - (attributed - samplerS)),
        peakRssBytes: peak,
        peakPssBytes: peakPss,
        pssByKindAtPeak,
        byThread,
        samples,
        samplerS,
      };
    },
  };
}
