/**
 * The admin API and the file store end to end: POST with and without `x-save`, hand edits of
 * the file, invalid input that changes nothing.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, editFile, startBackend } from "./_backend.ts";
import { eventually, get, modeTest, postConfig, startDynlb } from "./_dynlb.ts";

async function running(lb: { admin: string }): Promise<Record<string, unknown>> {
  return await (await fetch(lb.admin + "/config")).json();
}

modeTest(
  "POST /config without x-save changes memory only, until the file changes",
  "every",
  async (mode) => {
    await using a = await startBackend("a");
    await using b = await startBackend("b");
    const initial = configOf({ "x.test": [{ port: a.port }] });
    const path = await configFile(initial);
    const fileBefore = await Deno.readTextFile(path);
    await using lb = await startDynlb(["--config-file", path], { mode });

    const posted = await postConfig(lb, configOf({ "x.test": [{ port: b.port }] }));
    assertEquals(posted.status, 200);
    assertEquals(posted.body.version, 2);
    assertEquals(posted.body.saved, false);
    assertEquals((await get(lb, "x.test")).body, "b");
    assertEquals(await Deno.readTextFile(path), fileBefore);
    assertEquals((await running(lb)).saved, false);

    // The file itself changing is what ends the memory-only config.
    await editFile(path, JSON.stringify(configOf({ "y.test": [{ port: a.port }] })));
    await eventually(async () => (await get(lb, "y.test")).body === "a", 5000, "file edit applied");
    assertEquals((await get(lb, "x.test")).status, 404);
  },
);

modeTest(
  "POST /config with x-save writes the file atomically and reads back the same",
  "default",
  async (mode) => {
    await using a = await startBackend("a");
    const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
    await using lb = await startDynlb(["--config-file", path], { mode });

    const next = configOf({ "saved.test": [{ port: a.port, weight: 3 }] });
    const posted = await postConfig(lb, next, true);
    assertEquals(posted.status, 200);
    assertEquals(posted.body.saved, true);
    assertEquals(JSON.parse(await Deno.readTextFile(path)), next);
    assertEquals((await get(lb, "saved.test")).body, "a");
    const view = await running(lb);
    assertEquals(view.config, next);
    assertEquals(view.version, 2);
    // No temporary files left beside the config.
    const dir = path.slice(0, path.lastIndexOf("/"));
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names, ["config.json"]);

    // The saved file is not re-applied as a change of its own.
    await lb.stop();
    assert(!/version=3/.test(lb.logs()), lb.logs());
  },
);

modeTest("the seed's example config and curl command work verbatim", "default", async (mode) => {
  const path = await configFile(JSON.parse(await Deno.readTextFile("config.json")));
  await using lb = await startDynlb(["--config-file", path], { mode });
  const seed = await Deno.readTextFile("config.json");
  const curl = new Deno.Command("curl", {
    args: [
      "-s",
      "-XPOST",
      `${lb.admin}/config`,
      "-H",
      "x-save: 1",
      "-H",
      "Content-Type: application/json",
      "--data",
      seed,
    ],
    stdout: "piped",
  });
  const out = await curl.output();
  assertEquals(out.code, 0);
  const body = JSON.parse(new TextDecoder().decode(out.stdout));
  assertEquals(body.version, 2);
  assertEquals(JSON.parse(await Deno.readTextFile(path)), JSON.parse(seed));
});

modeTest(
  "an invalid POST is refused with every problem and changes nothing",
  "default",
  async (mode) => {
    await using a = await startBackend("a");
    const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
    const fileBefore = await Deno.readTextFile(path);
    await using lb = await startDynlb(["--config-file", path, "--max-config-bytes", "4096"], {
      mode,
    });
    const before = await running(lb);

    const bad = await postConfig(lb, {
      backends: [
        { backend_name: "a", servers: [{ addr: "127.0.0.1", port: 70000, weight: 0 }] },
        {
          backend_name: "b",
          health_check: { type: "http" },
          servers: [{ addr: "127.0.0.1", port: 1, wieght: 2 }],
        },
      ],
      hosts: [{ host: "x.test", backend_name: "a" }],
    }, true);
    assertEquals(bad.status, 400);
    const paths = (bad.body.issues as Array<{ path: string }>).map((i) => i.path).sort();
    assertEquals(paths, [
      "backends[0].servers[0].port",
      "backends[0].servers[0].weight",
      "backends[1].health_check.uri",
      "backends[1].servers[0].wieght",
    ]);

    const crossRef = await postConfig(
      lb,
      configOf({ "x.test": [] }).hosts.length === 1
        ? { backends: [], hosts: [{ host: "x.test", backend_name: "missing" }] }
        : {},
    );
    assertEquals(crossRef.status, 400);
    assertMatch(JSON.stringify(crossRef.body.issues), /hosts\[0\]\.backend_name.*no backend named/);

    const notJson = await postConfig(lb, "{ backends: ", true);
    assertEquals(notJson.status, 400);
    assertMatch(JSON.stringify(notJson.body), /invalid JSON/);

    const form = await fetch(lb.admin + "/config", { method: "POST", body: "a=1" });
    assertEquals(form.status, 415);
    await form.body?.cancel();

    const huge = await postConfig(lb, { backends: [], hosts: [], pad: "x".repeat(10_000) }, true);
    assertEquals(huge.status, 413);

    assertEquals(await running(lb), before);
    assertEquals(await Deno.readTextFile(path), fileBefore);
    assertEquals((await get(lb, "x.test")).body, "a");
  },
);

modeTest(
  "an invalid edit of the file is logged once and the last good config keeps serving",
  "default",
  async (mode) => {
    await using a = await startBackend("a");
    await using b = await startBackend("b");
    const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
    await using lb = await startDynlb(["--config-file", path], { mode });

    await editFile(path, '{"backends": [], "hosts": [{"host": "x.test"}]}');
    await lb.waitForLog("stored config is invalid");
    assertMatch(lb.logs(), /hosts\[0\]\.backend_name: is required/);
    assertEquals((await get(lb, "x.test")).body, "a");

    // A later valid edit is applied.
    await editFile(path, JSON.stringify(configOf({ "x.test": [{ port: b.port }] })));
    await eventually(
      async () => (await get(lb, "x.test")).body === "b",
      5000,
      "valid edit applied",
    );
    assertEquals(lb.logs().split("stored config is invalid").length - 1, 1);
  },
);
