/**
 * The words of an error, for a log field or a message that wraps it: what was thrown, however it
 * was thrown.
 *
 * @module
 */

/**
 * The message of `err`: its `message` (its name when that is empty), the first inner error of an
 * `AggregateError` (what a connect to a name with several addresses throws, e.g. node-redis on
 * `localhost`), or the text of anything thrown that is not an `Error`.
 *
 * @example
 * ```ts
 * errorText(new Error("disk full")); // "disk full"
 * errorText("plain"); // "plain"
 * ```
 */
export function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  return err instanceof Error ? err.message || err.name : String(err);
}
