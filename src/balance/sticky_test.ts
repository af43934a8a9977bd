import { assert, assertEquals, assertMatch } from "../../tests/_assert.ts";
import { UpstreamPool } from "./pool.ts";
import { NO_CONTEXT, type RequestContext } from "./selector.ts";
import { stickyToken } from "./sticky.ts";
import { upstreamOf } from "./upstream.ts";

const A = upstreamOf("10.0.0.1", 8080, 1);
const B = upstreamOf("10.0.0.2", 8080, 1);
const C = upstreamOf("10.0.0.3", 8080, 1);

const withCookie = (value: string | null): RequestContext => ({
  ...NO_CONTEXT,
  cookie: (name) => name === "srv" ? value : null,
});

for (const balancer of ["round_robin", "least_conn", "ewma", "hash"] as const) {
  Deno.test(`sticky (${balancer}): the cookie's server is picked while it is up`, () => {
    const pool = new UpstreamPool("web", [A, B, C], {
      balancer,
      hash_on: balancer === "hash" ? "client_ip" : undefined,
      sticky: { cookie: "srv", max_age: 60 },
    });
    const token = stickyToken("web", B);
    for (let i = 0; i < 10; i++) assertEquals(pool.pick(withCookie(token)), B);
    assertEquals(pool.stickyCookie(withCookie(token), B), undefined, "already set");
    pool.setHealth(B.key, false);
    const other = pool.pick(withCookie(token))!;
    assert(other !== B);
    assertEquals(
      pool.stickyCookie(withCookie(token), other),
      `srv=${stickyToken("web", other)}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax`,
    );
    pool.setHealth(B.key, true);
    assertEquals(pool.pick(withCookie(token)), B);
    // A retry after the sticky server failed goes elsewhere.
    assert(pool.pick(withCookie(token), [B]) !== B);
  });
}

Deno.test("sticky: the token is opaque, stable and per backend", () => {
  const token = stickyToken("web", A);
  assertMatch(token, /^[0-9a-f]{16}$/);
  assert(!token.includes("10.0.0.1"));
  assertEquals(stickyToken("web", upstreamOf("10.0.0.1", 8080, 5)), token, "weight is no part");
  assert(stickyToken("api", A) !== token);
  assert(stickyToken("web", B) !== token);
});

Deno.test("sticky: unknown or missing cookies are balanced and get a cookie", () => {
  const pool = new UpstreamPool("web", [A, B], { sticky: { cookie: "srv" } });
  const server = pool.pick(withCookie("nonsense"))!;
  assertEquals(
    pool.stickyCookie(withCookie(null), server),
    `srv=${stickyToken("web", server)}; Path=/; HttpOnly; SameSite=Lax`,
  );
  assertEquals(
    pool.stickyCookie(withCookie(null), server, true),
    `srv=${stickyToken("web", server)}; Path=/; HttpOnly; SameSite=Lax; Secure`,
  );
  assertEquals(new UpstreamPool("web", [A]).stickyCookie(withCookie(null), A), undefined);
});
