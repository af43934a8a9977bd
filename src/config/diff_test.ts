import { assertEquals } from "../../tests/_assert.ts";
import { diffConfigs, formatDiff, isEmptyDiff } from "./diff.ts";
import { validateConfig } from "./schema.ts";
import type { Config } from "./types.ts";

function config(doc: unknown): Config {
  const result = validateConfig(doc);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.config;
}

const seed = config(
  JSON.parse(await Deno.readTextFile(new URL("../../config.json", import.meta.url))),
);

Deno.test("diff: the same config, and an omitted weight against weight 1, are no change", () => {
  assertEquals(isEmptyDiff(diffConfigs(seed, seed)), true);
  const a = config({
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 1 }] }],
    hosts: [{ host: "A.test", backend_name: "b" }],
  });
  const b = config({
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 1, weight: 1 }] }],
    hosts: [{ host: "a.test", backend_name: "b" }],
  });
  assertEquals(formatDiff(diffConfigs(a, b)), []);
});

Deno.test("diff: backends, servers, weights, hosts and settings added, removed, altered", () => {
  const next = structuredClone(JSON.parse(JSON.stringify(seed))) as {
    backends: Array<Record<string, unknown> & { servers: Array<Record<string, unknown>> }>;
    hosts: Array<Record<string, unknown>>;
  };
  next.backends[1].servers[0].weight = 1; // backend2 10 → 1
  next.backends[1].servers.push({ addr: "127.0.0.1", port: 10003, weight: 1 });
  next.backends[1].servers.splice(1, 1); // - 10002
  delete next.backends[0].health_check;
  next.backends.push({ backend_name: "backend3", servers: [] });
  next.hosts[0].backend_name = "backend2";
  next.hosts.splice(1, 1);
  next.hosts.push({ host: "www.test3.com", backend_name: "backend3" });
  const diff = diffConfigs(seed, config(next));
  assertEquals(formatDiff(diff), [
    "+ backend backend3",
    "~ backend backend1: health_check changed",
    "~ backend backend2: + server 127.0.0.1:10003",
    "~ backend backend2: - server 127.0.0.1:10002",
    "~ backend backend2: weight 127.0.0.1:10001 10 → 1",
    "+ host www.test3.com → backend3",
    "- host www.test2.com (was → backend2)",
    "~ host www.test1.com: backend backend1 → backend2",
  ]);
  assertEquals(diff.hosts_changed, [{
    host: "www.test1.com",
    backend: { from: "backend1", to: "backend2" },
    settings: [],
  }]);
});
