/**
 * The V8 options dynlb runs with. They must be given when the process starts (`deno run
 * --v8-flags=…`, embedded by `deno compile --v8-flags=…`), so every launcher repeats this string:
 * the tasks in `deno.json`, the release workflow, the tests' and the benchmark's launchers.
 * `v8_flags_test.ts` checks that they agree.
 *
 * `--max-semi-space-size` caps V8's young generation (default up to 16 MB per semi-space, per
 * isolate). The request path makes only short-lived garbage, which a small young generation
 * collects just as well: measured with 2 workers under wrk (c32 and c128, short and 16 KiB
 * bodies), the peak resident set of the process was 163–178 MB at 16, 145–159 at 8, 126–142 at 4
 * and 121–149 at 2, for the same requests/s and CPU per request within noise. 2 MB made the
 * scavenges twice as frequent (~100/s at 9,000 requests/s, 0.5–1 ms each) for no gain: 4 it is.
 *
 * @module
 */

/** The value of `--v8-flags`. */
export const V8_FLAGS = "--max-semi-space-size=4";

/**
 * The `deno run` flag carrying {@link V8_FLAGS}.
 *
 * @example
 * ```ts
 * new Deno.Command(Deno.execPath(), { args: ["run", V8_FLAG_ARG, "-A", "main.ts"] });
 * ```
 */
export const V8_FLAG_ARG = `--v8-flags=${V8_FLAGS}`;
