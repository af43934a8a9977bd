/**
 * Upstream replies as `Response` objects, for the `Deno.serve` listener (the h1 listener writes
 * replies to the socket itself).
 *
 * @module
 */
import { sourceStream, type UpstreamReply } from "./transport.ts";
import { connectionNamed, dropOnForward } from "./hop.ts";

/**
 * Turns a reply into a `Response`. A `Content-Length` stays on it: `Deno.serve` then sends that
 * length instead of chunking, also for a stream body. A reason phrase `Response` refuses (some
 * obs-text) is dropped rather than failing a valid answer.
 *
 * @example
 * ```ts
 * const response = replyToResponse(await transport.exchange(request, upstream));
 * ```
 */
export function replyToResponse(reply: UpstreamReply): Response {
  const body = reply.body;
  const init: ResponseInit = {
    status: reply.status,
    statusText: reply.reason,
    headers: reply.headers,
  };
  const bodyInit = body === null || body instanceof Uint8Array || body instanceof ReadableStream
    ? body
    : sourceStream(body);
  try {
    return new Response(bodyInit, init);
  } catch (err) {
    if (init.statusText === "") throw err;
    return new Response(bodyInit, { ...init, statusText: "" });
  }
}

/**
 * A small `Response` made in the proxy (a redirect, an ACME challenge answer) as a reply, its
 * body read whole.
 *
 * @example
 * ```ts
 * const reply = await responseToReply(new Response("ok"));
 * ```
 */
export async function responseToReply(response: Response): Promise<UpstreamReply> {
  const body = new Uint8Array(await response.arrayBuffer());
  const named = connectionNamed(response.headers);
  const headers: [string, string][] = [];
  for (const pair of response.headers) {
    if (!dropOnForward(pair[0], named, false)) headers.push(pair);
  }
  return {
    status: response.status,
    reason: response.statusText,
    headers,
    contentLength: body.length,
    body,
  };
}
