/**
 * Writes replies to an h1 client: the reply head encoded piece by piece into a reused buffer
 * (no string built for it), small bodies in the same write, streamed bodies chunk by chunk with
 * backpressure — passed through when the upstream's chunked framing can go as it came.
 *
 * @module
 */
import type { BodySource, ReplyBody, UpstreamReply } from "../transport.ts";
import { frameChunk, LAST_CHUNK, writeLatin1 } from "./request.ts";
import { scratch } from "./scratch.ts";
import type { RequestHead } from "./request_parser.ts";

/**
 * Where replies go: the client connection.
 *
 * @example
 * ```ts
 * const sink: ReplySink = { write: (bytes) => writeFully(conn, bytes) };
 * ```
 */
export interface ReplySink {
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
}

/** A reply head and body up to this size go out in one write. */
const COALESCE = 16 * 1024;

/**
 * Writes a reply's head — status line, its fields except `Content-Length`, then `tail` (the
 * framing and connection lines, and the blank line) — followed by `body`, in one write.
 *
 * @example
 * ```ts
 * await writeAnswer(sink, reply, "content-length: 0\r\n\r\n", null);
 * ```
 */
export async function writeAnswer(
  sink: ReplySink,
  reply: UpstreamReply,
  tail: string,
  body: Uint8Array | null,
): Promise<void> {
  const headers = reply.headers;
  const code = String(reply.status);
  const reason = reply.reason;
  let size = 12 + code.length + reason.length + tail.length + (body === null ? 0 : body.length);
  for (let i = 0; i < headers.length; i++) {
    size += headers[i][0].length + headers[i][1].length + 4;
  }
  const out = scratch.take(size);
  try {
    let at = writeLatin1(out, 0, "HTTP/1.1 ");
    at = writeLatin1(out, at, code);
    out[at++] = 32;
    at = writeLatin1(out, at, reason);
    out[at++] = 13;
    out[at++] = 10;
    for (let i = 0; i < headers.length; i++) {
      const name = headers[i][0];
      if (name.length === 14 && name.toLowerCase() === "content-length") continue;
      at = writeLatin1(out, at, name);
      out[at++] = 58;
      out[at++] = 32;
      at = writeLatin1(out, at, headers[i][1]);
      out[at++] = 13;
      out[at++] = 10;
    }
    at = writeLatin1(out, at, tail);
    if (body !== null) {
      out.set(body, at);
      at += body.length;
    }
    await sink.write(out.subarray(0, at));
  } finally {
    scratch.give(out);
  }
}

/**
 * Writes one of the proxy's own answers (a whole body) with `Connection: close`; never rejects.
 *
 * @example
 * ```ts
 * await writeError(sink, errorReply("bad-request", "no"));
 * ```
 */
export async function writeError(sink: ReplySink, reply: UpstreamReply): Promise<void> {
  try {
    const body = reply.body as Uint8Array;
    await writeAnswer(
      sink,
      reply,
      "content-length: " + body.length + "\r\nconnection: close\r\n\r\n",
      body,
    );
  } catch { /* the client is gone */ }
}

/**
 * Writes the answer to the request `head`; resolves whether the connection may carry another
 * request (`keepAlive`, unless the framing or a broken body says otherwise).
 *
 * @example
 * ```ts
 * const again = await writeReply(sink, head, reply, head.keepAlive);
 * ```
 */
export async function writeReply(
  sink: ReplySink,
  head: RequestHead,
  reply: UpstreamReply,
  keepAlive: boolean,
): Promise<boolean> {
  const status = reply.status;
  const body = reply.body;
  const noBody = head.method === "HEAD" || status === 204 || status === 304 || status < 200;
  const length = status === 204 || status < 200 ? -1 : reply.contentLength;
  // The framing and connection lines; the status line and fields are encoded by writeAnswer.
  let text = "";
  let framing: "none" | "length" | "chunked" | "close" = "none";
  if (length >= 0) text += "content-length: " + length + "\r\n";
  if (!noBody) {
    if (body instanceof Uint8Array) {
      if (length < 0) text += "content-length: " + body.length + "\r\n";
      framing = "length";
    } else if (length >= 0) framing = length === 0 ? "none" : "length";
    else if (body === null) text += "content-length: 0\r\n";
    else if (head.minor === 1) {
      text += "transfer-encoding: chunked\r\n";
      framing = "chunked";
    } else {
      framing = "close";
      keepAlive = false;
    }
  }
  if (!keepAlive) text += "connection: close\r\n\r\n";
  else text += head.minor === 0 ? "connection: keep-alive\r\n\r\n" : "\r\n";

  if (body === null || noBody || framing === "none") {
    if (body !== null && !(body instanceof Uint8Array)) cancelBody(reply);
    await writeAnswer(sink, reply, text, null);
    return keepAlive;
  }
  if (body instanceof Uint8Array) {
    if (body.length <= COALESCE) await writeAnswer(sink, reply, text, body);
    else {
      await writeAnswer(sink, reply, text, null);
      await sink.write(body);
    }
    return keepAlive;
  }
  const source: BodySource = body instanceof ReadableStream ? readerSource(body) : body;
  const raw = framing === "chunked" && (body as Partial<ReplyBody>).chunkedRaw === true;
  let sent = 0;
  try {
    await writeAnswer(sink, reply, text, null);
    for (;;) {
      const chunk = await source.next();
      if (chunk === null) break;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (framing === "chunked" && !raw) await sink.write(frameChunk(chunk));
      else await sink.write(chunk);
    }
  } catch {
    // The client or the server went away mid-body: cut the connection so that the client
    // never takes a truncated body for a complete one; the server's connection is dropped.
    source.cancel();
    return false;
  }
  if (framing === "chunked" && !raw) await sink.write(LAST_CHUNK);
  if (framing === "length" && sent !== length) return false;
  return keepAlive;
}

/**
 * Gives up a reply's body unread (and its tunnel).
 *
 * @example
 * ```ts
 * cancelBody(reply);
 * ```
 */
export function cancelBody(reply: UpstreamReply): void {
  const body = reply.body;
  if (body === null || body instanceof Uint8Array) return;
  if (body instanceof ReadableStream) body.cancel().catch(() => {});
  else body.cancel();
  reply.tunnel?.close();
}

function readerSource(stream: ReadableStream<Uint8Array>): BodySource {
  const reader = stream.getReader();
  return {
    async next() {
      const r = await reader.read();
      return r.done ? null : r.value;
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
    },
  };
}
