// Where artifact bytes live: chunk rows in PostgreSQL by default, or an S3-compatible bucket
// for deployments whose recordings outgrow one database (VOX_ARTIFACT_STORE). Both take the
// bytes as a stream and hold at most one chunk or part of them in memory at a time.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import v8 from "node:v8";
import vm from "node:vm";
import type { Config } from "./config.ts";
import type { Db } from "./db.ts";

/** What a store needs to know of a stored artifact to read it back. */
export interface StoredArtifact {
  id: number;
  storage: "inline" | "postgres" | "s3";
  storageKey: string | null;
}

/** The bytes of artifacts, behind one small interface. */
export interface ArtifactStore {
  readonly kind: "postgres" | "s3";
  /**
   * Writes `body` for the artifact row `id` (inside the transaction `tx` that inserted it)
   * and returns the storage key. Errors thrown by `body` end the write and leave nothing.
   */
  write(tx: Db, id: number, key: string, body: AsyncIterable<Uint8Array>): Promise<string | null>;
  /** The bytes of a stored artifact, read as the consumer pulls them. */
  read(sql: Db, artifact: StoredArtifact): ReadableStream<Uint8Array>;
  /** Removes the objects under `keys` (rows are the database's: they go with their row). */
  remove(keys: string[]): Promise<void>;
}

/** Rows of this size hold the bytes; one is in memory while writing or reading. */
export const PG_CHUNK_BYTES = 256 * 1024;
/** Multipart part size for S3 (its minimum is 5 MiB for every part but the last). */
export const S3_PART_BYTES = 5 * 1024 * 1024;

// Streaming keeps one chunk live, but every piece of a request body and every message to
// the database is a fresh buffer, and V8 frees such short-lived buffers only when it next
// collects: a 64 MiB upload raised the server's peak RSS by ~58 MiB with no hint, by ~16 MiB
// with a full GC every 4 MiB, and by ~9 MiB with a young-generation GC (a scavenge, about a
// millisecond) every 1 MiB, which is what this does (tests/fleet_limits_test.ts measures it).
const GC_EVERY_BYTES = 1024 * 1024;
const collectGarbage: () => void = (() => {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    if (typeof gc === "function") return () => gc({ type: "minor" });
  } catch { /* not available: V8's own pacing then */ }
  return () => {};
})();

/**
 * Fills one reused fixed-size buffer from a stream of arbitrary pieces and calls `flush`
 * with it each time it is full (and with the rest at the end); `flush` must be done with
 * the bytes when its promise settles.
 */
async function rechunk(
  body: AsyncIterable<Uint8Array>,
  size: number,
  flush: (chunk: Uint8Array, last: boolean) => Promise<void>,
): Promise<void> {
  const buf = new Uint8Array(size);
  let used = 0;
  let flushedAny = false;
  let sinceGc = 0;
  for await (const piece of body) {
    sinceGc += piece.length;
    if (sinceGc >= GC_EVERY_BYTES) {
      sinceGc = 0;
      collectGarbage();
    }
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(size - used, piece.length - off);
      buf.set(piece.subarray(off, off + n), used);
      used += n;
      off += n;
      if (used === size) {
        await flush(buf, false);
        flushedAny = true;
        used = 0;
      }
    }
  }
  if (used > 0 || !flushedAny) await flush(buf.subarray(0, used), true);
}

// COPY … (FORMAT binary) framing: signature, flags, header extension length.
const COPY_HEADER = new Uint8Array([
  0x50,
  0x47,
  0x43,
  0x4f,
  0x50,
  0x59,
  0x0a,
  0xff,
  0x0d,
  0x0a,
  0x00,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
]);
const COPY_TRAILER = new Uint8Array([0xff, 0xff]);

/** Where chunk rows go: a recording's (eval_artifact_chunks) or an audio clip's (audio_blob_chunks). */
export type ChunkTable = "eval_artifact_chunks" | "audio_blob_chunks";
const CHUNK_OWNER = { eval_artifact_chunks: "artifact_id", audio_blob_chunks: "blob_id" } as const;

/** Chunk rows in eval_artifact_chunks (or `table`), in the upload's own transaction. */
export class PostgresArtifactStore implements ArtifactStore {
  readonly kind = "postgres" as const;

  constructor(readonly table: ChunkTable = "eval_artifact_chunks") {}

  /**
   * Streams the rows with one binary COPY: the bytes go to the server as they are, where an
   * INSERT per chunk would send each as a hex string twice its size.
   */
  async write(tx: Db, id: number, _key: string, body: AsyncIterable<Uint8Array>): Promise<string | null> {
    const query = tx`COPY ${tx(this.table)} (${
      tx(CHUNK_OWNER[this.table])
    }, seq, data) FROM STDIN WITH (FORMAT binary)`;
    const copy = await query.writable();
    // Failures surface through the write and end callbacks below (and end the transaction);
    // the stream's error event and the query's own promise would only repeat them.
    copy.on("error", () => {});
    query.catch(() => {});
    const write = (b: Uint8Array) =>
      new Promise<void>((resolve, reject) => copy.write(b, (err) => err ? reject(err) : resolve()));
    try {
      await write(COPY_HEADER);
      let seq = 0;
      const tuple = new Uint8Array(2 + 4 + 8 + 4 + 4 + 4);
      const view = new DataView(tuple.buffer);
      await rechunk(body, PG_CHUNK_BYTES, async (chunk) => {
        if (chunk.length === 0) return;
        view.setInt16(0, 3);
        view.setInt32(2, 8);
        view.setBigInt64(6, BigInt(id));
        view.setInt32(14, 4);
        view.setInt32(18, seq++);
        view.setInt32(22, chunk.length);
        await write(tuple);
        await write(chunk);
      });
      await write(COPY_TRAILER);
      await new Promise<void>((resolve, reject) => {
        copy.once("error", reject);
        copy.end(() => resolve());
      });
      await query;
    } catch (err) {
      copy.destroy(err as Error);
      throw err;
    }
    return null;
  }

  read(sql: Db, artifact: StoredArtifact): ReadableStream<Uint8Array> {
    let seq = 0;
    const table = sql(this.table);
    const owner = sql(CHUNK_OWNER[this.table]);
    return new ReadableStream({
      async pull(controller) {
        const [row] = artifact.storage === "inline"
          ? (seq++ === 0 ? await sql`SELECT data FROM eval_artifacts WHERE id = ${artifact.id}` : [])
          : await sql`SELECT data FROM ${table} WHERE ${owner} = ${artifact.id} AND seq = ${seq++}`;
        if (row) controller.enqueue(row.data as Uint8Array);
        else controller.close();
      },
    }, { highWaterMark: 0 });
  }

  async remove(_keys: string[]): Promise<void> {}
}

/** Objects in an S3-compatible bucket, uploaded in parts as the bytes arrive. */
export class S3ArtifactStore implements ArtifactStore {
  readonly kind = "s3" as const;
  #pg: PostgresArtifactStore;

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    table: ChunkTable = "eval_artifact_chunks",
  ) {
    this.#pg = new PostgresArtifactStore(table);
  }

  async write(_tx: Db, _id: number, key: string, body: AsyncIterable<Uint8Array>): Promise<string | null> {
    const Bucket = this.bucket;
    let uploadId: string | undefined;
    const parts: { PartNumber: number; ETag: string | undefined }[] = [];
    try {
      await rechunk(body, S3_PART_BYTES, async (chunk, last) => {
        if (last && uploadId === undefined) {
          // Small enough for one request.
          await this.client.send(new PutObjectCommand({ Bucket, Key: key, Body: chunk }));
          return;
        }
        uploadId ??=
          (await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key: key }))).UploadId;
        if (chunk.length === 0) return;
        const PartNumber = parts.length + 1;
        const res = await this.client.send(
          new UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber, Body: chunk }),
        );
        parts.push({ PartNumber, ETag: res.ETag });
      });
      if (uploadId !== undefined) {
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      }
    } catch (err) {
      if (uploadId !== undefined) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }))
          .catch(() => {});
      }
      throw err;
    }
    return key;
  }

  read(sql: Db, artifact: StoredArtifact): ReadableStream<Uint8Array> {
    // Rows stored before the switch to S3 stay readable where they are.
    if (artifact.storage !== "s3") return this.#pg.read(sql, artifact);
    const client = this.client;
    const Bucket = this.bucket;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    return new ReadableStream({
      async pull(controller) {
        if (!reader) {
          const res = await client.send(new GetObjectCommand({ Bucket, Key: artifact.storageKey! }));
          reader = (res.Body!.transformToWebStream() as ReadableStream<Uint8Array>).getReader();
        }
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel() {
        return reader?.cancel();
      },
    }, { highWaterMark: 0 });
  }

  async remove(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }
}

/**
 * The same store for uploaded audio clips (lib/audio.ts): chunk rows in audio_blob_chunks, or
 * objects in the same bucket under `audio/<sha256>`.
 */
export function audioStoreOf(store: ArtifactStore): ArtifactStore {
  if (store instanceof S3ArtifactStore) {
    return new S3ArtifactStore(store.client, store.bucket, "audio_blob_chunks");
  }
  if (store instanceof PostgresArtifactStore) return new PostgresArtifactStore("audio_blob_chunks");
  return store;
}

/** The store VOX_ARTIFACT_STORE asks for. */
export function artifactStoreFromConfig(config: Config): ArtifactStore {
  if (config.VOX_ARTIFACT_STORE === "postgres") return new PostgresArtifactStore();
  const client = new S3Client({
    region: config.VOX_S3_REGION,
    ...(config.VOX_S3_ENDPOINT ? { endpoint: config.VOX_S3_ENDPOINT, forcePathStyle: true } : {}),
    // Without keys in the environment the SDK's own chain applies (instance roles and the like).
    ...(config.VOX_S3_ACCESS_KEY_ID && config.VOX_S3_SECRET_ACCESS_KEY
      ? {
        credentials: {
          accessKeyId: config.VOX_S3_ACCESS_KEY_ID,
          secretAccessKey: config.VOX_S3_SECRET_ACCESS_KEY,
        },
      }
      : {}),
  });
  return new S3ArtifactStore(client, config.VOX_S3_BUCKET!);
}
