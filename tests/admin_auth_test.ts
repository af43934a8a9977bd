/**
 * Admin API protection through the real admin listener: bearer token, refusal to expose the
 * API unauthenticated, DNS-rebinding and cross-origin refusals, and configs that point back at
 * dynlb itself.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, deadPort, startBackend } from "./_backend.ts";
import { postConfig, startDynlb } from "./_dynlb.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TOKEN = "t0k3n-" + crypto.randomUUID();

/** A request to the admin API with the headers given, `Host` included, sent as they are. */
async function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const client = Deno.createHttpClient({ allowHost: true, http2: false });
  try {
    const response = await fetch(url, { ...init, client });
    return { status: response.status, headers: response.headers, body: await response.text() };
  } finally {
    client.close();
  }
}

async function run(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "--listen", "127.0.0.1:0", ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    // A start-up that should have been refused would otherwise run forever.
    signal: AbortSignal.timeout(20_000),
  });
  const out = await child.output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr) };
}

Deno.test("admin token: 401 with WWW-Authenticate without it, 200 with it, /healthz open, never logged", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  const tokenFile = path.replace(/config\.json$/, "token");
  await Deno.writeTextFile(tokenFile, TOKEN + "\n");
  await using lb = await startDynlb(["--config-file", path, "--admin-token-file", tokenFile]);

  const none = await raw(lb.admin + "/config");
  assertEquals(none.status, 401);
  assertMatch(none.headers.get("www-authenticate") ?? "", /^Bearer realm="dynlb admin"$/);
  assert(!none.body.includes('"backends"'), "no config in a 401");
  const wrong = await raw(lb.admin + "/status", {
    headers: { authorization: "Bearer wrong-" + TOKEN },
  });
  assertEquals(wrong.status, 401);
  assertMatch(wrong.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  const basic = await raw(lb.admin + "/config", { headers: { authorization: `Basic ${TOKEN}` } });
  assertEquals(basic.status, 401);
  const post = await raw(lb.admin + "/config", {
    method: "POST",
    headers: { "content-type": "application/json", "x-save": "1" },
    body: JSON.stringify(configOf({ "y.test": [{ port: a.port }] })),
  });
  assertEquals(post.status, 401);
  assertEquals(JSON.parse(await Deno.readTextFile(path)).hosts[0].host, "x.test");

  assertEquals((await raw(lb.admin + "/healthz")).status, 200);
  const ok = await raw(lb.admin + "/config", { headers: { authorization: `Bearer ${TOKEN}` } });
  assertEquals(ok.status, 200);
  assertEquals(JSON.parse(ok.body).config.hosts[0].host, "x.test");
  const saved = await raw(lb.admin + "/config", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-save": "1",
      authorization: `bearer ${TOKEN}`,
    },
    body: JSON.stringify(configOf({ "y.test": [{ port: a.port }] })),
  });
  assertEquals(saved.status, 200);
  await lb.stop();
  assert(!lb.logs().includes(TOKEN), "the token never appears in the logs");
});

Deno.test("admin token from DYNLB_ADMIN_TOKEN; a short token is refused at start-up", async () => {
  const path = await configFile(configOf({}));
  await using lb = await startDynlb(["--config-file", path], {
    env: { DYNLB_ADMIN_TOKEN: TOKEN },
  });
  assertEquals((await raw(lb.admin + "/status")).status, 401);
  const ok = await raw(lb.admin + "/status", { headers: { authorization: `Bearer ${TOKEN}` } });
  assertEquals(ok.status, 200);

  const short = await run(["--admin", "127.0.0.1:0", "--config-file", path], {
    DYNLB_ADMIN_TOKEN: "abc",
  });
  assertEquals(short.code, 1);
  assertMatch(short.err, /admin token must be at least 16/);
  assert(!short.err.includes("abc\n"));
});

Deno.test("a non-loopback --admin without a token is refused; --admin-insecure runs it, loudly", async () => {
  const path = await configFile(configOf({}));
  const refused = await run(["--admin", "0.0.0.0:0", "--config-file", path]);
  assertEquals(refused.code, 1);
  assertMatch(refused.err, /--admin 0\.0\.0\.0:0 is reachable from other machines/);
  assertMatch(refused.err, /--admin-insecure/);

  await using insecure = await startDynlb([
    "--config-file",
    path,
    "--admin",
    "0.0.0.0:0",
    "--admin-insecure",
  ]);
  assertMatch(insecure.logs(), /WARN\s+ADMIN API UNAUTHENTICATED/);
  const port = new URL(insecure.admin).port;
  assertEquals((await raw(`http://127.0.0.1:${port}/status`)).status, 200);

  await using withToken = await startDynlb(["--config-file", path, "--admin", "0.0.0.0:0"], {
    env: { DYNLB_ADMIN_TOKEN: TOKEN },
  });
  assert(!withToken.logs().includes("UNAUTHENTICATED"));
  const tokenPort = new URL(withToken.admin).port;
  assertEquals((await raw(`http://127.0.0.1:${tokenPort}/status`)).status, 401);
});

Deno.test("a rebinding Host gets 421, a foreign Origin on POST 403, and no CORS header is sent", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb(["--config-file", path]);
  const port = Number(new URL(lb.admin).port);
  const body = JSON.stringify(configOf({ "evil.test": [{ port: a.port }] }));
  const json = { "content-type": "application/json" };

  for (const host of [`evil.example:${port}`, `localhost:${port + 1}`, "localhost", ""]) {
    const r = await raw(lb.admin + "/config", { headers: { host } });
    assertEquals(r.status, 421, `Host: ${host}`);
    const p = await raw(lb.admin + "/config", {
      method: "POST",
      headers: { ...json, host, "x-save": "1" },
      body,
    });
    assertEquals(p.status, 421, `POST with Host: ${host}`);
  }
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `LocalHost:${port}`]) {
    assertEquals((await raw(lb.admin + "/status", { headers: { host } })).status, 200, host);
  }
  // /healthz answers whatever the Host (probes use pod and node addresses).
  assertEquals((await raw(lb.admin + "/healthz", { headers: { host: "x.example" } })).status, 200);

  for (const origin of ["http://evil.example", "null", `https://localhost:${port}`]) {
    const r = await raw(lb.admin + "/config", {
      method: "POST",
      headers: { ...json, origin, "x-save": "1" },
      body,
    });
    assertEquals(r.status, 403, `Origin: ${origin}`);
  }
  assertEquals(JSON.parse(await Deno.readTextFile(path)).hosts[0].host, "x.test");
  const sameOrigin = await raw(lb.admin + "/config", {
    method: "POST",
    headers: { ...json, origin: `http://localhost:${port}` },
    body,
  });
  assertEquals(sameOrigin.status, 200);

  const preflight = await raw(lb.admin + "/config", {
    method: "OPTIONS",
    headers: {
      origin: "http://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,x-save",
    },
  });
  const answers = [preflight, await raw(lb.admin + "/config", { headers: { origin: "http://x" } })];
  for (const r of answers) {
    const cors = [...r.headers.keys()].filter((k) => k.startsWith("access-control-"));
    assertEquals(cors, []);
  }
});

Deno.test("a config whose server is dynlb's own proxy or admin listener is refused with its path", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb(["--config-file", path]);
  const proxyPort = Number(new URL(lb.proxy).port);
  const adminPort = Number(new URL(lb.admin).port);

  const cases: Array<[string, number, RegExp]> = [
    ["127.0.0.1", proxyPort, /own proxy listener .*loop/],
    ["localhost", proxyPort, /own proxy listener/],
    ["::1", adminPort, /own admin listener .*admin API/],
    ["0.0.0.0", adminPort, /own admin listener/],
  ];
  for (const [addr, port, message] of cases) {
    const config = {
      backends: [{
        backend_name: "b",
        servers: [{ addr: "127.0.0.1", port: a.port }, { addr, port }],
      }],
      hosts: [{ host: "loop.test", backend_name: "b" }],
    };
    const r = await postConfig(lb, config, true);
    assertEquals(r.status, 400, `${addr}:${port}`);
    const issues = r.body.issues as Array<{ path: string; message: string }>;
    assertEquals(issues.map((i) => i.path), ["backends[0].servers[1]"]);
    assertMatch(issues[0].message, message);
  }
  assertEquals(JSON.parse(await Deno.readTextFile(path)).hosts[0].host, "x.test");

  // The same check holds for a stored config at start-up.
  const listen = deadPort();
  const looping = await configFile(configOf({ "x.test": [{ port: listen }] }));
  const r = await run([
    "--listen",
    `0.0.0.0:${listen}`,
    "--admin",
    "127.0.0.1:0",
    "--config-file",
    looping,
  ]);
  assertEquals(r.code, 1);
  assertMatch(
    r.err,
    /backends\[0\]\.servers\[0\]: is dynlb's own proxy listener \(0\.0\.0\.0:\d+\)/,
  );
});
