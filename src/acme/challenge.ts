/**
 * The HTTP-01 challenge responder (RFC 8555 §8.3): `GET /.well-known/acme-challenge/TOKEN` on
 * the plain listener is answered before any routing, for every host, with the key authorization
 * the ACME side knows for that token (its own, or another instance's from the store). Unknown
 * tokens are routed as any request.
 *
 * @module
 */

/** The path prefix the CA requests. */
export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** Finds the key authorization of a token; `null` when unknown. Never rejects. */
export type ChallengeLookup = (token: string) => Promise<string | null>;

/**
 * The response to a challenge request for `target` (path and query as sent), or `null` when the
 * token is unknown to the fleet: the request then goes on to routing, so a backend that runs
 * its own ACME client behind dynlb keeps answering its challenges.
 *
 * @example
 * ```ts
 * const answer = target.startsWith(CHALLENGE_PREFIX)
 *   ? await challengeResponse(target, lookup)
 *   : null;
 * if (answer !== null) return answer;
 * ```
 */
export async function challengeResponse(
  target: string,
  lookup: ChallengeLookup,
): Promise<Response | null> {
  const end = target.indexOf("?");
  const token = target.slice(CHALLENGE_PREFIX.length, end === -1 ? undefined : end);
  const answer = await lookup(token).catch(() => null);
  if (answer === null) return null;
  return new Response(answer, { headers: { "content-type": "application/octet-stream" } });
}
