// Caller audio: a project's uploaded clips (/api/v1/projects/:id/audio) and the shipped library
// (/api/v1/audio/library). What is stored and checked is lib/audio.ts.
import { Hono } from "hono";
import { z } from "zod";
import { FILE_NAME } from "../../agent/format.ts";
import { audioStoreOf } from "../../lib/artifact_store.ts";
import {
  clipName,
  deleteClip,
  LIBRARY,
  LIBRARY_DIR,
  listClips,
  readClip,
  renameClip,
  uploadClip,
  uploadTooLarge,
  VOICES,
} from "../../lib/audio.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { peaksOf } from "../../lib/audio_peaks.ts";
import type { AuthUser } from "../../lib/roles.ts";
import { assertProjectAccess } from "../../lib/projects.ts";
import { join } from "node:path";

const clipNameSchema = z.string().max(200).regex(
  FILE_NAME,
  "a plain file name (letters, digits, . _ -; no folder, no leading dot)",
);
const projectParam = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) });
const clipParam = projectParam.extend({ name: clipNameSchema });
const libraryParam = z.object({ name: clipNameSchema });
const listQuery = z.object({
  peaks: z.enum(["true", "false"]).optional().describe(
    "true: each clip also has `peaks`, its waveform's envelope (as from …/audio/{name}/peaks)",
  ),
});
const renameSchema = z.object({ name: clipNameSchema.optional().describe("the clip's new name") });

const clipSchema = z.object({
  name: z.string(),
  sha256: z.string(),
  durationMs: z.number(),
  sampleRate: z.number(),
  channels: z.number(),
  bytes: z.number(),
  format: z.string(),
  createdAt: z.string(),
});
const usedBy = z.array(z.object({ id: z.number(), name: z.string() }));
const libraryClipSchema = z.object({
  name: z.string(),
  kind: z.string(),
  text: z.string(),
  voice: z.string(),
  engine: z.string(),
  sha256: z.string(),
  bytes: z.number(),
  durationMs: z.number(),
});

const tag = "audio";
doc({
  method: "post",
  path: "/api/v1/projects/{id}/audio",
  summary:
    "Upload a clip (multipart/form-data: `file`, optional `name`): wav, mp3, ogg or flac, checked by decoding; 400 unsupported_audio / corrupt_audio / audio_too_long, 409 name taken, 413 over VOX_AUDIO_MAX_BYTES",
  tag,
  auth: "user",
  params: projectParam,
  status: 201,
  errors: [409, 413],
  response: clipSchema,
});
doc({
  method: "get",
  path: "/api/v1/projects/{id}/audio",
  summary:
    "A project's clips, each with the eval sets that use it (and with `?peaks=true`, its waveform's envelope)",
  tag,
  auth: "user",
  params: projectParam,
  query: listQuery,
  response: z.object({
    clips: z.array(clipSchema.extend({ usedBy, peaks: z.array(z.number()).optional() })),
  }),
});
doc({
  method: "get",
  path: "/api/v1/projects/{id}/audio/{name}",
  summary: "Download a clip",
  tag,
  auth: "user",
  params: clipParam,
  produces: "audio/*",
});
doc({
  method: "get",
  path: "/api/v1/projects/{id}/audio/{name}/peaks",
  summary:
    "A clip's peak envelope for drawing its waveform: `peaks`, 120 values in 0..1 (largest absolute sample per equal slice)",
  tag,
  auth: "user",
  params: clipParam,
  response: z.object({ name: z.string(), sha256: z.string(), peaks: z.array(z.number()) }),
});
doc({
  method: "patch",
  path: "/api/v1/projects/{id}/audio/{name}",
  summary: "Rename a clip (409 while an eval set uses it, or when the name is taken)",
  tag,
  auth: "user",
  params: clipParam,
  body: renameSchema,
  errors: [409],
  response: clipSchema,
});
doc({
  method: "delete",
  path: "/api/v1/projects/{id}/audio/{name}",
  summary: "Delete a clip (409 while an eval set uses it)",
  tag,
  auth: "user",
  params: clipParam,
  errors: [409],
});
doc({
  method: "get",
  path: "/api/v1/audio/library",
  summary: "The shipped library of caller utterances and noise beds (assets/library/v1)",
  tag,
  auth: "user",
  response: z.object({
    version: z.string(),
    clips: z.array(libraryClipSchema),
    voices: z.array(z.string()).describe(
      "voices a step's `voice` may name (espeak-ng bare or espeak:, flite:, festival:, openai:)",
    ),
  }),
});
doc({
  method: "get",
  path: "/api/v1/audio/library/{name}",
  summary: "Download a library clip",
  tag,
  auth: "user",
  params: libraryParam,
  produces: "audio/ogg",
});

const CONTENT_TYPES: Record<string, string> = {
  wav: "audio/wav",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  flac: "audio/flac",
};
// Multipart framing and the `name` field on top of the clip itself.
const MULTIPART_OVERHEAD = 64 * 1024;

/** Reads a request body up to `max` bytes; beyond it, `onOver` is thrown. */
async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  max: number,
  onOver: (n: number) => Error,
) {
  const parts: Uint8Array[] = [];
  let size = 0;
  if (body) {
    for await (const piece of body) {
      size += piece.length;
      if (size > max) throw onOver(size);
      parts.push(piece);
    }
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** /api/v1/projects/:id/audio and /api/v1/audio/library (mounted at /api/v1). */
export function audioApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  const store = audioStoreOf(deps.artifactStore);
  const limits = { maxBytes: deps.config.VOX_AUDIO_MAX_BYTES, maxSeconds: deps.config.VOX_AUDIO_MAX_SECONDS };
  // Mounted at /api/v1 beside other modules: the guard covers only these paths.
  for (const path of ["/projects/:id/audio", "/projects/:id/audio/*", "/audio/library", "/audio/library/*"]) {
    app.use(path, requireUser);
  }

  app.post("/projects/:id/audio", valid("param", projectParam), async (c) => {
    const { id } = c.req.valid("param");
    await assertProjectAccess(deps.sql, c.var.user!, id);
    const max = limits.maxBytes + MULTIPART_OVERHEAD;
    const length = Number(c.req.header("content-length") ?? NaN);
    const over = (n: number) =>
      new HttpError(
        413,
        "payload_too_large",
        `file: the upload is over the ${limits.maxBytes}-byte limit for an audio clip (VOX_AUDIO_MAX_BYTES)${
          Number.isFinite(n) ? ` (${n} bytes sent)` : ""
        }`,
        {
          details: { limit: "VOX_AUDIO_MAX_BYTES", maxBytes: limits.maxBytes },
          headers: { Connection: "close" },
        },
      );
    if (length > max) throw over(length);
    if (!(c.req.header("content-type") ?? "").toLowerCase().startsWith("multipart/form-data")) {
      throw new HttpError(
        400,
        "invalid_input",
        "file: send multipart/form-data with the clip in the field `file`",
      );
    }
    const raw = await readCapped(c.req.raw.body, max, over);
    let form: FormData;
    try {
      form = await new Request("http://upload/", {
        method: "POST",
        headers: { "content-type": c.req.header("content-type")! },
        body: raw,
      }).formData();
    } catch {
      throw new HttpError(400, "invalid_input", "file: the multipart body does not parse");
    }
    const file = form.get("file");
    if (!(file instanceof File)) {
      throw new HttpError(400, "invalid_input", "file: required (a multipart file field named `file`)");
    }
    const given = form.get("name");
    const name = clipName(typeof given === "string" ? given : undefined, file.name);
    if (file.size > limits.maxBytes) throw uploadTooLarge(file.size, limits.maxBytes);
    const bytes = new Uint8Array(await file.arrayBuffer());
    const clip = await uploadClip(deps.sql, store, c.var.user!, { projectId: id, name, bytes }, limits);
    return c.json(clip, 201);
  });

  /** A clip's envelope (lib/audio_peaks.ts caches it by SHA-256, so its bytes are decoded once). */
  const clipPeaks = async (user: AuthUser, projectId: number, name: string) => {
    const clip = await readClip(deps.sql, store, user, projectId, name);
    const bytes = new Uint8Array(await new Response(clip.body).arrayBuffer());
    return { clip, peaks: await peaksOf(clip.sha256, clip.format, bytes) };
  };

  // The console's audio page asks once with ?peaks=true rather than once per clip: every API
  // request counts against the caller's general rate limit (100 per 15 minutes by default).
  app.get("/projects/:id/audio", valid("param", projectParam), valid("query", listQuery), async (c) => {
    const id = c.req.valid("param").id;
    const clips = await listClips(deps.sql, c.var.user!, id);
    if (c.req.valid("query").peaks !== "true") return c.json({ clips });
    const out = [];
    // One at a time: a first visit decodes each clip with sox, and a page of them should not
    // start dozens of decoders at once. A clip that cannot be decoded is listed without peaks.
    for (const clip of clips) {
      const peaks = await clipPeaks(c.var.user!, id, clip.name).then((p) => p.peaks, () => undefined);
      out.push({ ...clip, peaks });
    }
    return c.json({ clips: out });
  });

  app.get("/projects/:id/audio/:name", valid("param", clipParam), async (c) => {
    const p = c.req.valid("param");
    const clip = await readClip(deps.sql, store, c.var.user!, p.id, p.name);
    return c.body(clip.body, 200, {
      "Content-Type": CONTENT_TYPES[clip.format] ?? "application/octet-stream",
      "Content-Length": String(clip.bytes),
      "X-Content-Type-Options": "nosniff",
      "Content-Disposition": `attachment; filename="${p.name}"`,
      "Cache-Control": "private, max-age=0",
    });
  });

  app.get("/projects/:id/audio/:name/peaks", valid("param", clipParam), async (c) => {
    const p = c.req.valid("param");
    const { clip, peaks } = await clipPeaks(c.var.user!, p.id, p.name);
    return c.json({ name: clip.name, sha256: clip.sha256, peaks });
  });

  app.patch(
    "/projects/:id/audio/:name",
    valid("param", clipParam),
    valid("json", renameSchema),
    async (c) => {
      const p = c.req.valid("param");
      await assertProjectAccess(deps.sql, c.var.user!, p.id);
      const to = c.req.valid("json").name;
      if (to === undefined) throw new HttpError(400, "invalid_input", "name: required (the clip's new name)");
      return c.json(await renameClip(deps.sql, c.var.user!, p.id, p.name, to));
    },
  );

  app.delete("/projects/:id/audio/:name", valid("param", clipParam), async (c) => {
    const p = c.req.valid("param");
    await deleteClip(deps.sql, store, c.var.user!, p.id, p.name);
    return c.json({ deleted: true });
  });

  app.get("/audio/library", (c) => c.json({ version: "v1", clips: [...LIBRARY.values()], voices: VOICES }));

  app.get("/audio/library/:name", valid("param", libraryParam), async (c) => {
    const clip = LIBRARY.get(c.req.valid("param").name);
    if (!clip) throw new HttpError(404, "not_found", `No library clip "${c.req.valid("param").name}"`);
    const file = await Deno.open(join(LIBRARY_DIR, clip.name));
    return c.body(file.readable, 200, {
      "Content-Type": "audio/ogg",
      "Content-Length": String(clip.bytes),
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "public, max-age=31536000, immutable",
    });
  });
  return app;
}
