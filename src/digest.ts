/**
 * Hex digests of config text, for revisions and hashes.
 *
 * @module
 */

/**
 * The hex digest of `data` (text is hashed as UTF-8).
 *
 * @example
 * ```ts
 * await hexDigest("SHA-256", '{"backends": [], "hosts": []}');
 * ```
 */
export async function hexDigest(
  algorithm: "SHA-1" | "SHA-256",
  data: string | Uint8Array<ArrayBuffer>,
): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest(algorithm, bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
