/**
 * The HTTP-01 challenge responder (RFC 8555 §8.3): `GET /.well-known/acme-challenge/TOKEN` on
 * the plain listener is answered before any routing, for every host, with the key authorization
 * the ACME side knows for that token (its own, or another instance's from the store).
 *
 * @module
 */

/** The path prefix the CA requests. */
export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** Finds the key authorization of a token; `null` when unknown. Never rejects. */
export type ChallengeLookup = (token: string) => Promise<string | null>;

/**
 * The response to a challenge request for `target` (path and query as sent).
 *
 * @example
 * ```ts
 * if (target.startsWith(CHALLENGE_PREFIX)) return await challengeResponse(target, lookup);
 * ```
 */
export async function challengeResponse(
  target: string,
  lookup: ChallengeLookup,
): Promise<Response> {
  const end = target.indexOf("?");
  const token = target.slice(CHALLENGE_PREFIX.length, end === -1 ? undefined : end);
  const answer = await lookup(token).catch(() => null);
  if (answer === null) {
    return new Response("unknown ACME challenge\n", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  return new Response(answer, { headers: { "content-type": "application/octet-stream" } });
}
