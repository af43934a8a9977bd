import { assert } from "../tests/_assert.ts";
import { V8_FLAG_ARG } from "./v8_flags.ts";

const root = new URL("../", import.meta.url);

Deno.test("v8 flags: every launcher of dynlb passes the same --v8-flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  for (const task of ["start", "demo", "dev", "compile"]) {
    const command: string = config.tasks[task];
    assert(command.includes(` ${V8_FLAG_ARG} `), `deno.json task "${task}": ${command}`);
  }
  const release = await Deno.readTextFile(new URL(".github/workflows/release.yml", root));
  assert(release.includes(`compile ${V8_FLAG_ARG} `), "release.yml: deno compile without it");
  for (const launcher of ["tests/_dynlb.ts", "bench/peers.ts"]) {
    const text = await Deno.readTextFile(new URL(launcher, root));
    assert(text.includes("V8_FLAG_ARG,"), `${launcher} does not pass V8_FLAG_ARG`);
  }
});
