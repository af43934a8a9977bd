/**
 * Micro-benchmark of one routing lookup and one pick (no network): `deno bench bench/router_bench.ts`.
 * The same config as the `routing` run of `deno task bench` (10,000 hosts, half wildcards, one host
 * with 1,000 prefixes), plus one backend per balancer.
 *
 * @module
 */
import { validateConfig } from "../src/config/schema.ts";
import { ExchangeContext } from "../src/proxy/context.ts";
import { Router } from "../src/proxy/router.ts";

const five = [1, 2, 3, 4, 5].map((i) => ({ addr: "127.0.0.1", port: 10000 + i }));
const hosts: unknown[] = [{ host: "exact.route.test", backend_name: "five" }];
for (let i = 0; i < 5_000; i++) {
  hosts.push({ host: `h${i}.route.test`, backend_name: "five" });
  hosts.push({ host: `*.w${i}.route.test`, backend_name: "five" });
}
hosts.push({
  host: "paths.route.test",
  backend_name: "five",
  paths: Array.from({ length: 1_000 }, (_, i) => ({
    prefix: `/api/p${i}`,
    backend_name: "five",
    strip_prefix: true,
  })),
});
const balancers = ["round_robin", "least_conn", "ewma", "hash"] as const;
for (const b of balancers) hosts.push({ host: `${b}.balance.test`, backend_name: b });
const result = validateConfig({
  backends: [
    { backend_name: "five", servers: five },
    ...balancers.map((b) => ({
      backend_name: b,
      balancer: b,
      ...(b === "hash" ? { hash_on: "client_ip" } : {}),
      servers: five,
    })),
  ],
  hosts,
});
if (!result.ok) throw new Error(JSON.stringify(result.issues));
const router = new Router();
await router.applyConfig(result.config, 1, []);
const headers = new Headers({ host: "x" });

Deno.bench("resolve: exact host", { group: "route", baseline: true }, () => {
  router.resolve("exact.route.test", "/s");
});
Deno.bench("resolve: wildcard host, 3 labels above *.w4999", { group: "route" }, () => {
  router.resolve("a.b.c.w4999.route.test", "/s");
});
Deno.bench("resolve: prefix 999 of 1,000", { group: "route" }, () => {
  router.resolve("paths.route.test", "/api/p999/s");
});

for (const b of balancers) {
  const pool = router.route(`${b}.balance.test`)!;
  Deno.bench(`pick + begin + end: ${b}`, { group: "pick", baseline: b === "round_robin" }, () => {
    const context = new ExchangeContext(headers, "10.0.0.1", "/s");
    const server = pool.pick(context)!;
    pool.begin(server);
    pool.end(server, 1, true);
  });
}
