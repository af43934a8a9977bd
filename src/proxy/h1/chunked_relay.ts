/**
 * Reads a chunked request body for relaying to an HTTP/1.1 server without re-chunking: each
 * piece handed out is the client's chunked coding, validated by the same strict decoder as a
 * decoded body (hex sizes of at most 13 digits, bounded lines and trailers), with the client's
 * chunk sizes and data kept byte for byte.
 *
 * What is not passed on: chunk extensions, whitespace before them, and trailer fields. The
 * issue's rule is "chunk extensions and trailers bounded and dropped", and dropping them is also
 * what keeps the relay safe: extensions are where parsers disagree most (quoted strings, bare LF,
 * odd whitespace — the classic smuggling vectors), and trailer fields would reach the server past
 * every header rule the edge applies (hop-by-hop list, forwarding headers), while `Trailer` itself
 * is hop-by-hop and removed. So the server gets clean framing — `SIZE CRLF data CRLF` … `0 CRLF
 * CRLF` — that a strict parser wrote, not the client's bytes; the data is the client's.
 *
 * A malformed chunk throws before any byte of the read that holds it is handed out, so the server
 * never sees the last chunk of a body that was refused (the transport then closes its connection).
 *
 * @module
 */
import { type BodyReader, CodedChunkedBody } from "./body.ts";
import type { Wire } from "./connection.ts";
import type { HeadLimits } from "./parser.ts";

/**
 * A chunked body reader handing out clean chunked framing with the client's data.
 *
 * @example
 * ```ts
 * const body = relayChunkedReader(wire, DEFAULT_LIMITS);
 * for (let c = await body.next(); c !== null; c = await body.next()) await upstream.write(c);
 * ```
 */
export function relayChunkedReader(wire: Wire, limits: HeadLimits): BodyReader {
  return new CodedChunkedBody(
    wire,
    limits,
    true,
    "the client closed the connection inside a chunked body",
  );
}
