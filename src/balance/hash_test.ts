import { assert, assertEquals } from "../../tests/_assert.ts";
import { HashSelector, parseHashOn } from "./hash.ts";
import { layoutCounters } from "./memory.ts";
import { UpstreamPool } from "./pool.ts";
import { NO_CONTEXT, type RequestContext } from "./selector.ts";
import { type Upstream, upstreamOf } from "./upstream.ts";

const FIVE = [1, 2, 3, 4, 5].map((i) => upstreamOf(`10.0.0.${i}`, 8080, 1));
const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

function ring(servers: readonly Upstream[], up: readonly Upstream[] = servers): HashSelector {
  const memory = layoutCounters({ backends: [{ servers }] })[0];
  return new HashSelector({ servers: up, all: servers, memory }, { kind: "client_ip" });
}

function owners(selector: HashSelector): string[] {
  return KEYS.map((k) => selector.serverFor(k)!.key);
}

Deno.test("hash: a key always goes to the same server, whoever builds the ring", () => {
  const first = owners(ring(FIVE));
  // Another isolate, another config order: the same owners.
  assertEquals(owners(ring([...FIVE].reverse())), first);
  assertEquals(new Set(first).size, 5);
});

Deno.test("hash: removing one of 5 servers moves only its keys (≤ 25% of 10,000)", () => {
  const before = owners(ring(FIVE));
  for (const removed of FIVE) {
    const after = owners(ring(FIVE.filter((s) => s !== removed)));
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        assertEquals(before[i], removed.key, "only the removed server's keys move");
      }
    }
    assert(moved > 0 && moved <= 2_500, `${moved} keys moved when ${removed.key} left`);
  }
});

Deno.test("hash: a down server's keys go to their next server and come back", () => {
  const all = owners(ring(FIVE));
  const down = FIVE[0];
  const without = owners(ring(FIVE, FIVE.slice(1)));
  for (let i = 0; i < KEYS.length; i++) {
    if (all[i] === down.key) assert(without[i] !== down.key);
    else assertEquals(without[i], all[i]);
  }
  assertEquals(owners(ring(FIVE)), all);
});

Deno.test("hash: weights are respected (3:1 gives ~75%)", () => {
  const heavy = upstreamOf("10.0.0.1", 80, 3);
  const light = upstreamOf("10.0.0.2", 80, 1);
  const share = owners(ring([heavy, light])).filter((k) => k === heavy.key).length / KEYS.length;
  assert(share > 0.68 && share < 0.82, `heavy share ${share}`);
});

Deno.test("hash: a retry walks the ring to the next server not tried", () => {
  const selector = ring(FIVE);
  for (const key of KEYS.slice(0, 200)) {
    const first = selector.serverFor(key)!;
    const second = selector.serverFor(key, [first])!;
    assert(second !== first);
    // The same as if the first were down.
    assertEquals(second, ring(FIVE, FIVE.filter((s) => s !== first)).serverFor(key));
  }
  assertEquals(selector.serverFor("k", FIVE), undefined);
});

Deno.test("hash: hash_on picks the key from the request; no key balances round-robin", () => {
  const context = (headers: Record<string, string>, ip = "", uri = "/"): RequestContext => ({
    clientIp: () => ip,
    header: (name) => headers[name] ?? null,
    cookie: (name) => name === "sid" ? headers["cookie-sid"] ?? null : null,
    uri: () => uri,
  });
  for (const on of ["client_ip", "uri", "header:X-User", "cookie:sid"]) {
    const pool = new UpstreamPool("h", FIVE, { balancer: "hash", hash_on: on });
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const ctx = context({ "x-user": "alice", "cookie-sid": "s1" }, "10.1.1.1", "/a?b");
      seen.add(pool.pick(ctx)!.key);
    }
    assertEquals(seen.size, 1, on);
  }
  const pool = new UpstreamPool("h", FIVE, { balancer: "hash", hash_on: "header:x-user" });
  const spread = new Set(Array.from({ length: 10 }, () => pool.pick(NO_CONTEXT)!.key));
  assertEquals(spread.size, 5);
});

Deno.test("hash: hash_on values are parsed strictly", () => {
  assertEquals(parseHashOn("uri"), { kind: "uri" });
  assertEquals(parseHashOn("header:X-A"), { kind: "header", name: "x-a" });
  assertEquals(parseHashOn("cookie:Sid"), { kind: "cookie", name: "Sid" });
  for (const bad of ["", "ip", "header:", "header:a b", "query:x", "cookie:a;b"]) {
    assertEquals(parseHashOn(bad), undefined, bad);
  }
});
