/**
 * Routing end to end: wildcard hosts, `default_backend` and path prefixes (with
 * `strip_prefix`), through `main.ts` as a subprocess in front of real loopback backends.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { type Backend, configFile, startBackend } from "./_backend.ts";
import { get, modeTest, postConfig, startDynlb } from "./_dynlb.ts";

/** A backend answering `name path` (the path and query it received). */
function echo(name: string): Promise<Backend> {
  return startBackend(name, (request) => {
    const url = request.url;
    return new Response(`${name} ${url.slice(url.indexOf("/", url.indexOf("://") + 3))}`);
  });
}

function backend(b: Backend) {
  return { backend_name: b.name, servers: [{ addr: "127.0.0.1", port: b.port }] };
}

modeTest(
  "wildcard hosts: exact wins, then the longest wildcard; default_backend takes the rest",
  "every",
  async (mode) => {
    await using exact = await echo("exact");
    await using wild = await echo("wild");
    await using deep = await echo("deep");
    await using other = await echo("other");
    const config = {
      backends: [backend(exact), backend(wild), backend(deep), backend(other)],
      hosts: [
        { host: "www.example.test", backend_name: "exact" },
        { host: "*.example.test", backend_name: "wild" },
        { host: "*.eu.example.test", backend_name: "deep" },
      ],
    };
    await using lb = await startDynlb(["--config-file", await configFile(config)], { mode });
    const body = async (host: string) => (await get(lb, host)).body;
    assertEquals(await body("www.example.test"), "exact /");
    assertEquals(await body("WWW.Example.Test.:8080"), "exact /");
    assertEquals(await body("shop.example.test"), "wild /");
    assertEquals(await body("a.b.example.test"), "wild /");
    assertEquals(await body("fr.eu.example.test"), "deep /");
    assertEquals(await body("eu.example.test"), "wild /");
    const bare = await get(lb, "example.test");
    assertEquals(bare.status, 404);
    assertMatch(bare.body, /no backend for host "example\.test"/);

    // default_backend arrives with a config change: unknown hosts go there instead of a 404.
    const posted = await postConfig(lb, { ...config, default_backend: "other" });
    assertEquals(posted.status, 200);
    assertEquals(await body("example.test"), "other /");
    assertEquals(await body("unknown.test"), "other /");
    assertEquals(await body("www.example.test"), "exact /");
  },
);

modeTest("path prefixes: longest whole-segment match, strip_prefix", "default", async (mode) => {
  await using site = await echo("site");
  await using api = await echo("api");
  await using v2 = await echo("v2");
  await using assets = await echo("assets");
  const config = {
    backends: [backend(site), backend(api), backend(v2), backend(assets)],
    hosts: [{
      host: "*.shop.test",
      backend_name: "site",
      paths: [
        { prefix: "/api/", backend_name: "api", strip_prefix: true },
        { prefix: "/api/v2", backend_name: "v2" },
        { prefix: "/static", backend_name: "assets", strip_prefix: true },
      ],
    }],
  };
  await using lb = await startDynlb(["--config-file", await configFile(config)], { mode });
  const body = async (path: string) => (await get(lb, "www.shop.test", path)).body;
  assertEquals(await body("/api/users?id=7"), "api /users?id=7");
  assertEquals(await body("/api"), "api /");
  assertEquals(await body("/api?x=1"), "api /?x=1");
  assertEquals(await body("/api/v2/orders"), "v2 /api/v2/orders");
  assertEquals(await body("/api/v20"), "api /v20");
  assertEquals(await body("/apis"), "site /apis");
  assertEquals(await body("/static/app.css"), "assets /app.css");
  assertEquals(await body("/"), "site /");
  // The raw path is matched: an encoded slash is not a segment boundary.
  assertEquals(await body("/static%2Fapp.css"), "site /static%2Fapp.css");
});
