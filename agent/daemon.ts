/**
 * Daemon mode of vox_eval_agentd: connect to a Vox server, take the jobs it pushes for this
 * agent's region (up to `concurrency` at once), run each with `runJob()` in a shared
 * headless Chromium, stream progress, upload the stereo recording and deliver the result.
 *
 * Nothing measured is lost to a dropped connection: a job keeps running while the socket is
 * down, its outcome waits in memory, and after the reconnect `hello.activeJobs` names it so
 * the server keeps it assigned (`registered.resumed`) and the result goes out then. The
 * server stores a job's result once (a resend is acknowledged as a duplicate), so a result
 * whose acknowledgement was lost is simply sent again. A job the server took back meanwhile
 * (`registered.dropped`, `job.cancel`, `job_not_held`) is dropped here: the server retries
 * it, so it is measured exactly once.
 *
 * On SIGTERM the daemon declines new offers, lets running jobs finish and deliver within the
 * grace period, hands back what is still running (`job.rejected`, which requeues the job
 * without using up an attempt), and exits 0.
 *
 * The file stays large because `EvalDaemon` is one state machine: offers, runs, uploads,
 * deliveries, hand-backs and reconnects all read and change the same map of held jobs.
 * Its settings (flags and environment) are in `daemon_settings.ts`, the socket and its
 * backoff in `connection.ts`, the runs themselves in `job.ts`.
 */
import { join, resolve } from "node:path";
import { launchChromium, type LaunchedBrowser } from "./browser.ts";
import { ClipError, provideClips } from "./clips.ts";
import { prepareSpeech, speechArtifactName, SpeechError, speechRecords, type SpokenAudio } from "./voices.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { AgentConnection } from "./connection.ts";
import type { DaemonSettings } from "./daemon_settings.ts";
import { jobDeadlineMs } from "./format.ts";
import { artifactUploadPath, MAX_FRAME_BYTES, type RunReport, type ServerMessage } from "./protocol.ts";
import { runJob } from "./job.ts";
import {
  type CapacityChange,
  CapacityGovernor,
  HostMonitor,
  hostProblem,
  type HostSample,
} from "./host_health.ts";
import type { Report } from "./report.ts";

export const DAEMON_VERSION = "vox_eval_agentd/1";

type Offer = Extract<ServerMessage, { type: "job.offer" }>;

type Outcome =
  | { kind: "result"; report: RunReport; recordings: string[]; speech?: { name: string; path: string }[] }
  | { kind: "failed"; reason: string; retryable: boolean };

/** A job the server assigned to this agent, from offer to acknowledged outcome. */
interface HeldJob {
  offer: Offer;
  dir: string | null;
  outcome: Outcome | null;
  /** Artifacts the server has (201 or 200). */
  uploaded: Set<string>;
  delivering: boolean;
  /** When the outcome frame left; cleared on reconnect so it is sent again. */
  sentAt: number | null;
  step: number;
  totalSteps: number;
  handedBack?: () => void;
  /** Stops the run (its deadline, or the server taking the job back). */
  abort: AbortController;
}

type LogFn = (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;

/** JSON lines on stdout/stderr, one per event. */
export const jsonLog: LogFn = (level, message, fields) => {
  const line = JSON.stringify({
    time: new Date().toISOString(),
    level,
    component: "agent",
    ...fields,
    message,
  });
  if (level === "info") console.log(line);
  else console.error(line);
};

/** How often undelivered outcomes are retried while connected. */
const RETRY_MS = 2000;
/**
 * An outcome unacknowledged this long means the socket is dead without having closed (a
 * silent network drop: writes vanish into the kernel's buffer, nothing comes back). The
 * socket is then dropped and reopened, and the outcome resent after `registered`.
 */
export const ACK_TIMEOUT_MS = 15_000;
/** How long a hand-back waits for the server's confirmation. */
const HANDBACK_WAIT_MS = 5000;
/** How often the host's health is read (agent/host_health.ts). */
const HOST_READ_MS = 2000;

/**
 * vox_eval_agentd in daemon mode: `start()`, then `stop()` on SIGTERM, or when
 * `conn.untilFinal()` says the server refused the agent for good.
 */
export class EvalDaemon {
  readonly conn: AgentConnection;
  readonly jobs = new Map<number, HeldJob>();
  #browser: Promise<LaunchedBrowser> | null = null;
  #draining = false;
  #retry: ReturnType<typeof setInterval> | undefined;
  #running = new Set<Promise<void>>();
  #hostTimer: ReturnType<typeof setInterval> | undefined;
  readonly host = new HostMonitor();
  /** The concurrency accepted right now: lowered while the host is overloaded (issue 19). */
  readonly governor: CapacityGovernor;
  /** Jobs whose outcome the server acknowledged, for tests and logs. */
  readonly delivered: { jobId: number; status: string; duplicate: boolean }[] = [];
  /** See ACK_TIMEOUT_MS; tests shorten it. */
  ackTimeoutMs = ACK_TIMEOUT_MS;

  constructor(readonly settings: DaemonSettings, readonly log: LogFn = jsonLog) {
    this.governor = new CapacityGovernor(settings.concurrency);
    this.conn = new AgentConnection({
      serverUrl: settings.serverUrl,
      token: settings.token,
      name: settings.name,
      region: settings.region,
      capacity: () => this.governor.capacity,
      version: `${DAEMON_VERSION} deno/${Deno.version.deno}`,
      activeJobs: () => [...this.jobs.keys()],
      onMessage: (m) => this.#onMessage(m),
      log,
    });
  }

  /** Connects; jobs flow until stop(). */
  start(): void {
    this.log("info", "vox_eval_agentd starting", {
      server: this.settings.serverUrl,
      name: this.settings.name,
      region: this.settings.region,
      concurrency: this.settings.concurrency,
      egress: this.settings.egress,
      egressAllow: this.settings.egressAllow.map((a) => a.text),
    });
    this.conn.start();
    this.#retry = setInterval(() => this.#deliverAll(), RETRY_MS);
    this.host.start();
    this.#hostTimer = setInterval(async () => this.observeHost(await this.host.read()), HOST_READ_MS);
  }

  /** The number of jobs this agent accepts at once right now. */
  get capacity(): number {
    return this.governor.capacity;
  }

  /**
   * Takes a reading of the host: a degraded one lowers the accepted concurrency, a healthy
   * one may give a slot back (agent/host_health.ts).
   */
  observeHost(sample: HostSample, now = Date.now()): void {
    const problem = hostProblem(sample);
    this.#capacityChanged(
      problem ? this.governor.degraded(problem, now) : this.governor.tick(now),
      sample,
    );
  }

  /** A sign that calls were measured on an overloaded host (unreliable turns): fewer at once. */
  measuredOverloaded(reason: string, now = Date.now()): void {
    this.#capacityChanged(this.governor.degraded(reason, now));
  }

  // Logged, and told to the server with the next frame that carries it: a heartbeat now.
  #capacityChanged(change: CapacityChange | null, sample?: HostSample): void {
    if (!change) return;
    const lowered = change.to < change.from;
    this.log(
      lowered ? "warn" : "info",
      lowered
        ? "host overloaded: accepting fewer jobs at once"
        : "host healthy again: accepting one more job",
      {
        from: change.from,
        to: change.to,
        max: this.settings.concurrency,
        reason: change.reason,
        host: sample,
      },
    );
    this.conn.send({ type: "heartbeat", activeJobs: [...this.jobs.keys()], capacity: change.to });
  }

  /** Jobs being run (not yet finished measuring). */
  get runningJobs(): number[] {
    return [...this.jobs.values()].filter((j) => !j.outcome).map((j) => j.offer.jobId);
  }

  /**
   * Graceful stop: declines new offers, waits up to the grace period for running jobs to
   * finish and their outcomes to be acknowledged, hands back whatever is left, closes.
   */
  async stop(reason = "shutting down"): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const deadline = Date.now() + this.settings.graceSeconds * 1000;
    this.log("info", "draining: no new jobs", { reason, jobs: [...this.jobs.keys()] });
    while (this.jobs.size > 0 && Date.now() < deadline && !this.conn.finalClose) {
      await sleep(100);
    }
    const left = [...this.jobs.values()];
    if (left.length > 0) {
      await Promise.all(left.map((job) => this.#handBack(job)));
    }
    clearInterval(this.#retry);
    clearInterval(this.#hostTimer);
    this.host.stop();
    this.conn.stop();
    const browser = this.#browser;
    this.#browser = null;
    if (browser) await (await browser.catch(() => null))?.close();
    // Runs cut short by the closed browser are abandoned (their outcomes are not sent); a
    // moment lets most of them unwind before their folders go.
    await Promise.race([Promise.allSettled([...this.#running]), sleep(1000)]);
    for (const job of left) await this.#cleanup(job);
    this.log("info", "stopped");
  }

  // A job still running at the end of the grace period goes back to the queue. The server
  // does not acknowledge job.rejected, so a job.progress for the same job follows it: the
  // server handles an agent's frames in order and answers that progress with job_not_held
  // once the job is no longer this agent's, which confirms the hand-back before the socket
  // closes. Without a connection the server's heartbeat timeout requeues the job instead.
  async #handBack(job: HeldJob): Promise<void> {
    const jobId = job.offer.jobId;
    const why = !job.outcome
      ? "it was still running when the grace period ended"
      : job.sentAt === null
      ? "its outcome could not be delivered before the grace period ended"
      : "its outcome was sent but not acknowledged before the grace period ended";
    const confirmed = new Promise<boolean>((resolve) => {
      job.handedBack = () => resolve(true);
      setTimeout(() => resolve(false), HANDBACK_WAIT_MS);
    });
    const sent = this.conn.send({
      type: "job.rejected",
      jobId,
      reason: `agent ${this.settings.name} is shutting down; ${why}`,
    }) && this.conn.send({ type: "job.progress", jobId, step: 0, totalSteps: 0, message: "handed back" });
    const ok = sent && await confirmed;
    this.jobs.delete(jobId);
    this.log(ok ? "info" : "warn", ok ? "job handed back" : "job not handed back; the server requeues it", {
      jobId,
      reason: why,
    });
  }

  #onMessage(m: ServerMessage): void {
    switch (m.type) {
      case "registered": {
        for (const id of m.dropped) {
          const job = this.jobs.get(id);
          if (job) this.#forget(job, "the server no longer assigns it to this agent");
        }
        // Outcomes sent on the previous socket may not have arrived: send them again.
        for (const job of this.jobs.values()) job.sentAt = null;
        this.#deliverAll();
        return;
      }
      case "job.offer":
        return this.#onOffer(m);
      case "job.cancel": {
        const job = this.jobs.get(m.jobId);
        if (job) this.#forget(job, `cancelled by the server: ${m.reason}`);
        return;
      }
      case "job.ack": {
        const job = this.jobs.get(m.jobId);
        this.delivered.push({ jobId: m.jobId, status: m.status, duplicate: m.duplicate });
        this.log("info", "job outcome acknowledged", {
          jobId: m.jobId,
          status: m.status,
          duplicate: m.duplicate,
        });
        if (job) {
          this.jobs.delete(m.jobId);
          this.#cleanup(job);
        }
        return;
      }
      case "error": {
        const job = m.jobId === undefined ? undefined : this.jobs.get(m.jobId);
        // The answer that confirms a hand-back (see #handBack) is expected, not a problem.
        if (job?.handedBack && m.code === "job_not_held") return job.handedBack();
        this.log(m.fatal ? "error" : "warn", "server error", {
          code: m.code,
          detail: m.message,
          jobId: m.jobId,
        });
        if (!job || m.code !== "job_not_held") return;
        this.#forget(job, m.message);
        return;
      }
    }
  }

  #onOffer(offer: Offer): void {
    // Offered a job this agent still holds: the server took it back meanwhile (heartbeat
    // timeout) and this is a new attempt. The old copy's outcome would be refused anyway.
    const stale = this.jobs.get(offer.jobId);
    if (stale) this.#forget(stale, `offered again as attempt ${offer.attempt}`);
    const busy = this.jobs.size;
    const capacity = this.governor.capacity;
    if (this.#draining || busy >= capacity) {
      const lowered = capacity < this.settings.concurrency
        ? `, lowered from ${this.settings.concurrency} while the host is overloaded`
        : "";
      const reason = this.#draining
        ? `agent ${this.settings.name} is shutting down`
        : `agent ${this.settings.name} is at capacity (${busy}/${capacity}${lowered})`;
      this.conn.send({ type: "job.rejected", jobId: offer.jobId, reason });
      return;
    }
    const job: HeldJob = {
      offer,
      dir: null,
      outcome: null,
      uploaded: new Set(),
      delivering: false,
      sentAt: null,
      step: 0,
      totalSteps: 0,
      abort: new AbortController(),
    };
    this.jobs.set(offer.jobId, job);
    this.conn.send({ type: "job.accepted", jobId: offer.jobId });
    this.log("info", "job accepted", {
      jobId: offer.jobId,
      attempt: offer.attempt,
      workflow: offer.workflow.name,
      evalSet: offer.evalSet.name,
      repeat: offer.repeat,
    });
    const run = this.#run(job).finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  /** Drops a job the server took back; a run still going is stopped and finishes unseen. */
  #forget(job: HeldJob, why: string): void {
    if (this.jobs.get(job.offer.jobId) !== job) return;
    this.jobs.delete(job.offer.jobId);
    job.abort.abort();
    this.log("warn", "job dropped", { jobId: job.offer.jobId, reason: why });
    if (job.outcome) this.#cleanup(job);
  }

  async #run(job: HeldJob): Promise<void> {
    const { offer } = job;
    let outcome: Outcome;
    const abort = job.abort;
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      if (this.settings.workDir) await Deno.mkdir(this.settings.workDir, { recursive: true });
      job.dir = await Deno.makeTempDir({ dir: this.settings.workDir, prefix: `vox-job-${offer.jobId}-` });
      // JSON is YAML, so the configs go through the same loader (and checks) as run mode.
      const appPath = join(job.dir, "application.yaml");
      const suitePath = join(job.dir, "scenario.yaml");
      await Deno.writeTextFile(appPath, JSON.stringify(offer.workflow.config));
      await Deno.writeTextFile(suitePath, JSON.stringify(offer.evalSet.config));
      // Audio comes only from the agent's own assets: the job folder holds the configs
      // themselves and the job's outputs, nothing a config may name.
      if (this.settings.assetsDir) {
        await Deno.symlink(resolve(this.settings.assetsDir), join(job.dir, "assets"));
      } else await Deno.mkdir(join(job.dir, "assets"));
      // The clips the server holds for this job (uploads, the library) go to clips/, by hash.
      const clips = await provideClips(
        { serverUrl: this.settings.serverUrl, token: this.settings.token, cacheDir: this.#audioCacheDir() },
        offer.jobId,
        offer.audio ?? [],
        join(job.dir, "clips"),
        abort.signal,
      );
      if (clips.fetched.length || clips.cached.length) {
        this.log("info", "audio clips ready", {
          jobId: offer.jobId,
          fetched: clips.fetched,
          cached: clips.cached,
        });
      }
      const app = await loadConfig(appPath, "application", { assetsOnly: true });
      const suite = await loadConfig(suitePath, "scenario", { assetsOnly: true });
      app.name = `workflow ${offer.workflow.id}`;
      suite.name = `eval set ${offer.evalSet.id}`;
      // Voices: keys from the workflow's sealed secrets (the offer), synthesized audio cached
      // by (engine, voice, text); a voice that cannot speak fails the job before a browser starts.
      const speech = {
        secrets: offer.workflow.secrets ?? {},
        cacheDir: join(this.#audioCacheDir(), "speech"),
        spoken: new Map<string, SpokenAudio>(),
      };
      app.speech = speech;
      suite.speech = speech;
      await prepareSpeech([app, suite]);
      job.totalSteps = offer.repeat * (app.steps.length + suite.steps.length);
      const capSeconds = Math.min(this.settings.maxRuntimeSeconds, offer.maxRuntimeSeconds ?? Infinity);
      const deadlineMs = jobDeadlineMs(
        app,
        suite,
        offer.repeat,
        capSeconds * 1000,
        this.settings.stepTimeoutMs,
      );
      // Past its deadline the job fails at once and its slot is free for the next offer; the
      // abort closes its pages, so the run itself unwinds shortly after.
      const deadline = new Promise<Outcome>((resolve) => {
        deadlineTimer = setTimeout(() => {
          abort.abort();
          resolve({
            kind: "failed",
            reason: `the job ran past its deadline of ${Math.round(deadlineMs / 1000)} s and was stopped`,
            retryable: false,
          });
        }, deadlineMs);
      });
      // A Realtime application needs no browser.
      const browser = app.realtime ? null : await this.#launch();
      this.#progress(job, `starting: ${offer.workflow.name} × ${offer.evalSet.name}`);
      const measured = runJob(app, suite, {
        signal: abort.signal,
        closeOnAbort: true,
        repeat: offer.repeat,
        browser: browser?.browser,
        secrets: offer.workflow.secrets,
        headless: this.settings.headless,
        verbose: this.settings.verbose,
        outDir: join(job.dir, "out"),
        stepTimeoutMs: this.settings.stepTimeoutMs,
        egress: this.settings.egress === "strict" ? { allow: this.settings.egressAllow } : undefined,
        onProgress: (line) => {
          if (/ step \d+: /.test(line)) job.step++;
          this.#progress(job, line.trim());
        },
        onStep: ({ turn }) => {
          if (turn?.unreliable) this.measuredOverloaded(`job ${offer.jobId}: ${turn.note}`);
        },
      }).then(({ report, recordings }): Outcome =>
        report.ok
          ? withSpeech(
            { kind: "result", report: resultReport(report, recordings), recordings },
            speech.spoken,
          )
          : { kind: "failed", reason: failureReason(report), retryable: true }
      );
      measured.catch(() => {});
      outcome = await Promise.race([measured, deadline]);
    } catch (err) {
      outcome = err instanceof ConfigError
        ? { kind: "failed", reason: `invalid config: ${err.message}`, retryable: false }
        : err instanceof ClipError
        ? { kind: "failed", reason: err.message, retryable: err.retryable }
        : err instanceof SpeechError
        ? { kind: "failed", reason: `speech synthesis failed: ${err.message}`, retryable: false }
        : { kind: "failed", reason: `the run crashed: ${(err as Error).message ?? err}`, retryable: true };
    } finally {
      clearTimeout(deadlineTimer);
    }
    job.outcome = outcome;
    // Turns found unreliable only at the end of a call (their window was judged then) count too.
    const turns = outcome.kind === "result" ? outcome.report.turns : [];
    const unreliable = turns.filter((t) => (t as { unreliable?: boolean }).unreliable).length;
    if (unreliable > 0) {
      this.measuredOverloaded(
        `job ${offer.jobId}: ${unreliable} of ${turns.length} turns measured on an overloaded host`,
      );
    }
    if (this.jobs.get(offer.jobId) !== job) {
      await this.#cleanup(job);
      return;
    }
    this.log(outcome.kind === "result" ? "info" : "warn", "job finished", {
      jobId: offer.jobId,
      outcome: outcome.kind,
      ...(outcome.kind === "result"
        ? {
          responseLatencyMedian: outcome.report.metrics.response_latency.median,
          interruptLatencyMedian: outcome.report.metrics.interrupt_latency.median,
        }
        : { reason: outcome.reason }),
    });
    await this.#deliver(job);
  }

  #audioCacheDir(): string {
    return this.settings.audioCacheDir ??
      join(this.settings.workDir ?? Deno.env.get("TMPDIR") ?? "/tmp", "vox-audio-cache");
  }

  #progress(job: HeldJob, message: string): void {
    if (this.jobs.get(job.offer.jobId) !== job || job.handedBack) return;
    // Progress is advisory: while disconnected it is dropped, the outcome is not.
    this.conn.send({
      type: "job.progress",
      jobId: job.offer.jobId,
      step: Math.min(job.step, job.totalSteps),
      totalSteps: job.totalSteps,
      message: message.slice(0, 500),
    });
  }

  #deliverAll(): void {
    let stale = false;
    for (const job of this.jobs.values()) {
      if (!job.outcome || job.handedBack) continue;
      if (job.sentAt !== null && Date.now() - job.sentAt > this.ackTimeoutMs) stale = true;
      else this.#deliver(job).catch(() => {});
    }
    if (stale && this.conn.registered) {
      this.log("warn", "no acknowledgement from the server; reconnecting", { afterMs: this.ackTimeoutMs });
      this.conn.drop();
    }
  }

  // Uploads the recordings (idempotent by name), then sends the outcome frame. Anything that
  // fails is retried by the next pass; only job.ack or job_not_held ends the job here.
  async #deliver(job: HeldJob): Promise<void> {
    const outcome = job.outcome;
    if (!outcome || job.delivering || !this.conn.registered) return;
    if (job.sentAt !== null) return;
    const jobId = job.offer.jobId;
    job.delivering = true;
    try {
      if (outcome.kind === "result") {
        for (const [i, path] of outcome.recordings.entries()) {
          const name = artifactName(i);
          if (job.uploaded.has(name)) continue;
          const status = await this.#upload(jobId, name, path);
          if (status === "not_held") {
            return this.#forget(job, "the server no longer assigns it to this agent");
          }
          if (status === "retry") return;
          job.uploaded.add(name);
        }
        // Synthesized speech kept with the result (report.speech names it); the job's artifact
        // limit may leave no room, and then the report's hashes are what remains.
        for (const { name, path } of outcome.speech ?? []) {
          if (job.uploaded.has(name)) continue;
          const status = await this.#upload(jobId, name, path);
          if (status === "retry") return;
          job.uploaded.add(name);
        }
        const sent = this.conn.send({
          type: "job.result",
          jobId,
          report: outcome.report,
          artifacts: [
            ...outcome.recordings.map((_, i) => artifactName(i)),
            ...(outcome.speech ?? []).map((s) => s.name),
          ].map((name) => ({ name, kind: "recording" as const, contentType: "audio/wav" })),
        });
        if (sent) job.sentAt = Date.now();
      } else {
        const sent = this.conn.send({
          type: "job.failed",
          jobId,
          reason: outcome.reason.slice(0, 2000),
          retryable: outcome.retryable,
        });
        if (sent) job.sentAt = Date.now();
      }
    } finally {
      job.delivering = false;
    }
  }

  async #upload(jobId: number, name: string, path: string): Promise<"ok" | "not_held" | "retry"> {
    const base = this.settings.serverUrl.replace(/\/+$/, "").replace(/^ws/, "http");
    try {
      const body = await Deno.readFile(path);
      const res = await fetch(base + artifactUploadPath(jobId, name), {
        method: "PUT",
        headers: {
          authorization: `Bearer ${this.settings.token}`,
          "content-type": "audio/wav",
          "x-vox-artifact-kind": "recording",
        },
        body,
      });
      const text = await res.text();
      if (res.status === 200 || res.status === 201) return "ok";
      if (res.status === 409) return "not_held";
      this.log("warn", "recording upload refused; will retry", {
        jobId,
        status: res.status,
        body: text.slice(0, 200),
      });
      return "retry";
    } catch (err) {
      this.log("warn", "recording upload failed; will retry", { jobId, error: (err as Error).message });
      return "retry";
    }
  }

  async #launch(): Promise<LaunchedBrowser> {
    const current = this.#browser ? await this.#browser.catch(() => null) : null;
    if (current?.browser.connected) return current;
    if (current) await current.close();
    this.#browser = launchChromium({
      headless: this.settings.headless,
      keepOnSignals: true,
      strictEgress: this.settings.egress === "strict",
    });
    return await this.#browser;
  }

  async #cleanup(job: HeldJob): Promise<void> {
    if (job.dir) await Deno.remove(job.dir, { recursive: true }).catch(() => {});
    job.dir = null;
  }
}

/** At most this many synthesized utterances are uploaded with a result. */
const MAX_SPEECH_ARTIFACTS = 8;
/** A result lists at most this many artifacts (agent/protocol.ts jobResultSchema). */
const MAX_RESULT_ARTIFACTS = 20;

/**
 * A result with the speech its run synthesized: every utterance listed in `report.speech`
 * (engine, voice, text, key, SHA-256), and its audio uploaded as `speech-<sha256>.wav` (cloud
 * voices first: no agent can make them again without the key; local engines' audio too, since
 * another espeak-ng or flite build speaks differently), within the job's artifact count, so a
 * replay (agent/replay.ts) can speak exactly that audio.
 */
function withSpeech(outcome: Outcome & { kind: "result" }, spoken: Map<string, SpokenAudio>): Outcome {
  if (spoken.size === 0) return outcome;
  const room = Math.max(0, Math.min(MAX_SPEECH_ARTIFACTS, MAX_RESULT_ARTIFACTS - outcome.recordings.length));
  const upload = new Map<string, string>();
  const candidates = [...spoken.values()].filter((s) => s.path)
    .sort((a, b) => Number(b.engine === "openai") - Number(a.engine === "openai"));
  for (const s of candidates) if (upload.size < room && !upload.has(s.sha256)) upload.set(s.sha256, s.path!);
  const report = { ...outcome.report, speech: speechRecords(spoken, new Set(upload.keys())) } as RunReport;
  return {
    ...outcome,
    report,
    speech: [...upload].map(([sha256, path]) => ({ name: speechArtifactName(sha256), path })),
  };
}

function artifactName(i: number): string {
  return `recording-${i + 1}.wav`;
}

/**
 * The report as a job result: local paths become artifact names, and when the frame would
 * be too large the per-step detail goes first (the metrics and turns always stay).
 */
export function resultReport(report: Report, recordings: string[]): RunReport {
  const names = new Map(recordings.map((p, i) => [p, artifactName(i)]));
  const out = {
    ...report,
    runs: report.runs.map((r) => ({
      ...r,
      app: undefined,
      suite: undefined,
      recording: r.recording ? names.get(r.recording) ?? null : null,
      collected: undefined,
    })),
  } as unknown as RunReport & { runs: { steps?: unknown }[]; noise_checks?: unknown };
  const limit = MAX_FRAME_BYTES - 4096;
  const size = () => new TextEncoder().encode(JSON.stringify(out)).length;
  if (size() > limit) { for (const r of out.runs) delete r.steps; }
  if (size() > limit) delete out.noise_checks;
  if (size() > limit) {
    // An unreliable turn stays one: the boards count it as its own discard reason.
    out.turns = out.turns.map((t) => ({
      kind: t.kind,
      latency_ms: t.latency_ms,
      ok: t.ok,
      ...(t.unreliable === true ? { unreliable: true } : {}),
    }));
  }
  return out;
}

function failureReason(report: Report): string {
  const e = report.errors[0];
  if (!e) return "the run failed without an error message";
  const where = [e.step ? `step ${e.step}` : "", e.action ? `(${e.action})` : ""].filter(Boolean).join(" ");
  return `${where ? `${where}: ` : ""}${e.message}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs the daemon until SIGTERM/SIGINT (exit 0 after a graceful stop) or until the server
 * refuses the agent for good (exit 1). Returns the exit code.
 */
export async function runDaemon(settings: DaemonSettings, log: LogFn = jsonLog): Promise<number> {
  const daemon = new EvalDaemon(settings, log);
  daemon.start();
  const signalled = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => resolve(sig));
  });
  const ended = await Promise.race([
    signalled.then((sig) => ({ sig, final: null })),
    daemon.conn.untilFinal().then((final) => ({ sig: null, final })),
  ]);
  await daemon.stop(ended.sig ? `received ${ended.sig}` : "the server refused this agent");
  if (ended.final) {
    log("error", `the server refused this agent: ${ended.final.reason || `close code ${ended.final.code}`}`);
    return 1;
  }
  return 0;
}
