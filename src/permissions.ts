/**
 * dynlb's own Deno permissions: those of `deno task start` and the compiled executable (see
 * `deno.json`), which the tests' and the benchmark's launchers use too. No `--allow-all`: it is
 * what users run, so what the tests run (Deno then keeps `/proc` unreadable, for one).
 *
 * @module
 */

/**
 * The permission flags of `deno run`.
 *
 * @example
 * ```ts
 * new Deno.Command(Deno.execPath(), { args: ["run", ...RUN_PERMISSIONS, "main.ts"] });
 * ```
 */
export const RUN_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
];
