/**
 * The eval agent protocol: every message between `vox_eval_agentd` and the Vox server,
 * defined once as zod schemas that both sides import. Depends on zod only.
 *
 * ## Connection
 * One WebSocket per agent at {@link AGENT_WS_PATH}. The agent authenticates before anything
 * else, with `Authorization: Bearer vox_agent_…` on the upgrade request: without it, or with a
 * bad token, the server answers HTTP 401 and opens no socket; the 401's body says why
 * (`error.details.reason`, `error.details.closeCode`). The first frame must be `hello`,
 * within {@link HELLO_TIMEOUT_MS}. The server answers `registered`, or closes with a
 * {@link CloseCode} and a reason.
 *
 * All frames are UTF-8 JSON text of at most {@link MAX_FRAME_BYTES}; binary frames, larger
 * frames, invalid JSON, unknown `type`s and invalid fields close the connection (only that
 * one) with a reason.
 *
 * ## Flow
 * ```
 * agent                                   server
 *   hello {name, region, capacity, activeJobs} →
 *                                         ← registered {agentId, heartbeatIntervalMs, resumed, dropped}
 *   heartbeat {activeJobs, capacity?}  (every heartbeatIntervalMs; capacity: jobs it accepts now) →
 *                                         ← job.offer {jobId, attempt, workflow, evalSet, …}
 *   job.accepted {jobId}   or   job.rejected {jobId, reason} →
 *   job.progress {jobId, step, totalSteps, …} (any number) →
 *   PUT <artifactUploadPath(jobId, name)> (HTTP, the recording; before the result)
 *   job.result {jobId, report, artifacts} →
 *                                         ← job.ack {jobId, status, duplicate}
 *   job.failed {jobId, reason, retryable} →
 *                                         ← job.ack {jobId, status}
 *                                         ← job.cancel {jobId, reason}  (stop the job, send nothing more for it)
 *                                         ← error {code, message}  (then a close when fatal)
 * ```
 * A job offered to an agent is already assigned to it (claimed atomically); `job.rejected`
 * hands it back without using up an attempt. An agent whose heartbeats stop for longer than
 * the server's timeout loses its jobs: they are retried elsewhere (bounded attempts) and a
 * late `job.result` for them is refused with `error` code `job_not_held`.
 *
 * After a reconnect the agent lists the jobs it is still running in `hello.activeJobs`; the
 * server keeps those that are still assigned to it (`registered.resumed`) and tells it which
 * to abandon (`registered.dropped`). A result sent twice is stored once; the second
 * `job.ack` says `duplicate: true`, so an agent may resend a result it is unsure about.
 *
 * ## Recordings
 * Recordings and other artifacts go over HTTP, not the socket, so a large file never delays
 * heartbeats: `PUT {@link artifactUploadPath}(jobId, name)` with the same Bearer token,
 * name `recording-<n>.wav` (n = 1…99; the stereo recording: caller left, agent right),
 * optional `X-Vox-Artifact-Kind: recording`, body at most {@link MAX_ARTIFACT_BYTES}; a job
 * holds at most 20 artifacts and 256 MiB by default (the server's VOX_ARTIFACTS_PER_JOB and
 * VOX_ARTIFACT_BYTES_PER_JOB). The server serves it back as `audio/wav` whatever
 * `Content-Type` was sent. Only the agent holding the running job may upload; a repeated
 * upload of the same name is ignored (201 the first time, 200 after).
 * The result lists what it uploaded in `artifacts`.
 */
import { z } from "zod";

/** Bumped when a message changes incompatibly; sent in `hello`. */
export const PROTOCOL_VERSION = 1;
/** The one WebSocket path agents connect to. */
export const AGENT_WS_PATH = "/api/agent/ws";
/** Largest text frame either side sends. */
export const MAX_FRAME_BYTES = 256 * 1024;
/** Largest artifact upload. */
export const MAX_ARTIFACT_BYTES = 64 * 1024 * 1024;
/** How long the server waits for `hello` after the socket opens. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Raw agent tokens look like this; only their SHA-256 is stored. */
export const AGENT_TOKEN_PATTERN = /^vox_agent_[A-Za-z0-9]{32,64}$/;

/** Where an agent fetches an audio clip of a job it holds, by SHA-256 (HTTP GET, Bearer token). */
export function audioFetchPath(jobId: number, sha256: string): string {
  return `/api/agent/jobs/${jobId}/audio/${sha256}`;
}

/** Where an agent uploads an artifact of a job it holds (HTTP PUT, Bearer token). */
export function artifactUploadPath(jobId: number, name: string): string {
  return `/api/agent/jobs/${jobId}/artifacts/${encodeURIComponent(name)}`;
}

/** WebSocket close codes the server uses; the close reason says more. */
export const CloseCode = {
  /** Normal end (agent said goodbye, or the server is draining). */
  normal: 1000,
  /** The server is restarting: reconnect with backoff. */
  serverRestart: 1012,
  /** A frame exceeded MAX_FRAME_BYTES. */
  tooLarge: 1009,
  /** No token, or a token that does not exist. */
  unauthorized: 4001,
  /** The token was revoked or has expired: do not reconnect with it. */
  tokenInvalid: 4002,
  /** The agent announced a region its token is not for. */
  wrongRegion: 4003,
  /** Heartbeats stopped. */
  heartbeatTimeout: 4008,
  /** Another connection registered with the same token and name. */
  replaced: 4009,
  /** Invalid JSON, a binary frame, a message before hello, or invalid fields. */
  badMessage: 4400,
  /** A `type` this protocol does not know. */
  unknownType: 4404,
} as const;

const jobId = z.number().int().positive();
const agentName = z.string().regex(
  /^[A-Za-z0-9._-]{1,100}$/,
  "1-100 letters, digits, dot, dash or underscore",
);
export const regionSchema = z.string().regex(
  /^[a-z0-9][a-z0-9-]{0,39}$/,
  "lowercase letters, digits and dashes, at most 40",
);

/** Per-metric statistics over a job's turns, milliseconds; n = 0 with nulls when no turns. */
export const latencyStatsSchema = z.object({
  median: z.number().nullable(),
  sd: z.number().nonnegative().nullable(),
  p90: z.number().nullable(),
  n: z.number().int().nonnegative(),
});
export type LatencyStats = z.infer<typeof latencyStatsSchema>;

const score = z.number().min(0).max(100).nullable();

const rate = z.number().min(0).max(1).nullable();
const count = z.number().int().nonnegative().max(1_000_000);
/** `metrics.turn_taking` (agent/turn_taking_metrics.ts): rates 0..1 or null, counts, penalty in ms. */
export const turnTakingSchema = z.object({
  pause_takeover_rate: rate,
  backchannel_stop_rate: rate,
  background_false_trigger_rate: rate,
  n_pause: count,
  n_backchannel: count,
  n_background: count,
  penalty_ms: z.number().nonnegative().max(1e7).nullable(),
});

/** One measured turn (SPEC §7). Extra fields (timestamps, notes) are kept. */
export const turnSchema = z.looseObject({
  kind: z.enum(["response", "interrupt", "pause", "backchannel", "background"]),
  latency_ms: z.number().nullable(),
  ok: z.boolean(),
});

/**
 * The run-mode report (SPEC §7), which is also what a job's result carries. Extra keys
 * (per-run details, summaries, error notes) are kept as they are.
 */
export const runReportSchema = z.looseObject({
  metrics: z.looseObject({
    response_latency: latencyStatsSchema,
    interrupt_latency: latencyStatsSchema,
    network_resilience: score,
    noise_reduction: score,
    naturalness: score,
    /** Turn taking (vox-turntaking/1); absent from agents older than it. */
    turn_taking: turnTakingSchema.optional(),
  }),
  turns: z.array(turnSchema).max(10_000),
  /** Method version per metric, e.g. `{ "response_latency": "audio-clock/1" }`. */
  methods: z.record(z.string(), z.string().max(200)).default({}),
});
export type RunReport = z.infer<typeof runReportSchema>;

/** What the agent says an artifact is; the server checks it against the upload. */
export const artifactRefSchema = z.object({
  name: z.string().min(1).max(200),
  kind: z.enum(["recording", "screenshot", "log", "report"]).default("recording"),
  contentType: z.string().min(1).max(100).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

// ------------------------------------------------------------------ agent → server

/** First frame. `token` only when it was not sent as a header. */
export const helloSchema = z.object({
  type: z.literal("hello"),
  protocol: z.literal(PROTOCOL_VERSION),
  /** Ignored: older agents sent their token here; the upgrade's header is what counts. */
  token: z.string().max(200).optional(),
  name: agentName,
  region: regionSchema,
  version: z.string().max(100).default(""),
  /** Jobs the agent runs at once. */
  capacity: z.number().int().min(1).max(64).default(1),
  /** Jobs still running on the agent after a reconnect. */
  activeJobs: z.array(jobId).max(64).default([]),
});

/** Liveness, every `heartbeatIntervalMs`; keeps the agent's jobs assigned to it. */
export const heartbeatSchema = z.object({
  type: z.literal("heartbeat"),
  activeJobs: z.array(jobId).max(64).default([]),
  /**
   * Jobs the agent accepts at once now (an overloaded host lowers it, agent/host_health.ts);
   * sent with every heartbeat, and at once when it changes. Optional: agents before it send
   * none, and servers before it drop the key.
   */
  capacity: z.number().int().min(1).max(64).optional(),
});

/** The agent starts the offered job. */
export const jobAcceptedSchema = z.object({ type: z.literal("job.accepted"), jobId });

/** The agent cannot take the offered job; it goes back to the queue, no attempt used. */
export const jobRejectedSchema = z.object({
  type: z.literal("job.rejected"),
  jobId,
  reason: z.string().max(500),
});

/** Where a running job is; relayed to the job's live stream. */
export const jobProgressSchema = z.object({
  type: z.literal("job.progress"),
  jobId,
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().nonnegative(),
  /** e.g. "opening page", "turn 3/5". */
  message: z.string().max(500).default(""),
  /** A turn just measured, if any. */
  turn: turnSchema.optional(),
});

/** The job finished and measured something; artifacts were uploaded before this. */
export const jobResultSchema = z.object({
  type: z.literal("job.result"),
  jobId,
  report: runReportSchema,
  artifacts: z.array(artifactRefSchema).max(20).default([]),
});

/** The job could not run (page unreachable, step failed, browser crashed). */
export const jobFailedSchema = z.object({
  type: z.literal("job.failed"),
  jobId,
  reason: z.string().min(1).max(2000),
  /** false when retrying cannot help (e.g. the workflow is broken). */
  retryable: z.boolean().default(true),
});

export const agentMessageSchema = z.discriminatedUnion("type", [
  helloSchema,
  heartbeatSchema,
  jobAcceptedSchema,
  jobRejectedSchema,
  jobProgressSchema,
  jobResultSchema,
  jobFailedSchema,
]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;
export type AgentMessageInput = z.input<typeof agentMessageSchema>;
export const AGENT_MESSAGE_TYPES = agentMessageSchema.options.map((o) => o.shape.type.value);

// ------------------------------------------------------------------ server → agent

/** Answer to hello. */
export const registeredSchema = z.object({
  type: z.literal("registered"),
  agentId: z.number().int().positive(),
  region: regionSchema,
  serverId: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  /** activeJobs the agent still holds: keep running them. */
  resumed: z.array(jobId),
  /** activeJobs no longer the agent's (retried elsewhere, cancelled, finished): abandon them. */
  dropped: z.array(jobId),
});

/** A job assigned to the agent. `workflow.config` / `evalSet.config` are voice-agent-tester YAML as JSON. */
export const jobOfferSchema = z.object({
  type: z.literal("job.offer"),
  jobId,
  attempt: z.number().int().positive(),
  maxAttempts: z.number().int().positive(),
  region: regionSchema,
  /** Runs of the suite to aggregate (`--repeat`). */
  repeat: z.number().int().min(1).max(100),
  /**
   * The server's cap on a job's run time (`jobs.max_runtime_seconds`); the agent fails the job
   * at min(this, what its steps can take: `jobDeadlineMs()` in format.ts). Absent from older servers.
   */
  maxRuntimeSeconds: z.number().positive().optional(),
  workflow: z.object({
    id: z.number().int(),
    name: z.string(),
    providerId: z.string(),
    config: z.record(z.string(), z.unknown()),
    /**
     * The workflow's sealed secrets, opened by the server for this job only (SPEC §5): e.g. the
     * Realtime endpoint's API key (`realtime.auth.secret`). Never logged or stored by the agent.
     */
    secrets: z.record(z.string(), z.string()).optional(),
  }),
  evalSet: z.object({
    id: z.number().int(),
    name: z.string(),
    config: z.record(z.string(), z.unknown()),
  }),
  /**
   * The audio clips the eval set names that the server holds (the project's uploads, the
   * shipped library): the agent fetches each by hash (audioFetchPath), verifies it and gives it
   * the job under its name. Absent from older servers.
   */
  audio: z.array(z.object({
    name: z.string().max(200),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().positive(),
  })).max(1000).optional(),
});

/** Stop the job; it was cancelled or given to someone else. */
export const jobCancelSchema = z.object({
  type: z.literal("job.cancel"),
  jobId,
  reason: z.string(),
});

/** The server stored the job's outcome. */
export const jobAckSchema = z.object({
  type: z.literal("job.ack"),
  jobId,
  status: z.enum(["completed", "failed", "pending", "cancelled"]),
  /** The result had been stored before; nothing new was stored. */
  duplicate: z.boolean(),
});

/** Something the agent sent was refused; `fatal` errors are followed by a close. */
export const serverErrorSchema = z.object({
  type: z.literal("error"),
  code: z.string(),
  message: z.string(),
  jobId: jobId.optional(),
  fatal: z.boolean(),
});

export const serverMessageSchema = z.discriminatedUnion("type", [
  registeredSchema,
  jobOfferSchema,
  jobCancelSchema,
  jobAckSchema,
  serverErrorSchema,
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;

// ------------------------------------------------------------------ parsing

/** Outcome of reading one frame: the message, or why the connection must close. */
export type Parsed<T> =
  | { ok: true; message: T }
  | { ok: false; code: number; reason: string };

/**
 * Reads one frame sent by an agent. Never throws: binary, oversized, non-JSON, unknown
 * type and invalid fields each give a close code and a reason (at most 120 bytes, the
 * WebSocket limit for reasons is 123).
 */
export function parseAgentMessage(data: unknown): Parsed<AgentMessage> {
  return parseFrame(data, agentMessageSchema, AGENT_MESSAGE_TYPES);
}

/** Reads one frame sent by the server (for agents); same rules as parseAgentMessage. */
export function parseServerMessage(data: unknown): Parsed<ServerMessage> {
  return parseFrame(data, serverMessageSchema, serverMessageSchema.options.map((o) => o.shape.type.value));
}

function parseFrame<T>(data: unknown, schema: z.ZodType<T>, types: string[]): Parsed<T> {
  if (typeof data !== "string") {
    return { ok: false, code: CloseCode.badMessage, reason: "binary frames are not accepted" };
  }
  if (data.length > MAX_FRAME_BYTES || new TextEncoder().encode(data).length > MAX_FRAME_BYTES) {
    return { ok: false, code: CloseCode.tooLarge, reason: `frame larger than ${MAX_FRAME_BYTES} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, code: CloseCode.badMessage, reason: "frame is not valid JSON" };
  }
  const type = value && typeof value === "object" ? (value as { type?: unknown }).type : undefined;
  if (typeof type !== "string") {
    return { ok: false, code: CloseCode.badMessage, reason: "frame has no string field type" };
  }
  if (!types.includes(type)) {
    return { ok: false, code: CloseCode.unknownType, reason: clip(`unknown message type ${type}`) };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.length ? issue.path.join(".") : "(frame)";
    return { ok: false, code: CloseCode.badMessage, reason: clip(`${type}: ${path}: ${issue.message}`) };
  }
  return { ok: true, message: parsed.data };
}

function clip(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 120) return reason;
  return new TextDecoder().decode(bytes.slice(0, 117)).replace(/\uFFFD$/, "") + "...";
}

/** Serialises a message for the socket (validated in tests, not on every send). */
export function encode(message: ServerMessage | AgentMessageInput): string {
  return JSON.stringify(message);
}
