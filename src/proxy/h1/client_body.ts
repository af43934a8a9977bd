/**
 * A request body read off an h1 client's connection, as the request path's {@link BodySource}.
 *
 * @module
 */
import { codeOfStatus, errorReply } from "../errors.ts";
import type { BodySource, UpstreamReply } from "../transport.ts";
import { type BodyReader, bodyReader } from "./body.ts";
import { relayChunkedReader } from "./chunked_relay.ts";
import { EofError, type Wire } from "./connection.ts";
import type { DeadlineQueue } from "./deadlines.ts";
import { DEFAULT_LIMITS, type HeadLimits, ParseError } from "./parser.ts";
import { RequestError, type RequestHead } from "./request_parser.ts";

/**
 * What a {@link ClientBody} needs of its connection.
 *
 * @example
 * ```ts
 * const body = new ClientBody(connection, head);
 * ```
 */
export interface BodyConnection {
  readonly wire: Wire;
  /** Bounds each body read. */
  readonly bodyDeadlines: DeadlineQueue;
  /** The request head limit, which also bounds chunk lines and trailers. */
  readonly maxHeadBytes: number;
  /** Writes an interim answer (the `100 Continue`). */
  writeInterim(bytes: Uint8Array): Promise<void>;
  /** The body was read to its end. */
  bodyDone(): void;
  /** A body read took too long: answer 408 (unless an answer started) and close. */
  abortBody(): void;
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * A request body read off the client's connection: `Content-Length` or chunked (decoded, or
 * relayed as validated chunked framing when the transport asks: {@link relayChunked}), each read
 * bounded by the body timeout. The first read sends `100 Continue` to a client that waits for it.
 *
 * @example
 * ```ts
 * const body = new ClientBody(connection, head);
 * for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) use(chunk);
 * ```
 */
export class ClientBody implements BodySource {
  readonly #connection: BodyConnection;
  #reader: BodyReader;
  readonly #chunked: boolean;
  #started = false;
  #expectContinue: boolean;
  #ended = false;
  #timedOut = false;
  /** Why the body could not be read (the client's fault), if it could not. */
  failure: UpstreamReply | undefined;

  constructor(connection: BodyConnection, head: RequestHead) {
    this.#connection = connection;
    this.#expectContinue = head.expectContinue;
    this.#chunked = head.chunked;
    this.#reader = bodyReader(
      connection.wire,
      head.chunked ? "chunked" : "length",
      head.contentLength,
      this.#limits(),
    );
  }

  /** Whether the body was read to its end. */
  get complete(): boolean {
    return this.#ended;
  }

  relayChunked(): boolean {
    if (!this.#chunked || this.#started) return false;
    this.#reader = relayChunkedReader(this.#connection.wire, this.#limits());
    return true;
  }

  #limits(): HeadLimits {
    return {
      maxHeadBytes: this.#connection.maxHeadBytes,
      maxHeaders: DEFAULT_LIMITS.maxHeaders,
    };
  }

  async next(): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    if (this.failure !== undefined) throw new BodyReadError();
    this.#started = true;
    if (this.#expectContinue) {
      this.#expectContinue = false;
      await this.#connection.writeInterim(CONTINUE);
    }
    const deadline = this.#connection.bodyDeadlines.add(() => {
      this.#timedOut = true;
      this.#connection.abortBody();
    });
    try {
      const chunk = await this.#reader.next();
      if (chunk === null || this.#reader.complete) {
        this.#ended = true;
        this.#connection.bodyDone();
      }
      return chunk;
    } catch (err) {
      this.failure = this.#timedOut
        ? errorReply("request-timeout", "the request body stopped arriving")
        : err instanceof ParseError
        ? errorReply("bad-request", `invalid request body: ${err.message}`)
        : err instanceof EofError
        ? errorReply("bad-request", "the client closed the connection inside the body")
        : errorReply("bad-request", "the request body could not be read");
      throw new BodyReadError();
    } finally {
      deadline.cancel();
    }
  }

  cancel(): void {
    // Nothing to release: unread bytes stay on the connection, which is then closed.
  }
}

/** Reading the client's body failed; the listener answers with the reason it recorded. */
class BodyReadError extends Error {
  override name = "BodyReadError";
}

/**
 * The answer to a request whose handling failed with `err` (its body could not be read).
 *
 * @example
 * ```ts
 * await writeError(sink, clientFailure(err));
 * ```
 */
export function clientFailure(err: unknown): UpstreamReply {
  if (err instanceof RequestError) return errorReply(codeOfStatus(err.status), err.message);
  if (err instanceof ParseError) return errorReply("bad-request", err.message);
  return errorReply("bad-request", "the request body could not be read");
}
