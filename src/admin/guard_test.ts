import { Hono } from "hono";
import { assertEquals } from "../../tests/_assert.ts";
import { adminGuard } from "./guard.ts";

function app(hostname: string, port: number, token?: string): Hono {
  const app = new Hono();
  app.use(adminGuard({ token, address: () => ({ hostname, port }) }));
  app.all("*", (c) => c.text("ok"));
  return app;
}

async function status(
  a: Hono,
  headers: Record<string, string>,
  method = "GET",
  path = "/config",
): Promise<number> {
  return (await a.request(path, { method, headers })).status;
}

Deno.test("guard: Host must name the admin listener with its port", async () => {
  const v4 = app("127.0.0.1", 9001);
  const cases: Array<[string, number]> = [
    ["127.0.0.1:9001", 200],
    ["localhost:9001", 200],
    ["[::1]:9001", 200],
    ["127.0.0.2:9001", 200], // a loopback literal cannot be re-pointed by DNS
    ["localhost:9002", 421],
    ["localhost", 421], // port 80
    ["evil.example:9001", 421],
    ["127.0.0.1.nip.io:9001", 421],
    ["", 421],
    ["127.0.0.1:9001:1", 421],
  ];
  for (const [host, expected] of cases) assertEquals(await status(v4, { host }), expected, host);
  const onPort80 = app("127.0.0.1", 80);
  assertEquals(await status(onPort80, { host: "localhost" }), 200);
  const v6 = app("::1", 9001);
  assertEquals(await status(v6, { host: "[::1]:9001" }), 200);
  const lan = app("10.0.0.5", 9001, "t".repeat(20));
  assertEquals(
    await status(lan, { host: "10.0.0.5:9001", authorization: `Bearer ${"t".repeat(20)}` }),
    200,
  );
  assertEquals(await status(lan, { host: "admin.example:9001" }), 421);
});

Deno.test("guard: foreign Origin refused on state-changing methods only", async () => {
  const a = app("127.0.0.1", 9001);
  const host = "127.0.0.1:9001";
  assertEquals(await status(a, { host, origin: "http://evil.example" }, "POST"), 403);
  assertEquals(await status(a, { host, origin: "http://evil.example" }, "DELETE"), 403);
  assertEquals(await status(a, { host, origin: "null" }, "PUT"), 403);
  assertEquals(await status(a, { host, origin: "http://localhost:9001" }, "POST"), 200);
  assertEquals(await status(a, { host }, "POST"), 200); // curl sends no Origin
  assertEquals(await status(a, { host, origin: "http://evil.example" }, "GET"), 200);
});

Deno.test("guard: bearer token on everything but GET /healthz", async () => {
  const token = "s3cret-token-0123456789";
  const a = app("127.0.0.1", 9001, token);
  const host = "127.0.0.1:9001";
  assertEquals(await status(a, { host }), 401);
  assertEquals(await status(a, { host, authorization: `Bearer ${token}x` }), 401);
  assertEquals(await status(a, { host, authorization: `Bearer ${token.slice(1)}` }), 401);
  assertEquals(await status(a, { host, authorization: `BEARER  ${token}` }), 200);
  assertEquals(await status(a, { host }, "GET", "/healthz"), 200);
  assertEquals(await status(a, { host }, "POST", "/healthz"), 401);
});
