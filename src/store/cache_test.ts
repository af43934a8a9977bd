import { assertEquals } from "../../tests/_assert.ts";
import { setLogLevel } from "../log.ts";
import { LastGoodCache } from "./cache.ts";

Deno.test("last-good cache: missing reads null, write then read, overwrite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-cache-" });
  try {
    const cache = new LastGoodCache(`${dir}/data/last-good-redis.json`);
    assertEquals(await cache.read(), null);
    await cache.write('{"hosts":[1]}');
    assertEquals(await cache.read(), '{"hosts":[1]}');
    await cache.write('{"hosts":["ü"]}');
    assertEquals(await cache.read(), '{"hosts":["ü"]}');
    // No temp files left behind.
    const names = [];
    for await (const entry of Deno.readDir(`${dir}/data`)) names.push(entry.name);
    assertEquals(names, ["last-good-redis.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("last-good cache: an unwritable location neither throws nor reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-cache-" });
  setLogLevel("error");
  try {
    // A regular file where the directory should be fails for any user, root included.
    await Deno.writeTextFile(`${dir}/blocker`, "");
    const cache = new LastGoodCache(`${dir}/blocker/last-good-kv.json`);
    await cache.write("{}");
    await cache.write("{}");
    assertEquals(await cache.read(), null);
  } finally {
    setLogLevel("info");
    await Deno.remove(dir, { recursive: true });
  }
});
