/**
 * The few assertions the tests use, on top of `node:assert` (JSR's `@std/assert` cannot be
 * fetched here).
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Fails unless `actual` deep-equals `expected`. */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Fails unless `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(text, pattern, message);
}

/** Fails unless `fn` throws (or rejects); returns the error. */
export async function assertRejects(fn: () => unknown, message?: string): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new nodeAssert.AssertionError({ message: message ?? "expected a rejection" });
}
