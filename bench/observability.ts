/**
 * Two bench runs of issue 12:
 *
 * - `observability`: one config, three dynlb processes measured in interleaved rounds — metrics
 *   recording off (`DYNLB_NO_METRICS=1`, the "compiled out" build), metrics on (the default),
 *   metrics on plus a JSON access log to a file. Targets: metrics on within 3% of off; access log
 *   within 10%.
 * - `metrics-scale`: a config of 2,000 backends × 5 servers (10,000 server series), every backend
 *   with traffic; `GET /metrics` timed (target < 100 ms) while wrk loads the proxy, and the
 *   proxy's requests/s with a scrape every second against none (scraping must not block it).
 *
 * @module
 */
import { type Backends, type DynlbConfig, PATHS, type Proxy, startDynlb } from "./peers.ts";
import { fmt, median, type VariantMeasure, variantRows, variantTable } from "./report.ts";
import { meteredWrk } from "./wrk.ts";

/** What the runs need from the bench's settings. */
export interface ObservabilityBenchSettings {
  readonly rounds: number;
  readonly duration: number;
  readonly warmup: number;
  readonly dynlb: { readonly transport: "h1" | "fetch"; readonly workers: number };
}

const HOST = "obs.test";

function fiveServers(backends: Backends) {
  return backends.five.map((port) => ({ addr: "127.0.0.1", port, weight: 1 }));
}

type Measured = VariantMeasure;

function measure(lb: Proxy, host: string, duration: number): Promise<Measured> {
  return meteredWrk(lb.pid, {
    url: lb.url + PATHS.short,
    host,
    connections: 32,
    durationSeconds: duration,
  });
}

/**
 * The `observability` run (see the module doc).
 *
 * @example
 * ```ts
 * const { markdown } = await observabilityRun(backends, dir, settings, console.error);
 * ```
 */
export async function observabilityRun(
  backends: Backends,
  dir: string,
  settings: ObservabilityBenchSettings,
  progress: (message: string) => void,
) {
  const config: DynlbConfig = {
    backends: [{ backend_name: "obs", servers: fiveServers(backends) }],
    hosts: [{ host: HOST, backend_name: "obs" }],
  };
  const { transport, workers } = settings.dynlb;
  const variants: { label: string; env: Record<string, string>; args: string[] }[] = [
    { label: "metrics off (DYNLB_NO_METRICS=1)", env: { DYNLB_NO_METRICS: "1" }, args: [] },
    { label: "metrics on (default)", env: {}, args: [] },
    {
      label: "metrics on + JSON access log to a file",
      env: {},
      args: ["--access-log", `${dir}/obs-access.log`],
    },
  ];
  const lbs: Proxy[] = [];
  try {
    for (const [i, v] of variants.entries()) {
      lbs.push(
        await startDynlb({
          name: `dynlb-obs-${i}`,
          dir,
          config,
          transport,
          workers,
          env: v.env,
          extraArgs: v.args,
        }),
      );
    }
    // Run one at a time (the others idle), in the same order every round.
    for (const lb of lbs) await measure(lb, HOST, settings.warmup);
    const samples = new Map<string, Measured[]>();
    for (let round = 1; round <= settings.rounds; round++) {
      for (const [i, v] of variants.entries()) {
        const m = await measure(lbs[i], HOST, settings.duration);
        samples.set(v.label, [...(samples.get(v.label) ?? []), m]);
        progress(`observability round ${round} ${v.label}: ${fmt(m.rps)} req/s`);
      }
    }
    const rows = variantRows(variants.map((v) => v.label), samples);
    const logBytes = (await Deno.stat(`${dir}/obs-access.log`)).size;
    const markdown = variantTable(
      `### Observability cost (dynlb --workers ${workers} --upstream-transport ${transport}; ` +
        "targets: metrics on within 3% of off, access log within 10%)",
      rows,
    ) + `\n\nAccess log written: ${fmt(logBytes / 1e6)} MB.`;
    console.log(`\n${markdown}`);
    return { rows, markdown };
  } finally {
    await Promise.all(lbs.map((lb) => lb.process.stop()));
  }
}

/** Backends of the metrics-scale run; with five servers each, 10,000 server series. */
export const SCALE_BACKENDS = 2_000;

/**
 * The `metrics-scale` run (see the module doc).
 *
 * @example
 * ```ts
 * const { markdown } = await metricsScaleRun(backends, dir, settings, console.error);
 * ```
 */
export async function metricsScaleRun(
  backends: Backends,
  dir: string,
  settings: ObservabilityBenchSettings,
  progress: (message: string) => void,
) {
  const config: DynlbConfig = { backends: [], hosts: [] };
  for (let i = 0; i < SCALE_BACKENDS; i++) {
    config.backends.push({ backend_name: `m${i}`, servers: fiveServers(backends) });
    config.hosts.push({ host: `m${i}.metrics.test`, backend_name: `m${i}` });
  }
  const { transport, workers } = settings.dynlb;
  const lb = await startDynlb({ name: "dynlb-metrics-scale", dir, config, transport, workers });
  try {
    // Every backend and most servers get series: five requests per backend.
    using client = Deno.createHttpClient({ allowHost: true, http2: false });
    for (let i = 0; i < SCALE_BACKENDS; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, j) => {
        for (let k = 0; k < 5; k++) {
          const r = await fetch(lb.url + PATHS.short, {
            client,
            headers: { host: `m${i + j}.metrics.test` },
          });
          await r.body?.cancel();
        }
      }));
    }
    const scrape = async () => {
      const started = performance.now();
      const response = await fetch(lb.admin + "/metrics");
      const text = await response.text();
      return {
        ms: performance.now() - started,
        bytes: text.length,
        lines: text.split("\n").length,
      };
    };
    const first = await scrape();
    progress(`metrics-scale: /metrics is ${fmt(first.bytes / 1e6)} MB, ${first.lines} lines`);

    // Scrapes while wrk loads the proxy, one a second.
    const host = "m0.metrics.test";
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) idle.push((await scrape()).ms);
    const samples = new Map<string, Measured[]>();
    const loaded: number[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      samples.set("no scrapes", [
        ...(samples.get("no scrapes") ?? []),
        await measure(lb, host, settings.duration),
      ]);
      let scraping = true;
      const scraper = (async () => {
        while (scraping) {
          loaded.push((await scrape()).ms);
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const m = await measure(lb, host, settings.duration);
      scraping = false;
      await scraper;
      samples.set("a /metrics scrape every second", [
        ...(samples.get("a /metrics scrape every second") ?? []),
        m,
      ]);
      progress(`metrics-scale round ${round}: ${fmt(m.rps)} req/s while scraping`);
    }
    const rows = variantRows(["no scrapes", "a /metrics scrape every second"], samples);
    const markdown = variantTable(
      `### /metrics with ${SCALE_BACKENDS * 5} server series (${SCALE_BACKENDS} backends × 5; ` +
        `dynlb --workers ${workers}; target: < 100 ms, request path not blocked)`,
      rows,
    ) +
      `\n\n/metrics: ${fmt(first.bytes / 1e6)} MB, ${first.lines} lines; ` +
      `${fmt(median(idle))} ms idle (median of ${idle.length}), ` +
      `${fmt(median(loaded))} ms under load (median of ${loaded.length}, max ${
        fmt(Math.max(...loaded))
      } ms).`;
    console.log(`\n${markdown}`);
    return {
      rows,
      scrapeMs: { idle: median(idle), loaded: median(loaded), max: Math.max(...loaded) },
      markdown,
    };
  } finally {
    await lb.process.stop();
  }
}
