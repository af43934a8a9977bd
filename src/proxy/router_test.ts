import { assertEquals } from "../../tests/_assert.ts";
import { validateConfig } from "../config/schema.ts";
import { Router } from "./router.ts";

async function router(doc: unknown): Promise<Router> {
  const result = validateConfig(doc);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  const r = new Router();
  await r.applyConfig(result.config, 1, []);
  return r;
}

const backends = ["exact", "wild", "deep", "api", "v2", "fallback"].map((name, i) => ({
  backend_name: name,
  servers: [{ addr: "127.0.0.1", port: 10001 + i }],
}));

Deno.test("router: exact, longest wildcard, then default_backend", async () => {
  const r = await router({
    backends,
    default_backend: "fallback",
    hosts: [
      { host: "www.example.com", backend_name: "exact" },
      { host: "*.example.com", backend_name: "wild" },
      { host: "*.deep.example.com", backend_name: "deep" },
    ],
  });
  const name = (host: string | null) => r.resolve(host, "/")?.pool.name;
  assertEquals(name("www.example.com"), "exact");
  assertEquals(name("WWW.Example.COM.:8443"), "exact");
  assertEquals(name("a.example.com"), "wild");
  assertEquals(name("A.B.Example.com:80"), "wild");
  assertEquals(name("x.deep.example.com"), "deep");
  assertEquals(name("deep.example.com"), "wild");
  assertEquals(name("example.com"), "fallback");
  assertEquals(name("other.test"), "fallback");
  assertEquals(name(null), "fallback");
  assertEquals(r.route("a.example.com")?.name, "wild");
});

Deno.test("router: without default_backend an unknown host has no route", async () => {
  const r = await router({ backends, hosts: [{ host: "*.example.com", backend_name: "wild" }] });
  assertEquals(r.resolve("example.com", "/"), undefined);
  assertEquals(r.resolve(null, "/"), undefined);
});

Deno.test("router: path prefixes of the matched host, with strip_prefix", async () => {
  const r = await router({
    backends,
    hosts: [{
      host: "*.example.com",
      backend_name: "wild",
      paths: [
        { prefix: "/api/", backend_name: "api", strip_prefix: true },
        { prefix: "/api/v2", backend_name: "v2" },
      ],
    }],
  });
  const at = (target: string) => {
    const d = r.resolve("a.example.com", target);
    return [d?.pool.name, d?.strip];
  };
  assertEquals(at("/api/users"), ["api", 4]);
  assertEquals(at("/api"), ["api", 4]);
  assertEquals(at("/api/v2/x"), ["v2", 0]);
  assertEquals(at("/apis"), ["wild", 0]);
  assertEquals(at("/"), ["wild", 0]);
});

Deno.test("router: least_conn still counts requests begun before a config change", async () => {
  const doc = (ports: number[]) => ({
    backends: [{
      backend_name: "lc",
      balancer: "least_conn",
      servers: ports.map((port) => ({ addr: "127.0.0.1", port })),
    }],
    hosts: [{ host: "lc.test", backend_name: "lc" }],
  });
  const r = await router(doc([10001, 10002]));
  const before = r.route("lc.test")!;
  const busy = before.servers[0];
  before.begin(busy);
  before.begin(busy);
  const result = validateConfig(doc([10001, 10002, 10003]));
  if (!result.ok) throw new Error("invalid");
  await r.applyConfig(result.config, 2, []);
  const after = r.route("lc.test")!;
  for (let i = 0; i < 4; i++) {
    const server = after.pick()!;
    assertEquals(server.port === 10001, false, "the busy server is avoided");
    after.begin(server);
  }
  // The old requests end on the same counter: now the first server is the idle one.
  before.end(busy, 5, true);
  before.end(busy, 5, true);
  assertEquals(after.pick()?.port, 10001);
});

Deno.test("router: ewma keeps its latency estimates across a config change", async () => {
  const doc = (hosts: string[]) => ({
    backends: [{
      backend_name: "e",
      balancer: "ewma",
      servers: [{ addr: "127.0.0.1", port: 10001 }, { addr: "127.0.0.1", port: 10002 }],
    }],
    hosts: hosts.map((host) => ({ host, backend_name: "e" })),
  });
  const r = await router(doc(["e.test"]));
  const before = r.route("e.test")!;
  const [slow, fast] = before.servers;
  before.begin(slow);
  before.end(slow, 200, true);
  before.begin(fast);
  before.end(fast, 1, true);
  const result = validateConfig(doc(["e.test", "f.test"]));
  if (!result.ok) throw new Error("invalid");
  await r.applyConfig(result.config, 2, []);
  const after = r.route("e.test")!;
  for (let i = 0; i < 20; i++) assertEquals(after.pick()?.port, 10002);
});
