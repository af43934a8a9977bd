/**
 * Temporary directories for tests, removed when the test module's run ends (pass or fail), so a
 * full run leaves nothing behind in the system's temporary folder.
 *
 * @module
 */

const made = new Set<string>();

globalThis.addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Already removed by the test.
    }
  }
});

/**
 * A fresh temporary directory, removed at the end of the test module at the latest.
 *
 * @example
 * ```ts
 * const dir = await tempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, "{}");
 * ```
 */
export async function tempDir(prefix = "dynlb-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  made.add(dir);
  return dir;
}
