/**
 * `GET /metrics`: the Prometheus text exposition format (version 0.0.4) of everything dynlb
 * counts. Request-path series appear once they have something to say (a backend's histogram
 * after its first request); `dynlb_server_up` and `dynlb_server_check_failures` exist for every
 * configured server at once, whatever its checks.
 *
 * @module
 */
import type { BackendStatus } from "../health/types.ts";
import { ERROR_KINDS, HEADER, LISTENERS, METHODS, OVERFLOW_KEY } from "./layout.ts";
import { processFigures } from "./process.ts";
import type { MetricsRegistry } from "./registry.ts";
import type { ReloadStats } from "./reloads.ts";

/** The content type of the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Where the figures come from. */
export interface MetricsSources {
  readonly registry: MetricsRegistry;
  /** Every backend and server with its health (as `GET /status`). */
  readonly status: () => readonly BackendStatus[];
  readonly configVersion: () => number;
  readonly reloads: ReloadStats;
  /** Whether the config store is reachable. */
  readonly storeUp: () => boolean;
  /** dynlb's version. */
  readonly version: string;
}

/**
 * Renders every metric family.
 *
 * @example
 * ```ts
 * const text = renderMetrics({ registry, status, configVersion, reloads, storeUp, version });
 * ```
 */
export function renderMetrics(sources: MetricsSources): string {
  const out = new Exposition();
  requestSeries(out, sources.registry);
  healthSeries(out, sources.status());
  const r = sources.registry;
  out.family("dynlb_open_connections", "gauge", "Client connections open, per listener.");
  LISTENERS.forEach((name, i) =>
    out.sample("dynlb_open_connections", `listener="${name}"`, r.connections(i))
  );
  out.family(
    "dynlb_open_tunnels",
    "gauge",
    "Upgraded connections (WebSocket and others) being relayed.",
  );
  out.sample("dynlb_open_tunnels", "", r.header(HEADER.tunnels));
  out.family("dynlb_upstream_pool_connections", "gauge", "Pooled upstream connections, by state.");
  out.sample("dynlb_upstream_pool_connections", 'state="idle"', r.header(HEADER.poolIdle));
  out.sample("dynlb_upstream_pool_connections", 'state="active"', r.header(HEADER.poolActive));
  out.family(
    "dynlb_access_log_dropped_total",
    "counter",
    "Access log lines dropped because the log could not keep up or failed.",
  );
  out.sample("dynlb_access_log_dropped_total", "", r.header(HEADER.accessLogDropped));
  configSeries(out, sources);
  processSeries(out);
  out.family("dynlb_build_info", "gauge", "dynlb's version; always 1.");
  out.sample(
    "dynlb_build_info",
    `version="${escape(sources.version)}",deno="${escape(Deno.version.deno)}"`,
    1,
  );
  return out.text;
}

function requestSeries(out: Exposition, r: MetricsRegistry): void {
  const l = r.layout;
  const backends = [{ name: "", id: 0, servers: [] }, ...r.backends];
  const hist = new Float64Array(l.histogramSize);
  const one = new Float64Array(1);
  const requests = out.section(
    "dynlb_requests_total",
    "counter",
    'Requests answered, by backend ("": no host matched), status code and method.',
  );
  const duration = out.section(
    "dynlb_request_duration_seconds",
    "histogram",
    "Time from a request's arrival to its response head, by backend.",
  );
  const retries = out.section(
    "dynlb_retries_total",
    "counter",
    "Requests sent again to another server, by backend.",
  );
  const upstreamTime = out.section(
    "dynlb_upstream_response_seconds",
    "histogram",
    "Time from sending a request upstream to its response head, by backend.",
  );
  const upstream = out.section(
    "dynlb_upstream_requests_total",
    "counter",
    "Response heads received from servers, by backend, server and status code.",
  );
  const errors = out.section(
    "dynlb_upstream_errors_total",
    "counter",
    "Failed exchanges with servers, by backend, server and kind (connect, timeout, broken, malformed).",
  );
  const codes = new Map<number, number>();
  for (const b of backends) {
    const backend = `backend="${escape(b.name)}"`;
    r.sumBackend(b.id, l.duration, hist);
    const count = histogram(duration, "dynlb_request_duration_seconds", backend, l.buckets, hist);
    if (count > 0) {
      codes.clear();
      for (const [key, n] of r.backendCodes(b.id, codes)) {
        const [code, method] = key === OVERFLOW_KEY
          ? ["other", "OTHER"]
          : [String(key % 1000), METHODS[Math.floor(key / 1000)] ?? "OTHER"];
        requests.push(`dynlb_requests_total{${backend},code="${code}",method="${method}"} ${n}`);
      }
      if (b.id !== 0) {
        retries.push(`dynlb_retries_total{${backend}} ${r.sumBackend(b.id, l.retries, one)[0]}`);
      }
    }
    r.sumBackend(b.id, l.upstream, hist);
    histogram(upstreamTime, "dynlb_upstream_response_seconds", backend, l.buckets, hist);
    for (const s of b.servers) {
      const labels = `${backend},server="${escape(s.server)}"`;
      codes.clear();
      for (const [key, n] of r.serverCodes(s.id, codes)) {
        const code = key === OVERFLOW_KEY ? "other" : String(key);
        upstream.push(`dynlb_upstream_requests_total{${labels},code="${code}"} ${n}`);
      }
      const kinds = r.sumServer(s.id, l.serverErrors, new Float64Array(ERROR_KINDS.length));
      kinds.forEach((n, i) => {
        if (n > 0) {
          errors.push(`dynlb_upstream_errors_total{${labels},kind="${ERROR_KINDS[i]}"} ${n}`);
        }
      });
    }
  }
}

/** Writes one histogram's series from non-cumulative counts; returns its count. */
function histogram(
  lines: string[],
  name: string,
  labels: string,
  bounds: readonly number[],
  counts: Float64Array,
): number {
  let count = 0;
  for (let i = 0; i <= bounds.length; i++) count += counts[i];
  if (count === 0) return 0;
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    cumulative += counts[i];
    lines.push(`${name}_bucket{${labels},le="${bounds[i]}"} ${cumulative}`);
  }
  lines.push(`${name}_bucket{${labels},le="+Inf"} ${count}`);
  lines.push(`${name}_sum{${labels}} ${counts[bounds.length + 1]}`);
  lines.push(`${name}_count{${labels}} ${count}`);
  return count;
}

function healthSeries(out: Exposition, status: readonly BackendStatus[]): void {
  const up = out.section(
    "dynlb_server_up",
    "gauge",
    "1 when the server takes traffic, 0 when health checks or passive detection took it out.",
  );
  const failures = out.section(
    "dynlb_server_check_failures",
    "gauge",
    "Consecutive failed checks of the server (passive failures in the window without active checks).",
  );
  for (const b of status) {
    const backend = escape(b.backend);
    for (const s of b.servers) {
      const labels = `backend="${backend}",server="${escape(s.server)}"`;
      up.push(`dynlb_server_up{${labels}} ${s.state === "up" ? 1 : 0}`);
      failures.push(`dynlb_server_check_failures{${labels}} ${s.failures}`);
    }
  }
}

function configSeries(out: Exposition, sources: MetricsSources): void {
  const { reloads } = sources;
  out.family(
    "dynlb_config_version",
    "gauge",
    "Version of the running config (counts up from 1 with every config applied).",
  );
  out.sample("dynlb_config_version", "", sources.configVersion());
  out.family("dynlb_config_reloads_total", "counter", "Configs proposed, by source and result.");
  for (const [key, n] of reloads.counts()) {
    const [source, result] = key.split("\n");
    out.sample("dynlb_config_reloads_total", `source="${escape(source)}",result="${result}"`, n);
  }
  out.family(
    "dynlb_config_last_reload_successful",
    "gauge",
    "1 when the last config proposed was applied.",
  );
  out.sample("dynlb_config_last_reload_successful", "", reloads.lastOk ? 1 : 0);
  out.family(
    "dynlb_config_last_reload_success_timestamp_seconds",
    "gauge",
    "When a config was last applied.",
  );
  out.sample("dynlb_config_last_reload_success_timestamp_seconds", "", reloads.lastSuccess / 1000);
  out.family("dynlb_store_up", "gauge", "1 when the config store is reachable.");
  out.sample("dynlb_store_up", "", sources.storeUp() ? 1 : 0);
}

function processSeries(out: Exposition): void {
  const p = processFigures();
  const gauge = (name: string, type: string, help: string, value: number | undefined) => {
    if (value === undefined) return;
    out.family(name, type, help);
    out.sample(name, "", value);
  };
  gauge(
    "process_cpu_seconds_total",
    "counter",
    "Total user and system CPU time spent in seconds.",
    p.cpuSeconds,
  );
  gauge("process_open_fds", "gauge", "Number of open file descriptors.", p.openFds);
  gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.maxFds);
  gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtualBytes);
  gauge(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory size in bytes.",
    p.residentBytes,
  );
  gauge(
    "process_start_time_seconds",
    "gauge",
    "Start time of the process since unix epoch in seconds.",
    p.startTime,
  );
}

/** Label values escape backslash, double quote and newline. */
function escape(value: string): string {
  return /[\\"\n]/.test(value)
    ? value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")
    : value;
}

/** Families in order; a section's lines are filled while others are being written. */
class Exposition {
  #parts: (string | string[])[] = [];

  family(name: string, type: string, help: string): void {
    this.#parts.push(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
  }

  sample(name: string, labels: string, value: number): void {
    this.#parts.push(`${name}${labels === "" ? "" : `{${labels}}`} ${value}\n`);
  }

  /** A family whose samples are pushed to the returned list later. */
  section(name: string, type: string, help: string): string[] {
    this.family(name, type, help);
    const lines: string[] = [];
    this.#parts.push(lines);
    return lines;
  }

  get text(): string {
    let text = "";
    for (const part of this.#parts) {
      text += typeof part === "string" ? part : part.length === 0 ? "" : part.join("\n") + "\n";
    }
    return text;
  }
}
