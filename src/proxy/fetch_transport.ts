/**
 * The `fetch` upstream transport: the design card's path, and the reference behaviour the `h1`
 * transport is tested against. It works around the traps of `fetch` as a proxy client measured
 * on Deno 2.9.6 (see README, "Forwarding with fetch").
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import { upstreamHeaders, withoutHopByHop } from "./hop.ts";
import {
  type TransportTimeouts,
  UpstreamError,
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

  async send(request: UpstreamRequest, upstream: Upstream): Promise<Response> {
    const sent = upstreamHeaders(request.headers, request.forwarded);
    // fetch would add `accept-encoding: gzip,br` (then decode) and `user-agent: Deno/…` when
    // absent; say what the client said instead: no coding preference, no user agent.
    if (!sent.has("accept-encoding")) sent.set("accept-encoding", "identity");
    if (!sent.has("user-agent")) sent.set("user-agent", "");
    const timeout = AbortSignal.timeout(this.#deadlineMs);
    const body = request.body instanceof ReadableStream ? new GuardedBody(request.body) : null;
    let response: Response;
    try {
      response = await fetch(upstream.origin + request.target, {
        method: request.method,
        headers: sent,
        body: body?.stream ?? request.body,
        redirect: "manual",
        client: this.#client,
        signal: AbortSignal.any([request.signal, timeout]),
      });
    } catch (err) {
      throw classify(err, timeout.aborted, body?.started ?? false);
    }
    const headers = withoutHopByHop(response.headers);
    const coding = headers.get("content-encoding");
    if (
      coding !== null && DECODED_BY_FETCH.has(coding.trim().toLowerCase()) &&
      sent.get("accept-encoding") !== "identity"
    ) {
      // The body arrives decoded while the headers still describe the encoded bytes.
      headers.delete("content-encoding");
      headers.delete("content-length");
    }
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Wraps the client's body so that a failed attempt can tell whether any byte was taken from
 * it; an untouched body can be handed to the next server. `highWaterMark: 0` stops the stream
 * from reading ahead before `fetch` asks for data.
 */
class GuardedBody {
  started = false;
  readonly stream: ReadableStream<Uint8Array>;

  constructor(source: ReadableStream<Uint8Array>) {
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    this.stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        this.started = true;
        reader ??= source.getReader();
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => {
        // Leave an untouched source alone so a retry can still send it.
        if (this.started) return (reader ?? source).cancel(reason);
      },
    }, { highWaterMark: 0 });
  }
}

function classify(err: unknown, timedOut: boolean, bodyConsumed: boolean): UpstreamError {
  if (timedOut) {
    return new UpstreamError("timeout", "upstream response timed out", bodyConsumed, err);
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : "";
  const message = cause || (err instanceof Error ? err.message : String(err));
  if (/connect error|connection refused|os error 111|timed out/i.test(cause)) {
    return new UpstreamError("connect", message, bodyConsumed, err);
  }
  return new UpstreamError("broken", message, bodyConsumed, err);
}
