import { assert, assertEquals, assertMatch } from "../../tests/_assert.ts";
import { ControlPlane } from "../control/control_plane.ts";
import type { DataPlane } from "../control/data_plane.ts";
import type { BackendStatus } from "../health/types.ts";
import { setLogLevel } from "../log.ts";
import { Router } from "../proxy/router.ts";
import { FileStore } from "../store/file.ts";
import { type ConfigStore, type StoredConfig, StoreUnavailableError } from "../store/store.ts";
import { createAdminApp } from "./app.ts";

const CONFIG = {
  backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 10001 }] }],
  hosts: [{ host: "a.test", backend_name: "b" }],
};

/** A store whose reads work and whose writes always fail, as a store that went away. */
class UnwritableStore implements ConfigStore {
  readonly kind = "test";
  readonly location = "unwritable";
  load(): Promise<StoredConfig | null> {
    return Promise.resolve({ text: JSON.stringify(CONFIG), revision: "1" });
  }
  save(): Promise<StoredConfig> {
    return Promise.reject(new StoreUnavailableError("disk on fire"));
  }
  watch(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const STATUS: BackendStatus[] = [{
  backend: "b",
  check: "none",
  servers: [{
    server: "127.0.0.1:10001",
    state: "up",
    weight: 1,
    passes: 0,
    failures: 0,
    last_check: null,
    last_error: null,
    last_change: null,
  }],
}];

interface Fixture {
  readonly app: ReturnType<typeof createAdminApp>;
  readonly control: ControlPlane;
  readonly router: Router;
  readonly path: string;
}

async function withApp(
  fn: (f: Fixture) => Promise<void>,
  options: {
    store?: ConfigStore;
    maxBodyBytes?: number;
    /** The data plane around the router (default: the router itself). */
    dataPlane?: (router: Router) => DataPlane;
  } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-admin-" });
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(path, JSON.stringify(CONFIG));
  const router = new Router();
  const control = new ControlPlane({
    store: options.store ?? new FileStore(path),
    dataPlane: options.dataPlane?.(router) ?? router,
  });
  setLogLevel("error");
  try {
    await control.start();
    const app = createAdminApp({
      control,
      status: () => STATUS,
      maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
    });
    await fn({ app, control, router, path });
  } finally {
    setLogLevel("info");
    await Deno.remove(dir, { recursive: true });
  }
}

function post(
  app: Fixture["app"],
  body: string,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<Response> {
  return Promise.resolve(app.request("/config", { method: "POST", body, headers }));
}

function other(host: string, port: number): string {
  return JSON.stringify({
    backends: [{ backend_name: "x", servers: [{ addr: "127.0.0.1", port }] }],
    hosts: [{ host, backend_name: "x" }],
  });
}

Deno.test("admin: POST /config applies in memory and answers 200 with version and hash", async () => {
  await withApp(async ({ app, router, path }) => {
    const res = await post(app, other("b.test", 10002));
    assertEquals(res.status, 200);
    assertMatch(res.headers.get("content-type") ?? "", /application\/json/);
    const body = await res.json();
    assertEquals(Object.keys(body).sort(), ["hash", "saved", "version"]);
    assertEquals([body.version, body.saved], [2, false]);
    assertMatch(body.hash, /^[0-9a-f]{64}$/);
    assertEquals(router.route("b.test")?.pick()?.port, 10002);
    assertEquals(JSON.parse(await Deno.readTextFile(path)), CONFIG);
  });
});

Deno.test("admin: x-save 1, true, yes, on (any case) write the store; others do not", async () => {
  await withApp(async ({ app, path }) => {
    let port = 10100;
    for (const value of ["1", "true", "yes", "on", "YES", " On "]) {
      const res = await post(app, other("s.test", ++port), {
        "content-type": "application/json",
        "x-save": value,
      });
      assertEquals(res.status, 200);
      assertEquals((await res.json()).saved, true, `x-save: ${value}`);
      assertEquals(
        JSON.parse(await Deno.readTextFile(path)).backends[0].servers[0].port,
        port,
        `x-save: ${value} did not write`,
      );
    }
    const before = await Deno.readTextFile(path);
    for (const value of ["0", "false", "no", "off", "", "2"]) {
      const res = await post(app, other("m.test", ++port), {
        "content-type": "application/json",
        "x-save": value,
      });
      assertEquals((await res.json()).saved, false, `x-save: ${value}`);
    }
    assertEquals(await Deno.readTextFile(path), before);
  });
});

Deno.test("admin: an invalid config is 400 with every issue, and nothing changes", async () => {
  await withApp(async ({ app, control, path }) => {
    const bad = JSON.stringify({
      backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 70000 }] }],
      hosts: [{ host: "a.test", backend_name: "nope", wieght: 1 }],
    });
    const res = await post(app, bad, { "content-type": "application/json", "x-save": "1" });
    assertEquals(res.status, 400);
    const body = await res.json();
    assertEquals(body.error, "invalid config, nothing changed");
    assertEquals(body.issues.map((i: { path: string }) => i.path).sort(), [
      "backends[0].servers[0].port",
      "hosts[0].wieght",
    ]);
    assert(body.issues.every((i: { message: string }) => typeof i.message === "string"));
    const syntax = await post(app, "{");
    assertEquals(syntax.status, 400);
    assertEquals((await syntax.json()).issues.length, 1);
    assertEquals(control.running.version, 1);
    assertEquals(JSON.parse(await Deno.readTextFile(path)), CONFIG);
  });
});

Deno.test("admin: a body over the limit is 413, with or without Content-Length", async () => {
  await withApp(async ({ app, control }) => {
    const big = other("b.test", 10002) + " ".repeat(2000);
    const res = await post(app, big, {
      "content-type": "application/json",
      "content-length": String(new TextEncoder().encode(big).length),
    });
    assertEquals(res.status, 413);
    assertMatch((await res.json()).error, /larger than 1024 bytes/);
    const stream = new Blob([big]).stream();
    const chunked = await app.request("/config", {
      method: "POST",
      body: stream,
      headers: { "content-type": "application/json" },
    });
    assertEquals(chunked.status, 413);
    await chunked.body?.cancel();
    assertEquals(control.running.version, 1);
  }, { maxBodyBytes: 1024 });
});

Deno.test("admin: a Content-Type other than JSON is 415", async () => {
  await withApp(async ({ app, control }) => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
      const res = await post(app, other("b.test", 10002), { "content-type": type });
      assertEquals(res.status, 415, type);
      assertMatch((await res.json()).error, /Content-Type must be application\/json/);
    }
    // Bytes get no Content-Type from Request itself (a string would get text/plain).
    const none = await app.request("/config", {
      method: "POST",
      body: new TextEncoder().encode(other("b.test", 10002)),
    });
    assertEquals(none.status, 415);
    assertMatch((await none.json()).error, /\(got none\)/);
    for (
      const type of [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.x+json",
      ]
    ) {
      const res = await post(app, other("b.test", 10002), { "content-type": type });
      assertEquals(res.status, 200, type);
      await res.body?.cancel();
    }
    assertEquals(control.running.version, 4);
  });
});

Deno.test("admin: x-save with an unwritable store is 503 and nothing changes", async () => {
  await withApp(async ({ app, control, router }) => {
    const res = await post(app, other("b.test", 10002), {
      "content-type": "application/json",
      "x-save": "1",
    });
    assertEquals(res.status, 503);
    assertEquals((await res.json()).error, "store unavailable, nothing changed: disk on fire");
    assertEquals(control.running.version, 1);
    assertEquals(router.route("b.test"), undefined);
    // Without x-save the same store takes a memory-only config.
    const memory = await post(app, other("b.test", 10002));
    assertEquals(memory.status, 200);
    await memory.body?.cancel();
  }, { store: new UnwritableStore() });
});

Deno.test("admin: GET /config shows the running config", async () => {
  await withApp(async ({ app }) => {
    const first = await (await app.request("/config")).json();
    assertEquals(Object.keys(first).sort(), [
      "applied_at",
      "config",
      "hash",
      "saved",
      "source",
      "version",
    ]);
    assertEquals([first.version, first.source, first.saved], [1, "store", true]);
    assertEquals(first.config, CONFIG);
    assert(!Number.isNaN(Date.parse(first.applied_at)));
    const posted = other("b.test", 10002);
    const answer = await (await post(app, posted)).json();
    const now = await (await app.request("/config")).json();
    assertEquals([now.version, now.source, now.saved, now.hash], [
      2,
      "admin",
      false,
      answer.hash,
    ]);
    assertEquals(now.config, JSON.parse(posted));
  });
});

Deno.test("admin: GET /config and /status never name an older config than requests are routed by", async () => {
  // As a worker pool: one isolate routes by the new config while another still compiles it.
  let switched: PromiseWithResolvers<void> | undefined;
  let lagging: PromiseWithResolvers<void> | undefined;
  const dataPlane = (router: Router): DataPlane => ({
    async applyConfig(config, version, down) {
      await router.applyConfig(config, version, down);
      switched?.resolve();
      await lagging?.promise;
    },
    setHealth: (backend, server, up) => router.setHealth(backend, server, up),
  });
  await withApp(async ({ app, router }) => {
    const before = await (await app.request("/config")).json();
    switched = Promise.withResolvers();
    lagging = Promise.withResolvers();
    const change = post(app, other("b.test", 10002));
    await switched.promise;
    assertEquals(router.route("b.test")?.pick()?.port, 10002, "part of the data plane switched");
    const config = Promise.resolve(app.request("/config"));
    const status = Promise.resolve(app.request("/status"));
    const tick = new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), 0));
    assertEquals(await Promise.race([config.then(() => "answered"), tick]), "pending");
    lagging.resolve();
    const answer = await (await change).json();
    const now = await (await config).json();
    assertEquals([now.version, now.hash], [2, answer.hash]);
    assert(now.hash !== before.hash);
    assertEquals((await (await status).json()).hash, answer.hash);
  }, { dataPlane });
});

Deno.test("admin: GET /status and /healthz", async () => {
  await withApp(async ({ app, control }) => {
    const status = await app.request("/status");
    assertEquals(status.status, 200);
    assertEquals(await status.json(), {
      version: 1,
      hash: control.running.hash,
      backends: STATUS,
    });
    const health = await app.request("/healthz");
    assertEquals([health.status, await health.json()], [200, { ok: true }]);
  });
});

Deno.test("admin: unknown routes are 404 JSON", async () => {
  await withApp(async ({ app }) => {
    for (const [method, path] of [["GET", "/nope"], ["DELETE", "/config"], ["GET", "/"]]) {
      const res = await app.request(path, { method });
      assertEquals(res.status, 404, `${method} ${path}`);
      assertEquals(await res.json(), { error: `no route ${method} ${path}` });
    }
  });
});
