/**
 * Two bench runs of issue 14, each one dynlb measured variant by variant in interleaved rounds:
 *
 * - `routing`: a config of 10,000 hosts (5,000 exact, 5,000 `*.` wildcards) and one host with
 *   1,000 path prefixes; requests/s for an exact host, a wildcard host (three labels above its
 *   pattern) and the deepest prefix (with `strip_prefix`), all to the same five servers. Target:
 *   wildcard and prefix within 5% of the exact host.
 * - `balancers`: one backend of the same five servers per balancer (`round_robin`, `least_conn`,
 *   `ewma`, `hash` on the client IP, `round_robin` with a sticky cookie); requests/s of each.
 *   Target: each within 5% of `round_robin`.
 *
 * @module
 */
import {
  type Backends,
  type DynlbConfig,
  PATHS,
  type Proxy,
  SHORT_BODY,
  startDynlb,
} from "./peers.ts";
import { fmt, variantRows, variantTable } from "./report.ts";
import { meteredWrk, runWrk } from "./wrk.ts";

/** What the runs need from the bench's settings. */
export interface RoutingBenchSettings {
  readonly rounds: number;
  readonly duration: number;
  readonly warmup: number;
  readonly dynlb: { readonly transport: "h1" | "fetch"; readonly workers: number };
}

/** One load target of a run. */
interface Variant {
  readonly label: string;
  readonly host: string;
  readonly path: string;
}

/** Hosts and prefixes of the routing run. */
export const ROUTING_HOSTS = 10_000;
export const ROUTING_PREFIXES = 1_000;

function servers(backends: Backends) {
  return backends.five.map((port) => ({ addr: "127.0.0.1", port, weight: 1 }));
}

/**
 * The routing run's config: half exact hosts, half wildcards, one host with many prefixes.
 *
 * @example
 * ```ts
 * routingConfig(backends).hosts.length; // 10,002
 * ```
 */
export function routingConfig(backends: Backends): DynlbConfig {
  const hosts: DynlbConfig["hosts"] = [{ host: "exact.route.test", backend_name: "five" }];
  for (let i = 0; i < ROUTING_HOSTS / 2; i++) {
    hosts.push({ host: `h${i}.route.test`, backend_name: "five" });
    hosts.push({ host: `*.w${i}.route.test`, backend_name: "five" });
  }
  const paths = Array.from({ length: ROUTING_PREFIXES }, (_, i) => ({
    prefix: `/api/p${i}`,
    backend_name: "five",
    strip_prefix: true,
  }));
  hosts.push({ host: "paths.route.test", backend_name: "five", paths });
  return { backends: [{ backend_name: "five", servers: servers(backends) }], hosts };
}

const ROUTING_VARIANTS: readonly Variant[] = [
  { label: "exact host", host: "exact.route.test", path: PATHS.short },
  {
    label: `wildcard host (*.w${ROUTING_HOSTS / 2 - 1}.route.test, 3 labels above)`,
    host: `a.b.c.w${ROUTING_HOSTS / 2 - 1}.route.test`,
    path: PATHS.short,
  },
  {
    label: `prefix /api/p${ROUTING_PREFIXES - 1} of ${ROUTING_PREFIXES}, stripped`,
    host: "paths.route.test",
    path: `/api/p${ROUTING_PREFIXES - 1}${PATHS.short}`,
  },
];

const BALANCERS = [
  { label: "round_robin", backend: { balancer: "round_robin" } },
  { label: "least_conn", backend: { balancer: "least_conn" } },
  { label: "ewma", backend: { balancer: "ewma" } },
  { label: "hash (client_ip)", backend: { balancer: "hash", hash_on: "client_ip" } },
  { label: "round_robin + sticky", backend: { sticky: { cookie: "srv" } } },
] as const;

/**
 * The balancers run's config: one host and backend per balancer.
 *
 * @example
 * ```ts
 * balancersConfig(backends).backends.length; // 5
 * ```
 */
export function balancersConfig(backends: Backends): DynlbConfig {
  return {
    backends: BALANCERS.map((b, i) => ({
      backend_name: `b${i}`,
      ...b.backend,
      servers: servers(backends),
    })),
    hosts: BALANCERS.map((_, i) => ({ host: `b${i}.balance.test`, backend_name: `b${i}` })),
  };
}

const BALANCER_VARIANTS: readonly Variant[] = BALANCERS.map((b, i) => ({
  label: b.label,
  host: `b${i}.balance.test`,
  path: PATHS.short,
}));

async function expectShort(url: string, variant: Variant): Promise<void> {
  using client = Deno.createHttpClient({ allowHost: true, http2: false });
  const response = await fetch(url + variant.path, { client, headers: { host: variant.host } });
  const text = await response.text();
  if (response.status !== 200 || text !== SHORT_BODY) {
    throw new Error(`${variant.label}: ${response.status} ${text}`);
  }
}

function measure(lb: Proxy, variant: Variant, duration: number) {
  return meteredWrk(lb.pid, {
    url: lb.url + variant.path,
    host: variant.host,
    connections: 32,
    durationSeconds: duration,
  });
}

/** Runs `variants` against one dynlb over interleaved rounds; medians against the first. */
async function compare(
  name: string,
  title: string,
  config: DynlbConfig,
  variants: readonly Variant[],
  dir: string,
  settings: RoutingBenchSettings,
  progress: (message: string) => void,
) {
  const lb = await startDynlb({ name, dir, config, ...settings.dynlb });
  try {
    for (const v of variants) {
      await expectShort(lb.url, v);
      await runWrk({
        url: lb.url + v.path,
        host: v.host,
        connections: 32,
        durationSeconds: settings.warmup,
      });
    }
    const samples = new Map<string, Awaited<ReturnType<typeof measure>>[]>();
    for (let round = 1; round <= settings.rounds; round++) {
      for (const v of variants) {
        const m = await measure(lb, v, settings.duration);
        samples.set(v.label, [...(samples.get(v.label) ?? []), m]);
        progress(
          `${name} round ${round} ${v.label}: ${fmt(m.rps)} req/s, ` +
            `${fmt(m.cpuUsPerRequest)} µs CPU/req${m.errors ? `, ${m.errors} errors` : ""}`,
        );
      }
    }
    const rows = variantRows(variants.map((v) => v.label), samples);
    const markdown = variantTable(title, rows);
    console.log(`\n${markdown}`);
    return { rows, markdown };
  } finally {
    await lb.process.stop();
  }
}

/**
 * The routing run (see the module doc).
 *
 * @example
 * ```ts
 * const { markdown } = await routingRun(backends, dir, settings, console.error);
 * ```
 */
export function routingRun(
  backends: Backends,
  dir: string,
  settings: RoutingBenchSettings,
  progress: (message: string) => void,
) {
  const { transport, workers } = settings.dynlb;
  return compare(
    `dynlb-${transport}-w${workers}-routing`,
    `### Routing lookups (dynlb --upstream-transport ${transport} --workers ${workers}; ` +
      `${ROUTING_HOSTS} hosts, half of them wildcards, and one host with ${ROUTING_PREFIXES} ` +
      `prefixes, all to 5 servers; short body, 32 connections, ${settings.duration} s, ` +
      `${settings.rounds} round(s) interleaved; target: within 5% of the exact host)`,
    routingConfig(backends),
    ROUTING_VARIANTS,
    dir,
    settings,
    progress,
  );
}

/**
 * The balancers run (see the module doc).
 *
 * @example
 * ```ts
 * const { markdown } = await balancersRun(backends, dir, settings, console.error);
 * ```
 */
export function balancersRun(
  backends: Backends,
  dir: string,
  settings: RoutingBenchSettings,
  progress: (message: string) => void,
) {
  const { transport, workers } = settings.dynlb;
  return compare(
    `dynlb-${transport}-w${workers}-balancers`,
    `### Balancers (dynlb --upstream-transport ${transport} --workers ${workers}; one backend ` +
      `of 5 servers per balancer; short body, 32 connections, ${settings.duration} s, ` +
      `${settings.rounds} round(s) interleaved; target: each within 5% of round_robin)`,
    balancersConfig(backends),
    BALANCER_VARIANTS,
    dir,
    settings,
    progress,
  );
}
