/**
 * Secrets never leave through the admin API: the inline private keys of `tls.certificates` are
 * replaced by `"<redacted>"` in every document it shows (the running config, history).
 *
 * @module
 */

/** What a redacted secret reads as. */
export const REDACTED = "<redacted>";

/**
 * A copy of `document` (parsed JSON) with each `tls.certificates[].key` replaced by
 * {@link REDACTED}; anything else is returned as is (shared, not copied).
 *
 * @example
 * ```ts
 * redactSecrets({ tls: { certificates: [{ cert: "…", key: "…" }] } });
 * // { tls: { certificates: [{ cert: "…", key: "<redacted>" }] } }
 * ```
 */
export function redactSecrets(document: unknown): unknown {
  if (!isObject(document) || !isObject(document.tls)) return document;
  const certificates = document.tls.certificates;
  if (!Array.isArray(certificates)) return document;
  return {
    ...document,
    tls: {
      ...document.tls,
      certificates: certificates.map((c) =>
        isObject(c) && "key" in c ? { ...c, key: REDACTED } : c
      ),
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `text` (a stored JSON document) with its secrets redacted; the text itself when it has none.
 *
 * @example
 * ```ts
 * redactText('{"backends": [], "hosts": []}'); // the same text
 * ```
 */
export function redactText(text: string): string {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return text;
  }
  const redacted = redactSecrets(document);
  return redacted === document ? text : JSON.stringify(redacted, null, 2) + "\n";
}
