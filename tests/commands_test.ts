/** The helper commands: `dynlb demo`, `dynlb diff`, `dynlb schema`. */
import { tempDir } from "./_temp.ts";
import { Ajv } from "ajv";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, deadPort } from "./_backend.ts";
import { get, startDynlb } from "./_dynlb.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
interface Seed {
  backends: Array<{ servers: Array<Record<string, unknown>> }>;
  hosts: Array<Record<string, unknown>>;
}
const seed: Seed = JSON.parse(
  await Deno.readTextFile(new URL("../config.json", import.meta.url)),
);

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, out: decode(output.stdout), err: decode(output.stderr) };
}

Deno.test("dynlb demo: two backends answer through the seed's config, 10:1 on www.test2.com", async () => {
  // The defaults are 10001 and 10002; free ports here so parallel runs never collide.
  const ports = [deadPort(), deadPort()];
  const dir = await tempDir("dynlb-demo-");
  await using lb = await startDynlb(["demo", "--demo-ports", ports.join(","), "--data-dir", dir]);
  assertEquals((await get(lb, "www.test1.com")).body, `server-1 (127.0.0.1:${ports[0]})\n`);
  const counts = new Map<string, number>();
  for (let i = 0; i < 110; i++) {
    const r = await get(lb, "www.test2.com");
    assertEquals(r.status, 200);
    counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
  }
  assertEquals(counts.get(`server-1 (127.0.0.1:${ports[0]})\n`), 100);
  assertEquals(counts.get(`server-2 (127.0.0.1:${ports[1]})\n`), 10);
  // The http check of backend2 asks the demo servers' /ping.
  const status = await (await fetch(lb.admin + "/status")).json();
  const backend2 = status.backends.find((b: { backend: string }) => b.backend === "backend2");
  assertEquals(backend2.check, "http");
  assert(
    backend2.servers.every((s: { state: string }) => s.state === "up"),
    JSON.stringify(backend2),
  );
  // The config it runs is the seed's, ports aside.
  const running = await (await fetch(lb.admin + "/config")).json();
  const withPorts = JSON.parse(
    JSON.stringify(seed).replaceAll(":10001", `:${ports[0]}`).replaceAll(":10002", `:${ports[1]}`),
  );
  assertEquals(running.config, withPorts);
});

Deno.test("dynlb demo: a taken port is one clear error", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const dir = await tempDir("dynlb-demo-");
    const r = await run("demo", "--demo-ports", `${port},${deadPort()}`, "--data-dir", dir);
    assertEquals(r.code, 1);
    assertMatch(r.err, new RegExp(`demo backend port 127\\.0\\.0\\.1:${port} is taken`));
  } finally {
    busy.close();
  }
});

Deno.test("dynlb diff: lists what changes, exit 1; same routing exit 0; invalid exit 2", async () => {
  const next = structuredClone(seed);
  next.backends[1].servers[0].weight = 1;
  next.hosts.push({ host: "www.test3.com", backend_name: "backend1" });
  const path = await configFile(next);
  const changed = await run("diff", "config.json", path);
  assertEquals(changed.code, 1, changed.err);
  assertEquals(
    changed.out,
    [
      "~ backend backend2: weight 127.0.0.1:10001 10 → 1",
      "+ host www.test3.com → backend1",
      "",
    ].join("\n"),
  );
  const same = await run("diff", "config.json", await configFile(seed));
  assertEquals([same.code, same.out], [0, "no difference\n"]);
  const bad = await run("diff", "config.json", await configFile({ backends: 1, hosts: [] }));
  assertEquals(bad.code, 2);
  assertMatch(bad.err, /backends: must be an array/);
});

Deno.test("dynlb schema: a JSON Schema the seed passes and a misspelt field fails", async () => {
  const r = await run("schema");
  assertEquals(r.code, 0, r.err);
  const validate = new Ajv({ strict: false }).compile(JSON.parse(r.out));
  assert(validate(seed), JSON.stringify(validate.errors));
  assert(validate({ $schema: "./schema.json", ...seed }));
  const typo = structuredClone(seed);
  typo.backends[0].servers[0].wieght = 1;
  assertEquals(validate(typo), false);
  // dynlb itself accepts the $schema key that editors need.
  const checked = await run("check", "--config-file", await configFile({ $schema: "x", ...seed }));
  assertEquals(checked.code, 0, checked.err);
});
