/**
 * `deno task bench`: dynlb against nginx, HAProxy and Caddy on the same loopback traffic.
 * See BENCHMARKS.md for the method. Writes `bench/results/<timestamp>.{md,json}`.
 *
 * Usage: deno task bench [--quick] [--only name,…] [--rounds N] [--duration S]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkProxy } from "./check.ts";
import {
  dynlbConfig,
  HOSTS,
  HUGE_BYTES,
  PATHS,
  type Proxy,
  PROXY_NAMES,
  type ProxyName,
  scaleConfig,
  SHORT_BODY,
  startBackends,
  startDynlb,
  startListenerFarm,
  startProxy,
  stopAll,
  stopSinks,
} from "./peers.ts";
import {
  cpuSeconds,
  killTracked,
  ProcessMeter,
  processTree,
  rssBytes,
  runTracked,
} from "./proc.ts";
import { fmt, median, type Sample, summarize, table, throughputTables } from "./report.ts";
import { balancersRun, routingRun } from "./routing.ts";
import { metricsScaleRun, observabilityRun } from "./observability.ts";
import { websocketRun } from "./websocket.ts";
import { httpsRun } from "./https.ts";
import { meteredWrk, runWrk, wrkVersion } from "./wrk.ts";
import { upgradeRun } from "./upgrade.ts";
import { slowClientRun } from "./slow_clients.ts";
import { idleConnectionsRun } from "./idle_connections.ts";

const RUNS = [
  "throughput",
  "scale",
  "stream",
  "health",
  "websocket",
  "routing",
  "balancers",
  "upgrade",
  "observability",
  "metrics-scale",
  "https",
  "slow-clients",
  "idle-connections",
] as const;
type RunName = typeof RUNS[number];

interface Settings {
  readonly quick: boolean;
  readonly rounds: number;
  readonly duration: number;
  readonly warmup: number;
  readonly runs: readonly RunName[];
  readonly proxies: readonly ProxyName[];
  readonly connections: readonly number[];
  readonly scaleHosts: readonly number[];
  /** The dynlb the scale and health runs use. */
  readonly dynlb: { transport: "h1" | "fetch"; workers: number };
}

const USAGE = `Usage: deno task bench [--quick] [--only name,…] [--rounds N] [--duration S]
  --quick        smoke run: 2 s per measurement, 1 round
  --only LIST    runs (${RUNS.join(", ")}) and/or proxies (${PROXY_NAMES.join(", ")};
                 a prefix such as "dynlb" selects all matching); nginx is always measured
                 in the throughput run, as the reference
  --rounds N     interleaved rounds of the throughput and health runs (default 3; quick 1)
  --duration S   seconds per wrk measurement (default 10; quick 2)`;

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean" },
      only: { type: "string" },
      rounds: { type: "string" },
      duration: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const quick = values.quick ?? false;
  const positive = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1`);
    return n;
  };
  let runs: RunName[] = [...RUNS];
  let proxies: ProxyName[] = [...PROXY_NAMES];
  if (values.only) {
    const names = values.only.split(",").map((s) => s.trim()).filter(Boolean);
    const pickedRuns = RUNS.filter((r) => names.includes(r));
    const pickedProxies = PROXY_NAMES.filter((p) => names.some((n) => p.startsWith(n)));
    const unknown = names.filter((n) =>
      !RUNS.includes(n as RunName) && !PROXY_NAMES.some((p) => p.startsWith(n))
    );
    if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(", ")}\n${USAGE}`);
    if (pickedRuns.length > 0) runs = pickedRuns;
    else runs = ["throughput", "stream"];
    if (pickedProxies.length > 0) proxies = pickedProxies;
  }
  if (runs.includes("throughput") && !proxies.includes("nginx")) proxies.unshift("nginx");
  return {
    quick,
    rounds: positive("rounds", values.rounds, quick ? 1 : 3),
    duration: positive("duration", values.duration, quick ? 2 : 10),
    warmup: quick ? 1 : 3,
    runs,
    proxies,
    connections: [32, 128],
    scaleHosts: [1, 1_000, 10_000, 100_000],
    dynlb: { transport: "h1", workers: 2 },
  };
}

// ---------------------------------------------------------------------------------------------

let interrupted = false;

async function main(): Promise<void> {
  const settings = parseSettings(Deno.args);
  const command = `deno task bench ${Deno.args.join(" ")}`.trim();
  const dir = await Deno.makeTempDir({ prefix: "dynlb-bench-" });
  // nginx started as root runs its workers as nobody: they must be able to read the files.
  await Deno.chmod(dir, 0o755);
  const cleanup = async () => {
    killTracked();
    await stopAll();
    await stopSinks();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping everything`);
      await cleanup();
      Deno.exit(130);
    });
  }

  const sections: string[] = [];
  const json: Record<string, unknown> = {};
  try {
    const info = await machineInfo(command, settings);
    json.info = info;
    console.log(info.markdown);

    const backends = await startBackends(dir);
    const ctx: Context = { settings, dir, backends };
    if (settings.runs.includes("throughput") || settings.runs.includes("stream")) {
      const proxies = await startProxies(ctx);
      if (settings.runs.includes("throughput")) {
        const { samples, markdown } = await throughput(ctx, proxies);
        json.throughput = { samples, summaries: summarize(samples) };
        sections.push(markdown);
      }
      if (settings.runs.includes("stream")) {
        const { rows, markdown } = await stream(ctx, proxies);
        json.stream = rows;
        sections.push(markdown);
      }
      await Promise.all(proxies.map((p) => p.process.stop()));
    }
    if (settings.runs.includes("scale")) {
      const { rows, markdown } = await scale(ctx);
      json.scale = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("health")) {
      const { rows, markdown } = await health(ctx);
      json.health = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("upgrade")) {
      const { rows, markdown } = await upgradeRun(
        ctx.dir,
        backends.routes,
        { durationSeconds: settings.quick ? 6 : 20, connections: 32 },
        settings.dynlb,
        progress,
      );
      json.upgrade = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("slow-clients")) {
      const { rows, markdown } = await slowClientRun(
        ctx.dir,
        backends.routes,
        {
          slow: 2000,
          headerTimeoutSeconds: 10,
          durationSeconds: settings.quick ? 3 : 5,
          connections: 32,
        },
        settings.dynlb,
        progress,
      );
      json.slowClients = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("idle-connections")) {
      const { rows, markdown } = await idleConnectionsRun(
        ctx.dir,
        backends.routes,
        // nginx for comparison, then the dynlbs picked with --only (else the default one).
        [
          "nginx",
          ...(settings.proxies.length < PROXY_NAMES.length &&
              settings.proxies.some((p) => p.startsWith("dynlb"))
            ? settings.proxies.filter((p) => p.startsWith("dynlb"))
            : ["dynlb-h1-w2" as const]),
        ],
        { connections: 10_000, concurrency: 64, settleSeconds: 3 },
        progress,
      );
      json.idleConnections = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("websocket")) {
      const { samples, tunnels, markdown } = await websocketRun({
        dir,
        quick: settings.quick,
        rounds: settings.rounds,
        duration: settings.duration,
        warmup: settings.warmup,
        // The default (h1) listener tunnels bytes; the serve listener relays messages.
        dynlbs: ["h1", "serve"].map((listener) => ({
          ...settings.dynlb,
          name: `${dynlbName(ctx, "ws")}-${listener}`,
          args: ["--listener", listener],
        })),
      });
      json.websocket = { samples, tunnels };
      sections.push(markdown);
    }
    if (settings.runs.includes("routing")) {
      const { rows, markdown } = await routingRun(backends, dir, settings, progress);
      json.routing = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("https")) {
      const { samples, markdown } = await httpsRun(backends, dir, {
        rounds: settings.rounds,
        duration: settings.duration,
        warmup: settings.warmup,
        dynlbs: [settings.dynlb],
      }, progress);
      json.https = samples;
      sections.push(markdown);
    }
    if (settings.runs.includes("balancers")) {
      const { rows, markdown } = await balancersRun(backends, dir, settings, progress);
      json.balancers = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("observability")) {
      const { rows, markdown } = await observabilityRun(backends, dir, settings, progress);
      json.observability = rows;
      sections.push(markdown);
    }
    if (settings.runs.includes("metrics-scale")) {
      const { rows, scrapeMs, markdown } = await metricsScaleRun(backends, dir, settings, progress);
      json.metricsScale = { rows, scrapeMs };
      sections.push(markdown);
    }
    json.loadAfter = await Deno.readTextFile("/proc/loadavg");
    const report = [info.markdown, ...sections, `Load average at the end: ${json.loadAfter}`]
      .join("\n\n");
    const results = new URL("./results/", import.meta.url).pathname;
    await Deno.mkdir(results, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    await Deno.writeTextFile(`${results}${stamp}.md`, report + "\n");
    await Deno.writeTextFile(`${results}${stamp}.json`, JSON.stringify(json, null, 2) + "\n");
    console.log(`\nbench: wrote ${results}${stamp}.md and .json`);
  } finally {
    await cleanup();
  }
}

interface Context {
  readonly settings: Settings;
  readonly dir: string;
  readonly backends: Awaited<ReturnType<typeof startBackends>>;
}

function progress(message: string): void {
  console.error(`bench: ${message}`);
}

async function startProxies(ctx: Context): Promise<Proxy[]> {
  const proxies: Proxy[] = [];
  for (const name of ctx.settings.proxies) {
    const proxy = await startProxy(name, ctx.dir, ctx.backends.routes);
    const { a, b } = await checkProxy(proxy.url);
    progress(`${name} answers correctly (weighted pair: ${a}:${b} of 55)`);
    proxies.push(proxy);
  }
  return proxies;
}

// ---------------------------------------------------------------------------------------------
// Throughput: every proxy, interleaved over rounds

const BODIES = [{ name: "short", path: PATHS.short }, { name: "16k", path: PATHS.big }] as const;

function measure(
  proxy: { url: string; pid: number },
  host: string,
  path: string,
  connections: number,
  duration: number,
) {
  return meteredWrk(proxy.pid, {
    url: proxy.url + path,
    host,
    connections,
    durationSeconds: duration,
  });
}

async function throughput(ctx: Context, proxies: readonly Proxy[]) {
  const { settings } = ctx;
  for (const proxy of proxies) {
    for (const body of BODIES) {
      await runWrk({
        url: proxy.url + body.path,
        host: HOSTS.main,
        connections: 32,
        durationSeconds: settings.warmup,
      });
    }
  }
  const samples: Sample[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    for (const body of BODIES) {
      for (const connections of settings.connections) {
        const scenario = `${body.name} body, ${connections} connections`;
        for (const proxy of proxies) {
          const m = await measure(proxy, HOSTS.main, body.path, connections, settings.duration);
          samples.push({ round, scenario, proxy: proxy.name, ...m });
          progress(
            `round ${round} ${scenario} ${proxy.name}: ${fmt(m.rps)} req/s, ` +
              `p99 ${fmt(m.p99Ms)} ms, ${fmt(m.cpuUsPerRequest)} µs CPU/req, ` +
              `${fmt(m.peakRssMiB)} MiB${m.errors ? `, ${m.errors} errors` : ""}`,
          );
        }
      }
    }
  }
  const described = table(["proxy", "configuration"], proxies.map((p) => [p.name, p.describe]));
  const markdown = `### Throughput (medians of ${settings.rounds} round(s), ` +
    `${settings.duration} s each; ×nginx = ratio to nginx in the same round)\n\n` +
    `${described}\n\n${throughputTables(summarize(samples))}`;
  console.log(`\n${markdown}`);
  return { samples, markdown };
}

// ---------------------------------------------------------------------------------------------
// Streaming: 1 GiB down and up through each proxy

async function curl(args: string[]): Promise<string> {
  const out = await runTracked("curl", ["-sS", ...args]);
  if (!out.success) {
    throw new Error(`curl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function stream(ctx: Context, proxies: readonly Proxy[]) {
  const file = `${ctx.dir}/upload.bin`;
  {
    using f = await Deno.open(file, { create: true, write: true, truncate: true });
    await f.truncate(HUGE_BYTES);
  }
  // The first read of the sparse file fills the page cache, and the first upload is the sink's
  // JIT warm-up (2-3x slower): keep both out of every figure.
  await curl(["-o", "/dev/null", `http://127.0.0.1:${ctx.backends.a}${PATHS.huge}`]);
  await curl(["-T", file, "-X", "POST", "-H", "Expect:", `http://127.0.0.1:${ctx.backends.sink}/`]);
  const direct = { name: "direct (no proxy)", url: "", pid: ctx.backends.nginx.pid };
  const rows: Record<string, string | number>[] = [];
  for (const proxy of [direct, ...proxies]) {
    for (const direction of ["download", "upload"] as const) {
      const base = proxy.url ||
        `http://127.0.0.1:${direction === "download" ? ctx.backends.a : ctx.backends.sink}`;
      const meter = proxy.url ? new ProcessMeter(proxy.pid) : null;
      const started = performance.now();
      const out = direction === "download"
        ? await curl([
          "-o",
          "/dev/null",
          "-H",
          `Host: ${HOSTS.main}`,
          "-w",
          "%{http_code} %{size_download}",
          base + PATHS.huge,
        ])
        : await curl([
          "-T",
          file,
          "-X",
          "POST",
          "-H",
          `Host: ${HOSTS.sink}`,
          "-H",
          "Expect:",
          "-w",
          " %{http_code}",
          base + PATHS.upload,
        ]);
      const seconds = (performance.now() - started) / 1000;
      const usage = meter?.stop();
      const words = out.trim().split(/\s+/);
      const ok = direction === "download"
        ? words[0] === "200" && Number(words[1]) === HUGE_BYTES
        : words[1] === "200" && Number(words[0]) === HUGE_BYTES;
      const row = {
        proxy: proxy.name,
        direction,
        ok: ok ? "yes" : `no (${out.trim()})`,
        seconds,
        mibPerSecond: HUGE_BYTES / 2 ** 20 / seconds,
        peakRssMiB: usage ? usage.peakRssBytes / 2 ** 20 : NaN,
        cpuSeconds: usage ? usage.cpuSeconds : NaN,
      };
      rows.push(row);
      progress(`stream ${proxy.name} ${direction}: ${fmt(seconds)} s, ok ${row.ok}`);
    }
  }
  const markdown = `### Streaming 1 GiB (curl; download of a sparse file from nginx, upload to a ` +
    `sink that counts bytes)\n\n` + table(
      ["proxy", "direction", "complete", "seconds", "MiB/s", "proxy CPU s", "proxy peak RSS MiB"],
      rows.map((r) => [
        String(r.proxy),
        String(r.direction),
        String(r.ok),
        fmt(r.seconds as number),
        fmt(r.mibPerSecond as number),
        fmt(r.cpuSeconds as number),
        fmt(r.peakRssMiB as number),
      ]),
    );
  console.log(`\n${markdown}`);
  return { rows, markdown };
}

// ---------------------------------------------------------------------------------------------
// Scale: dynlb with 1 … 100,000 hosts

async function postConfig(admin: string, body: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(admin + "/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST /config: ${response.status} ${text}`);
  return performance.now() - started;
}

function dynlbName(ctx: Context, suffix: string): string {
  const { transport, workers } = ctx.settings.dynlb;
  return `dynlb-${transport}-w${workers}-${suffix}`;
}

async function scale(ctx: Context) {
  const { settings, backends } = ctx;
  const base = dynlbConfig(backends.routes);
  const rows: Record<string, number>[] = [];
  for (const hosts of settings.scaleHosts) {
    const lb = await startDynlb({
      name: dynlbName(ctx, `scale-${hosts}`),
      dir: ctx.dir,
      config: base,
      ...settings.dynlb,
    });
    const body = JSON.stringify(scaleConfig(hosts, () => backends.five, base));
    const postMs = await postConfig(lb.admin!, body);
    const rssAfterMiB = rssBytes(processTree(lb.pid)) / 2 ** 20;
    const host = `h${hosts - 1}.scale.test`;
    await expectShort(lb.url, host);
    await runWrk({
      url: lb.url + PATHS.short,
      host,
      connections: 32,
      durationSeconds: settings.warmup,
    });
    const m = await measure(lb, host, PATHS.short, 32, settings.duration);
    await lb.process.stop();
    const row = {
      hosts,
      configMiB: body.length / 2 ** 20,
      postMs,
      rssAfterMiB,
      rps: m.rps,
      p99Ms: m.p99Ms,
      cpuUsPerRequest: m.cpuUsPerRequest,
      peakRssMiB: m.peakRssMiB,
      errors: m.errors,
    };
    rows.push(row);
    progress(`scale ${hosts} hosts: POST ${fmt(postMs)} ms, ${fmt(m.rps)} req/s`);
  }
  const { transport, workers } = settings.dynlb;
  const markdown = `### Scale (dynlb --upstream-transport ${transport} --workers ${workers}; ` +
    `N hosts, each its own backend of 5 servers; load on the last host, short body, ` +
    `32 connections, ${settings.duration} s)\n\n` + table(
      [
        "hosts",
        "config MiB",
        "POST /config ms",
        "RSS after MiB",
        "req/s",
        "p99 ms",
        "CPU µs/req",
        "peak RSS MiB",
        "errors",
      ],
      rows.map((r) => [
        String(r.hosts),
        fmt(r.configMiB),
        fmt(r.postMs),
        fmt(r.rssAfterMiB),
        fmt(r.rps),
        fmt(r.p99Ms),
        fmt(r.cpuUsPerRequest),
        fmt(r.peakRssMiB),
        String(r.errors),
      ]),
    );
  console.log(`\n${markdown}`);
  return { rows, markdown };
}

async function expectShort(url: string, host: string): Promise<void> {
  using client = Deno.createHttpClient({ allowHost: true, http2: false });
  const response = await fetch(url + PATHS.short, { client, headers: { host } });
  const text = await response.text();
  if (response.status !== 200 || text !== SHORT_BODY) {
    throw new Error(`${url} Host ${host}: ${response.status} ${text}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Health-check cost: 10,000 checked servers idle beside the benchmark host

const CHECKED_SERVERS = 10_000;
const SERVERS_PER_BACKEND = 5;

async function health(ctx: Context) {
  const { settings, backends } = ctx;
  const farm = await startListenerFarm(ctx.dir, CHECKED_SERVERS);
  const base = dynlbConfig(backends.routes);
  const portsOf = (i: number) =>
    farm.ports.slice(i * SERVERS_PER_BACKEND, (i + 1) * SERVERS_PER_BACKEND);
  const count = CHECKED_SERVERS / SERVERS_PER_BACKEND;
  const check = { type: "tcp", interval: 1, timeout: 1 };
  const variants: { label: string; lb: Proxy }[] = [];
  for (const [label, hc] of [["with checks", check], ["without", undefined]] as const) {
    const lb = await startDynlb({
      name: dynlbName(ctx, label === "without" ? "hc-off" : "hc-on"),
      dir: ctx.dir,
      config: scaleConfig(count, portsOf, base, hc),
      ...settings.dynlb,
    });
    await expectShort(lb.url, HOSTS.main);
    variants.push({ label, lb });
  }
  // Idle cost first: what 10,000 checks a second cost with no traffic at all.
  const idle = new Map<string, number>();
  for (const { label, lb } of variants) {
    const pids = processTree(lb.pid);
    const before = cpuSeconds(pids);
    const started = performance.now();
    await new Promise((r) => setTimeout(r, settings.quick ? 2000 : 5000));
    idle.set(label, (cpuSeconds(pids) - before) / ((performance.now() - started) / 1000) * 100);
  }
  const samples: Sample[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    for (const { label, lb } of variants) {
      const m = await measure(lb, HOSTS.main, PATHS.short, 32, settings.duration);
      samples.push({ round, scenario: "health", proxy: label, ...m });
      progress(`health round ${round} ${label}: ${fmt(m.rps)} req/s`);
    }
  }
  await Promise.all([...variants.map((v) => v.lb.process.stop()), farm.process.stop()]);
  const rows = variants.map(({ label }) => {
    const mine = samples.filter((s) => s.proxy === label);
    return {
      checks: label,
      idleCpuPercent: idle.get(label)!,
      rps: median(mine.map((s) => s.rps)),
      p99Ms: median(mine.map((s) => s.p99Ms)),
      cpuUsPerRequest: median(mine.map((s) => s.cpuUsPerRequest)),
      peakRssMiB: median(mine.map((s) => s.peakRssMiB)),
      errors: mine.reduce((n, s) => n + s.errors, 0),
    };
  });
  const { transport, workers } = settings.dynlb;
  const markdown = `### Health-check cost (dynlb --upstream-transport ${transport} ` +
    `--workers ${workers}; ${count} idle backends × ${SERVERS_PER_BACKEND} = ` +
    `${CHECKED_SERVERS} servers, each a distinct port of an nginx that accepts; ` +
    `health_check tcp every 1 s; load on ${HOSTS.main}, short body, 32 connections; ` +
    `medians of ${settings.rounds} round(s))\n\n` + table(
      ["health checks", "idle CPU %", "req/s", "p99 ms", "CPU µs/req", "peak RSS MiB", "errors"],
      rows.map((r) => [
        r.checks,
        fmt(r.idleCpuPercent),
        fmt(r.rps),
        fmt(r.p99Ms),
        fmt(r.cpuUsPerRequest),
        fmt(r.peakRssMiB),
        String(r.errors),
      ]),
    );
  console.log(`\n${markdown}`);
  return { rows, markdown };
}

// ---------------------------------------------------------------------------------------------
// Machine and tool versions

async function versionOf(command: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.trim().split("\n")[0];
  } catch {
    return "not found";
  }
}

async function machineInfo(command: string, settings: Settings) {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const info = {
    date: new Date().toISOString(),
    command,
    nproc: navigator.hardwareConcurrency,
    model: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    kernel: Deno.osRelease(),
    memory: `${Math.round(Deno.systemMemoryInfo().total / 2 ** 30)} GiB`,
    loadBefore: (await Deno.readTextFile("/proc/loadavg")).trim(),
    commit: await versionOf("git", ["rev-parse", "--short", "HEAD"]),
    versions: {
      deno: `deno ${Deno.version.deno} (v8 ${Deno.version.v8})`,
      nginx: await versionOf("nginx", ["-v"]),
      haproxy: await versionOf("haproxy", ["-v"]),
      caddy: await versionOf("caddy", ["version"]),
      wrk: await wrkVersion(),
      curl: await versionOf("curl", ["--version"]),
    },
    settings,
  };
  const markdown = `## dynlb benchmark, ${info.date}\n\n` +
    `Command: \`${command}\` (commit ${info.commit})\n\n` +
    `Machine: ${info.nproc} CPUs, ${info.model}, Linux ${info.kernel}, ${info.memory}; ` +
    `load average at the start: ${info.loadBefore}\n\n` +
    table(["tool", "version"], Object.entries(info.versions)) +
    `\n\nwrk -t1 -c{${settings.connections.join(",")}} -d${settings.duration}s --latency; ` +
    `${settings.rounds} round(s), interleaved; warm-up ${settings.warmup} s per proxy and body.`;
  return { ...info, markdown };
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    // After Ctrl-C the killed wrk fails the run in flight; the handler is already exiting.
    if (interrupted) await new Promise(() => {});
    console.error(`bench: failed: ${err instanceof Error ? err.stack : err}`);
    Deno.exit(1);
  }
  Deno.exit(0);
}
