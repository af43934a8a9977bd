/**
 * The `fetch` upstream transport: the design card's path, and the reference behaviour the `h1`
 * transport is tested against. It works around the traps of `fetch` as a proxy client measured
 * on Deno 2.9.6 (see README, "Forwarding with fetch").
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import { connectionNamed, dropOnForward, upstreamHeaders } from "./hop.ts";
import { errorText } from "../error_text.ts";
import { replyToResponse } from "./reply.ts";
import {
  type BodySource,
  sourceStream,
  streamSource,
  type TransportTimeouts,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "./transport.ts";

/** `fetch` transparently decodes exactly these content codings (unless asked for `identity`). */
const DECODED_BY_FETCH = new Set(["gzip", "br"]);

/**
 * Forwards with `fetch` over one HTTP/1.1 client that may send the client's `Host` and keeps
 * upstream connections alive.
 *
 * One deadline bounds connect and response head together: `fetch` has no separate connect
 * timeout, so the deadline is `connectMs + responseMs`. A connect failure is recognised from
 * the error's cause.
 *
 * @example
 * ```ts
 * const transport = new FetchTransport({ connectMs: 5000, responseMs: 60000 });
 * ```
 */
export class FetchTransport implements UpstreamTransport {
  readonly name = "fetch";
  #client: Deno.HttpClient;
  #deadlineMs: number;

  constructor(timeouts: TransportTimeouts, options: { maxIdlePerServer?: number } = {}) {
    this.#client = Deno.createHttpClient({
      allowHost: true,
      http1: true,
      http2: false,
      poolMaxIdlePerHost: options.maxIdlePerServer ?? 128,
      poolIdleTimeout: 60_000,
    });
    this.#deadlineMs = timeouts.connectMs + timeouts.responseMs;
  }

  async exchange(request: UpstreamRequest, upstream: Upstream): Promise<UpstreamReply> {
    const sent = upstreamHeaders(request.headers, request.forwarded);
    // fetch would add `accept-encoding: gzip,br` (then decode) and `user-agent: Deno/…` when
    // absent; say what the client said instead: no coding preference, no user agent.
    if (!sent.has("accept-encoding")) sent.set("accept-encoding", "identity");
    if (!sent.has("user-agent")) sent.set("user-agent", "");
    const timeout = AbortSignal.timeout(this.#deadlineMs);
    const source = request.body;
    const body = source === null || source instanceof Uint8Array ? null : new GuardedBody(
      source instanceof ReadableStream ? streamSource(source) : source,
    );
    let response: Response;
    try {
      response = await fetch(upstream.origin + request.target, {
        method: request.method,
        headers: sent,
        body: body?.stream ?? (source as Uint8Array<ArrayBuffer> | null),
        redirect: "manual",
        client: this.#client,
        signal: AbortSignal.any([request.signal, timeout]),
      });
    } catch (err) {
      throw classify(err, timeout.aborted, body?.started ?? false);
    }
    const coding = response.headers.get("content-encoding");
    // The body arrives decoded while the headers still describe the encoded bytes.
    const decoded = coding !== null && DECODED_BY_FETCH.has(coding.trim().toLowerCase()) &&
      sent.get("accept-encoding") !== "identity";
    const named = connectionNamed(response.headers);
    const headers: [string, string][] = [];
    for (const pair of response.headers) {
      const name = pair[0];
      if (dropOnForward(name, named, false)) continue;
      if (decoded && (name === "content-encoding" || name === "content-length")) continue;
      headers.push(pair);
    }
    const length = response.headers.get("content-length");
    return {
      status: response.status,
      reason: response.statusText,
      headers,
      contentLength: length === null || decoded ? -1 : Number(length),
      body: response.body,
    };
  }

  /** {@link exchange} as a `Response`. */
  async send(request: UpstreamRequest, upstream: Upstream): Promise<Response> {
    return replyToResponse(await this.exchange(request, upstream));
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Wraps the client's body so that a failed attempt can tell whether any byte was taken from
 * it; an untouched body can be handed to the next server. {@link sourceStream} reads nothing
 * ahead of what `fetch` asks for.
 */
class GuardedBody {
  started = false;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(source: BodySource) {
    this.stream = sourceStream({
      next: () => {
        this.started = true;
        return source.next();
      },
      cancel: (reason) => {
        // Leave an untouched source alone so a retry can still send it.
        if (this.started) source.cancel(reason);
      },
    });
  }
}

/**
 * Turns a `fetch` rejection into a typed {@link UpstreamError}. Deno 2.9.6 gives `fetch`
 * failures no error class or code (the cause is a plain `Error`), so this is the one place that
 * reads the text: hyper's `client error (Connect)` marks a failure before anything was sent.
 */
function classify(err: unknown, timedOut: boolean, bodyConsumed: boolean): UpstreamError {
  if (timedOut) {
    return new UpstreamError("timeout", "upstream response timed out", bodyConsumed, err);
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : "";
  const message = cause || errorText(err);
  if (cause.includes("client error (Connect)")) {
    return new UpstreamError("connect", message, bodyConsumed, err);
  }
  return new UpstreamError("broken", message, bodyConsumed, err);
}
