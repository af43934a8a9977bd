/**
 * The benchmark's WebSocket run: N clients echoing messages through dynlb and through nginx
 * (which proxies WebSocket with `proxy_http_version 1.1` and the `Upgrade`/`Connection`
 * headers), to a WebSocket echo server in its own process; then 1 GiB sent through one tunnel,
 * with the proxy's peak RSS. The load generator (`ws_load.ts`) runs as its own process.
 *
 * @module
 */
import {
  freePort,
  nginxConf,
  type Proxy,
  Spawned,
  startDynlb,
  startNginxReference,
} from "./peers.ts";
import { ProcessMeter, runTracked } from "./proc.ts";
import { fmt, median, table } from "./report.ts";

/** Host name the WebSocket route answers. */
export const WS_HOST = "ws.test";

/** What the run needs from the harness. */
export interface WebSocketRunSettings {
  readonly dir: string;
  readonly quick: boolean;
  readonly rounds: number;
  /** Seconds per echo measurement. */
  readonly duration: number;
  /** Seconds of warm-up per proxy. */
  readonly warmup: number;
  /** The dynlbs to measure (nginx is always the reference). */
  readonly dynlbs: readonly {
    /** Name in the tables. */
    name: string;
    transport: "h1" | "fetch";
    workers: number;
    args?: string[];
  }[];
}

/** One echo scenario: clients in a closed loop, each message this many bytes. */
const SCENARIOS = [
  { clients: 32, size: 32 },
  { clients: 128, size: 32 },
  { clients: 32, size: 16 * 1024 },
] as const;

const DENO_RUN = [Deno.execPath(), "run", "--allow-net"] as const;
const HERE = new URL(".", import.meta.url).pathname;

/**
 * Runs the WebSocket run and returns its rows and Markdown.
 *
 * @example
 * ```ts
 * const { markdown } = await websocketRun({ dir, quick: true, rounds: 1, duration: 2,
 *   warmup: 1, dynlbs: [{ name: "dynlb", transport: "h1", workers: 2 }] });
 * ```
 */
export async function websocketRun(settings: WebSocketRunSettings) {
  const backendPort = freePort();
  const backend = new Spawned("ws-backend", DENO_RUN[0], [
    ...DENO_RUN.slice(1),
    `${HERE}ws_backend.ts`,
    String(backendPort),
  ]);
  await backend.waitFor(/listening \d+/);
  const proxies: Proxy[] = [await startNginxWebSocket(settings.dir, backendPort)];
  for (const d of settings.dynlbs) {
    const proxy = await startDynlb({
      name: d.name,
      dir: settings.dir,
      transport: d.transport,
      workers: d.workers,
      extraArgs: d.args,
      config: {
        backends: [{
          backend_name: "ws",
          servers: [{ addr: "127.0.0.1", port: backendPort, weight: 1 }],
        }],
        hosts: [{ host: WS_HOST, backend_name: "ws" }],
      },
    });
    proxies.push(proxy);
  }
  try {
    for (const proxy of proxies) {
      await echoLoad(proxy, 32, settings.warmup, 32);
    }
    const samples: EchoSample[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      for (const scenario of SCENARIOS) {
        for (const proxy of proxies) {
          const meter = new ProcessMeter(proxy.pid);
          const r = await echoLoad(proxy, scenario.clients, settings.duration, scenario.size);
          const usage = meter.stop();
          const sample: EchoSample = {
            round,
            scenario: `${scenario.clients} clients, ${scenario.size} B messages`,
            proxy: proxy.name,
            perSecond: r.roundTrips / r.seconds,
            cpuUs: usage.cpuSeconds / Math.max(1, r.roundTrips) * 1e6,
            peakRssMiB: usage.peakRssBytes / 2 ** 20,
            errors: r.errors,
          };
          samples.push(sample);
          console.error(
            `bench: websocket round ${round} ${sample.scenario} ${proxy.name}: ` +
              `${fmt(sample.perSecond)} round trips/s, ${fmt(sample.cpuUs)} µs CPU each, ` +
              `${fmt(sample.peakRssMiB)} MiB${r.errors ? `, ${r.errors} errors` : ""}`,
          );
        }
      }
    }
    const bytes = settings.quick ? 128 * 2 ** 20 : 2 ** 30;
    const tunnels: TunnelRow[] = [];
    for (const proxy of proxies) {
      const meter = new ProcessMeter(proxy.pid);
      const r = await uploadLoad(proxy, bytes);
      const usage = meter.stop();
      const row: TunnelRow = {
        proxy: proxy.name,
        complete: r.counted === bytes,
        error: r.error,
        seconds: r.seconds,
        mibPerSecond: bytes / 2 ** 20 / r.seconds,
        cpuSeconds: usage.cpuSeconds,
        peakRssMiB: usage.peakRssBytes / 2 ** 20,
      };
      tunnels.push(row);
      console.error(
        `bench: websocket ${fmt(bytes / 2 ** 20)} MiB through one tunnel, ${proxy.name}: ` +
          `${fmt(row.seconds)} s, complete ${row.complete}, peak RSS ${fmt(row.peakRssMiB)} MiB`,
      );
    }
    const markdown = report(settings, proxies, samples, tunnels, bytes);
    console.log(`\n${markdown}`);
    return { samples, tunnels, markdown };
  } finally {
    await Promise.all([...proxies.map((p) => p.process.stop()), backend.stop()]);
  }
}

interface EchoSample {
  readonly round: number;
  readonly scenario: string;
  readonly proxy: string;
  readonly perSecond: number;
  readonly cpuUs: number;
  readonly peakRssMiB: number;
  readonly errors: number;
}

interface TunnelRow {
  readonly proxy: string;
  readonly complete: boolean;
  /** Why the tunnel ended early, when it did. */
  readonly error?: string;
  readonly seconds: number;
  readonly mibPerSecond: number;
  readonly cpuSeconds: number;
  readonly peakRssMiB: number;
}

async function load(args: string[]): Promise<Record<string, number> & { error?: string }> {
  const out = await runTracked(DENO_RUN[0], [...DENO_RUN.slice(1), `${HERE}ws_load.ts`, ...args]);
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`ws_load ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text);
}

function wsUrl(proxy: Proxy, path = "/"): string {
  return proxy.url.replace(/^http/, "ws") + path;
}

function echoLoad(proxy: Proxy, clients: number, seconds: number, size: number) {
  return load(["echo", wsUrl(proxy), WS_HOST, String(clients), String(seconds), String(size)]);
}

function uploadLoad(proxy: Proxy, bytes: number) {
  return load(["upload", wsUrl(proxy), WS_HOST, String(bytes)]);
}

function report(
  settings: WebSocketRunSettings,
  proxies: readonly Proxy[],
  samples: readonly EchoSample[],
  tunnels: readonly TunnelRow[],
  bytes: number,
): string {
  const described = table(["proxy", "configuration"], proxies.map((p) => [p.name, p.describe]));
  const rows: string[][] = [];
  for (const scenario of new Set(samples.map((s) => s.scenario))) {
    const of = (name: string) => samples.filter((s) => s.scenario === scenario && s.proxy === name);
    const reference = median(of("nginx").map((s) => s.perSecond));
    for (const proxy of proxies) {
      const mine = of(proxy.name);
      const perSecond = median(mine.map((s) => s.perSecond));
      rows.push([
        scenario,
        proxy.name,
        fmt(perSecond),
        fmt(perSecond / reference),
        fmt(median(mine.map((s) => s.cpuUs))),
        fmt(median(mine.map((s) => s.peakRssMiB))),
        String(mine.reduce((n, s) => n + s.errors, 0)),
      ]);
    }
  }
  return `### WebSocket (echo server in its own process; clients in a closed loop, one ` +
    `message each way per round trip; medians of ${settings.rounds} round(s), ` +
    `${settings.duration} s each)\n\n${described}\n\n` +
    table(
      [
        "scenario",
        "proxy",
        "round trips/s",
        "×nginx",
        "proxy CPU µs/round trip",
        "peak RSS MiB",
        "errors",
      ],
      rows,
    ) +
    `\n\n${fmt(bytes / 2 ** 20)} MiB client → server through one tunnel ` +
    `(1 MiB binary messages, raw frames with backpressure):\n\n` +
    table(
      ["proxy", "complete", "seconds", "MiB/s", "proxy CPU s", "proxy peak RSS MiB"],
      tunnels.map((t) => [
        t.proxy,
        t.complete ? "yes" : `no (${t.error ?? "bytes missing"})`,
        fmt(t.seconds),
        fmt(t.mibPerSecond),
        fmt(t.cpuSeconds),
        fmt(t.peakRssMiB),
      ]),
    );
}

/**
 * nginx as a WebSocket proxy: the documented `proxy_http_version 1.1` plus `Upgrade` and
 * `Connection` headers.
 *
 * @example
 * ```ts
 * nginxWebSocketConf("/tmp/b", 8080, 9000);
 * ```
 */
export function nginxWebSocketConf(dir: string, port: number, backendPort: number): string {
  return nginxConf(
    dir,
    "nginx-ws",
    `  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }
  upstream ws {
    server 127.0.0.1:${backendPort};
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${WS_HOST};
    location / {
      proxy_pass http://ws;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }`,
  );
}

function startNginxWebSocket(dir: string, backendPort: number): Promise<Proxy> {
  return startNginxReference(
    "nginx-ws",
    dir,
    (port) => nginxWebSocketConf(dir, port, backendPort),
    "nginx 2 workers (auto), proxy_http_version 1.1, Upgrade/Connection headers set",
  );
}
