import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { writeFileAtomic } from "./atomic.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

Deno.test("atomic write: temp file synced, renamed over the file, then the directory synced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-atomic-" });
  // Records the real file-system calls in order (they still go through).
  const steps: string[] = [];
  const open = Deno.open;
  const rename = Deno.rename;
  const sync = Deno.FsFile.prototype.sync;
  const opened = new WeakMap<Deno.FsFile, string>();
  try {
    Deno.open = async (path, options) => {
      const file = await open(path, options);
      opened.set(file, String(path));
      steps.push(`open ${String(path).replace(/\.config\.json\.[^/]+\.tmp$/, "TEMP")}`);
      return file;
    };
    Deno.rename = async (from, to) => {
      steps.push(`rename ${String(from).replace(/\.config\.json\.[^/]+\.tmp$/, "TEMP")} ${to}`);
      await rename(from, to);
    };
    Deno.FsFile.prototype.sync = function (this: Deno.FsFile) {
      steps.push(`sync ${opened.get(this)?.replace(/\.config\.json\.[^/]+\.tmp$/, "TEMP")}`);
      return sync.call(this);
    };
    await writeFileAtomic(`${dir}/config.json`, "{}\n");
  } finally {
    Deno.open = open;
    Deno.rename = rename;
    Deno.FsFile.prototype.sync = sync;
  }
  try {
    assertEquals(steps, [
      `open ${dir}/TEMP`,
      `sync ${dir}/TEMP`,
      `rename ${dir}/TEMP ${dir}/config.json`,
      `open ${dir}`,
      `sync ${dir}`,
    ]);
    assertEquals(await Deno.readTextFile(`${dir}/config.json`), "{}\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic write: a rename that fails leaves no temporary file and the target as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-atomic-" });
  try {
    // A non-empty directory where the file should go: the temporary file is written and synced,
    // then the rename fails.
    await Deno.mkdir(`${dir}/config.json`);
    await Deno.writeTextFile(`${dir}/config.json/keep`, "x");
    await assertRejects(() => writeFileAtomic(`${dir}/config.json`, "{}\n"));
    assertEquals(await names(dir), ["config.json"]);
    assert((await Deno.stat(`${dir}/config.json`)).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
