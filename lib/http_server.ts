// The HTTP listener: node:http carrying fetch-style handlers (the Hono app), plus WebSocket
// upgrades handed the raw connection. Deno.serve cannot do the second: Deno.upgradeWebSocket
// has no maximum message size and buffers a whole message (up to 64 MiB) before the handler
// sees it. With the raw socket the agent gateway reads each frame's declared length from its
// header and closes the socket before buffering the payload (routes/api/agent_gateway.ts).
import http from "node:http";
import type { Duplex } from "node:stream";
import { setImmediate } from "node:timers";

/** The connection info handlers get, shaped like Deno.serve's (hono/deno's getConnInfo reads it). */
export type ConnInfo = Deno.ServeHandlerInfo<Deno.NetAddr>;

/** A fetch-style handler: the app. */
export type FetchHandler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

/**
 * Takes over an upgrade request's connection. `req` is the request as a fetch Request (no
 * body); the handler owns `socket` from here on: it answers (writeRawResponse) or upgrades.
 */
export type UpgradeHandler = (
  req: Request,
  incoming: http.IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  info: ConnInfo,
) => void | Promise<void>;

export interface ServeOptions {
  port: number;
  hostname: string;
  onListen?: (addr: Deno.NetAddr) => void;
  fetch: FetchHandler;
  /** Upgrade requests by exact path; upgrades to any other path get the app's answer. */
  upgrades?: Record<string, UpgradeHandler>;
}

export interface HttpServer {
  readonly addr: Deno.NetAddr;
  /** Stops accepting, closes idle keep-alive connections, resolves when every connection ended. */
  shutdown(): Promise<void>;
}

/** Listens on `hostname:port` and resolves once the port is bound. */
export async function serveHttp(opts: ServeOptions): Promise<HttpServer> {
  // requestTimeout off: Deno.serve had none, and artifact uploads bound their own bodies.
  const server = http.createServer({ requestTimeout: 0 }, (incoming, outgoing) => {
    respond(opts.fetch, incoming, outgoing).catch(() => outgoing.destroy());
  });
  server.on("upgrade", (incoming: http.IncomingMessage, socket: Duplex, head: Uint8Array) => {
    // A peer that resets mid-answer must not become an uncaught 'error'.
    socket.on("error", () => socket.destroy());
    const info = connInfo(incoming);
    const req = toRequest(incoming, null);
    if (!req) return void writeRawResponse(socket, new Response("Bad Request", { status: 400 }));
    const handler = opts.upgrades?.[new URL(req.url).pathname];
    const done = handler
      ? handler(req, incoming, socket, head, info)
      : Promise.resolve(opts.fetch(req, info)).then((res) => writeRawResponse(socket, res));
    Promise.resolve(done).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as { address: string; port: number };
  const addr: Deno.NetAddr = { transport: "tcp", hostname: bound.address, port: bound.port };
  opts.onListen?.(addr);
  return {
    addr,
    shutdown() {
      return new Promise<void>((resolve) => {
        // A request in flight keeps its connection until it ends; it is idle from then on.
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/**
 * Writes a fetch Response onto a raw connection and ends it: how an upgrade handler refuses
 * (the connection never becomes a WebSocket), and how upgrade requests to other paths get the
 * app's answer. The body streams (an event stream would otherwise be held whole) and ends
 * with the connection.
 */
export async function writeRawResponse(socket: Duplex, res: Response): Promise<void> {
  let head = `HTTP/1.1 ${res.status} ${http.STATUS_CODES[res.status] ?? ""}\r\n`;
  for (const [name, value] of res.headers) {
    if (!["connection", "transfer-encoding"].includes(name)) head += `${name}: ${value}\r\n`;
  }
  socket.write(`${head}connection: close\r\n\r\n`);
  if (res.body) {
    const reader = res.body.getReader();
    socket.once("close", () => reader.cancel().catch(() => {}));
    for (let got = await reader.read(); !got.done && !socket.destroyed; got = await reader.read()) {
      if (!socket.write(got.value)) {
        await new Promise<void>((resolve) => {
          socket.once("drain", resolve);
          socket.once("close", resolve);
        });
      }
    }
  }
  socket.end();
}

function connInfo(incoming: http.IncomingMessage): ConnInfo & { settle(): void } {
  let settle!: () => void;
  const completed = new Promise<void>((r) => settle = r);
  const raw = incoming.socket.remoteAddress ?? "";
  return {
    // Deno.serve reported IPv4 peers of a dual-stack listener as plain IPv4.
    remoteAddr: {
      transport: "tcp",
      hostname: raw.startsWith("::ffff:") && raw.includes(".") ? raw.slice(7) : raw,
      port: incoming.socket.remotePort ?? 0,
    },
    completed,
    settle,
  };
}

// The request as a fetch Request; null when its Host or target cannot make a URL.
function toRequest(incoming: http.IncomingMessage, signal: AbortSignal | null): Request | null {
  const method = incoming.method ?? "GET";
  let url: URL;
  try {
    url = new URL(incoming.url ?? "/", `http://${incoming.headers.host ?? "localhost"}`);
    if (!(incoming.url ?? "").startsWith("/")) return null;
  } catch {
    return null;
  }
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  try {
    for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  } catch {
    return null;
  }
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(url, {
    method,
    headers,
    signal,
    body: hasBody ? requestBody(incoming) : null,
    // @ts-ignore: a streamed request body needs duplex (not yet in lib.dom's RequestInit)
    duplex: "half",
  });
}

// The request body as a byte stream with backpressure (at most 64 KiB read ahead). A handler
// that stops reading (the body limit answering 413) cancels it: reading stops there, and
// respond() closes the connection once the answer is out.
function requestBody(incoming: http.IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      incoming.on("data", (chunk: Uint8Array) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
      });
      incoming.once("end", () => {
        try {
          controller.close();
        } catch { /* cancelled */ }
      });
      incoming.once("error", (err) => {
        try {
          controller.error(err);
        } catch { /* cancelled */ }
      });
    },
    pull() {
      incoming.resume();
    },
    cancel() {
      incoming.removeAllListeners("data");
      incoming.pause();
    },
  }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
}

async function respond(
  fetch: FetchHandler,
  incoming: http.IncomingMessage,
  outgoing: http.ServerResponse,
): Promise<void> {
  const aborter = new AbortController();
  const info = connInfo(incoming);
  let finished = false;
  outgoing.on("close", () => {
    info.settle();
    if (!finished) aborter.abort();
  });
  const req = toRequest(incoming, aborter.signal);
  let res: Response;
  if (!req) res = new Response("Bad Request", { status: 400 });
  else {
    try {
      res = await fetch(req, info);
    } catch {
      res = new Response("Internal Server Error", { status: 500 });
    }
  }
  outgoing.statusCode = res.status;
  const cookies = res.headers.getSetCookie();
  if (cookies.length > 0) outgoing.setHeader("set-cookie", cookies);
  // A body the handler left unread (a 401 before an upload, a 413 from the body limit) is not
  // read on. Reading it through to drop it, as node:http would on a kept-alive connection,
  // costs as much memory churn as the client cares to send (measured: 200 MB dropped at
  // loopback speed raised RSS by 20 MiB). So the answer says `Connection: close`; node:http
  // then ends and destroys the socket at once, which resets the connection under a client still
  // sending, often before it read the answer (the client sees a broken pipe). This socket
  // instead stops reading, ends, and is dropped LINGER_MS later.
  const unread = !incoming.complete;
  if (unread) {
    const socket = incoming.socket;
    incoming.removeAllListeners("data");
    socket.destroySoon = () => {
      socket.pause();
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS);
    };
    outgoing.setHeader("connection", "close");
  }
  for (const [name, value] of res.headers) {
    if (name !== "set-cookie" && !(unread && name === "connection")) outgoing.setHeader(name, value);
  }
  if (!res.body || incoming.method === "HEAD" || res.status === 204 || res.status === 304) {
    finished = true;
    await res.body?.cancel().catch(() => {});
    outgoing.end();
    return;
  }
  await pump(res.body, outgoing, compresses(incoming, res.headers), () => finished = true);
}

// Deno.serve compressed answers by itself; these are its rules (ext/http), with gzip for any
// client that takes it: a compressible type, not already encoded or ranged, no
// `Cache-Control: no-transform`, not under 64 bytes (checked in pump() for whole bodies).
const COMPRESSIBLE =
  /^(text\/|application\/(json|javascript|ecmascript|xml|wasm|manifest\+json|[\w.-]+\+(json|xml))|image\/svg\+xml)/i;

function compresses(incoming: http.IncomingMessage, headers: Headers): boolean {
  const accepted = incoming.headers["accept-encoding"];
  if (!accepted || !/(^|[\s,])gzip(?!\s*;\s*q=0(\.0*)?\s*(,|$))/i.test(String(accepted))) return false;
  if (!COMPRESSIBLE.test(headers.get("content-type") ?? "")) return false;
  if (headers.has("content-encoding") || headers.has("content-range")) return false;
  if (/(^|,)\s*no-transform\s*(,|$)/i.test(headers.get("cache-control") ?? "")) return false;
  const length = headers.get("content-length");
  return length === null || Number(length) >= 64;
}

/** How long a connection whose request body went unread stays open after the answer. */
const LINGER_MS = 2_000;

const NOT_YET = Symbol("not yet");
const soon = () => new Promise<typeof NOT_YET>((r) => setImmediate(() => r(NOT_YET)));

// Writes the body with backpressure. A body that is already whole (a string or bytes, as most
// routes answer) goes out in one write with a Content-Length; a stream that has nothing yet
// (an event stream) gets its headers at once, then each chunk as it comes. gzip, when
// `compress`, flushes after every chunk (Deno's CompressionStream does), so events are not
// held back. The client going away cancels the stream, so its producer stops.
async function pump(
  body: ReadableStream<Uint8Array>,
  outgoing: http.ServerResponse,
  compress: boolean,
  markFinished: () => void,
): Promise<void> {
  const source = body.getReader();
  try {
    // Up to two chunks already there: a whole body, or the start of a stream.
    const head: Uint8Array[] = [];
    let next: Promise<ReadableStreamReadResult<Uint8Array>> | null = source.read();
    for (let i = 0; i < 2 && next; i++) {
      const got: ReadableStreamReadResult<Uint8Array> | typeof NOT_YET = await Promise.race([next, soon()]);
      if (got === NOT_YET) break;
      next = got.done ? null : source.read();
      if (!got.done) head.push(got.value);
    }
    if (!next) {
      let bytes = concat(head[0] ?? new Uint8Array(0), head[1] ?? new Uint8Array(0));
      if (compress && bytes.byteLength >= 64) {
        const packed = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
          new CompressionStream("gzip"),
        );
        bytes = await new Response(packed).bytes();
        gzipHeaders(outgoing);
      }
      markFinished();
      outgoing.setHeader("content-length", bytes.byteLength);
      outgoing.end(bytes);
      return;
    }
    // The rest as one stream: the chunks read so far, then the source.
    const pending = next;
    let first = true;
    const rest = new ReadableStream<Uint8Array<ArrayBuffer>>({
      async pull(controller) {
        const chunk = head.shift();
        if (chunk) return controller.enqueue(chunk as Uint8Array<ArrayBuffer>);
        const got = first ? await pending : await source.read();
        first = false;
        if (got.done) controller.close();
        else controller.enqueue(got.value as Uint8Array<ArrayBuffer>);
      },
      cancel(reason) {
        return source.cancel(reason);
      },
    });
    const out = (compress ? rest.pipeThrough(new CompressionStream("gzip")) : rest).getReader();
    let gone = false;
    outgoing.on("close", () => {
      gone = true;
      out.cancel().catch(() => {});
    });
    if (compress) gzipHeaders(outgoing);
    outgoing.flushHeaders();
    for (let got = await out.read(); !got.done && !gone; got = await out.read()) {
      if (!outgoing.write(got.value)) await drained(outgoing);
    }
    markFinished();
    if (!gone) outgoing.end();
  } catch {
    source.cancel().catch(() => {});
    outgoing.destroy();
  }
}

function gzipHeaders(outgoing: http.ServerResponse): void {
  outgoing.removeHeader("content-length");
  const etag = outgoing.getHeader("etag");
  if (typeof etag === "string" && !etag.startsWith("W/")) outgoing.setHeader("etag", `W/${etag}`);
  outgoing.setHeader("content-encoding", "gzip");
  outgoing.appendHeader("vary", "Accept-Encoding");
}

function drained(outgoing: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      outgoing.off("drain", done);
      outgoing.off("close", done);
      resolve();
    };
    outgoing.on("drain", done);
    outgoing.on("close", done);
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
