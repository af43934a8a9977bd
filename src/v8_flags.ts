/**
 * The V8 options dynlb runs with. They must be given when the process starts (`deno run
 * --v8-flags=…`, embedded by `deno compile --v8-flags=…`), so every launcher repeats this string:
 * the tasks in `deno.json`, the release workflow, the tests' and the benchmark's launchers.
 * `v8_flags_test.ts` checks that they agree.
 *
 * `--max-semi-space-size` caps V8's young generation (default up to 16 MB per semi-space, per
 * isolate). The request path makes only short-lived garbage, which a small young generation
 * collects just as well and more often: measured on the `throughput` bench with 2 workers, the
 * peak resident set fell from 180–320 MB to 130–150 MB, with shorter GC pauses in the latency
 * tail and no loss of throughput.
 *
 * @module
 */

/** The value of `--v8-flags`. */
export const V8_FLAGS = "--max-semi-space-size=2";

/**
 * The `deno run` flag carrying {@link V8_FLAGS}.
 *
 * @example
 * ```ts
 * new Deno.Command(Deno.execPath(), { args: ["run", V8_FLAG_ARG, "-A", "main.ts"] });
 * ```
 */
export const V8_FLAG_ARG = `--v8-flags=${V8_FLAGS}`;
