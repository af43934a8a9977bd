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
 * Renders every metric family as UTF-8 bytes. Written straight into one buffer (no string per
 * line): 10,000 servers' worth is ~100,000 lines.
 *
 * @example
 * ```ts
 * const body = renderMetrics({ registry, status, configVersion, reloads, storeUp, version });
 * ```
 */
export function renderMetrics(sources: MetricsSources): Uint8Array<ArrayBuffer> {
  const out = new ByteWriter();
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
  out.family("dynlb_access_log_lines_total", "counter", "Access log lines written.");
  out.sample("dynlb_access_log_lines_total", "", r.header(HEADER.accessLogWritten));
  configSeries(out, sources);
  processSeries(out);
  out.family("dynlb_build_info", "gauge", "dynlb's version; always 1.");
  out.sample(
    "dynlb_build_info",
    `version="${escape(sources.version)}",deno="${escape(Deno.version.deno)}"`,
    1,
  );
  return out.bytes();
}

function requestSeries(out: ByteWriter, r: MetricsRegistry): void {
  const l = r.layout;
  const backends = [{ name: "", id: 0, servers: [] }, ...r.backends];
  const labels = backends.map((b) => `backend="${escape(b.name)}"`);
  const les = [...l.buckets.map((b) => `,le="${b}"} `), ',le="+Inf"} '];
  const hist = new Float64Array(l.histogramSize);
  const one = new Float64Array(1);
  const kinds = new Float64Array(ERROR_KINDS.length);
  const codes = new Map<number, number>();
  const seen = new Uint8Array(backends.length);

  out.family(
    "dynlb_request_duration_seconds",
    "histogram",
    "Time from a request's arrival to its response head, by backend.",
  );
  backends.forEach((b, i) => {
    r.sumBackend(b.id, l.duration, hist);
    if (histogram(out, "dynlb_request_duration_seconds", labels[i], les, hist) > 0) seen[i] = 1;
  });
  out.family(
    "dynlb_requests_total",
    "counter",
    'Requests answered, by backend ("": no host matched), status code and method.',
  );
  backends.forEach((b, i) => {
    if (seen[i] === 0) return;
    codes.clear();
    for (const [key, n] of r.backendCodes(b.id, codes)) {
      out.text("dynlb_requests_total{");
      out.text(labels[i]);
      if (key === OVERFLOW_KEY) out.text(',code="other",method="OTHER"} ');
      else {
        out.text(',code="');
        out.number(key % 1000);
        out.text('",method="');
        out.text(METHODS[Math.floor(key / 1000)] ?? "OTHER");
        out.text('"} ');
      }
      out.number(n);
      out.newline();
    }
  });
  out.family(
    "dynlb_retries_total",
    "counter",
    "Requests sent again to another server, by backend.",
  );
  backends.forEach((b, i) => {
    if (seen[i] === 0 || b.id === 0) return;
    out.text("dynlb_retries_total{");
    out.text(labels[i]);
    out.text("} ");
    out.number(r.sumBackend(b.id, l.retries, one)[0]);
    out.newline();
  });
  out.family(
    "dynlb_upstream_response_seconds",
    "histogram",
    "Time from sending a request upstream to its response head, by backend.",
  );
  backends.forEach((b, i) => {
    r.sumBackend(b.id, l.upstream, hist);
    histogram(out, "dynlb_upstream_response_seconds", labels[i], les, hist);
  });
  out.family(
    "dynlb_upstream_requests_total",
    "counter",
    "Response heads received from servers, by backend, server and status code.",
  );
  const serverLabels = backends.map((b, i) =>
    b.servers.map((s) => `${labels[i]},server="${escape(s.server)}"`)
  );
  backends.forEach((b, i) => {
    b.servers.forEach((s, j) => {
      codes.clear();
      for (const [key, n] of r.serverCodes(s.id, codes)) {
        out.text("dynlb_upstream_requests_total{");
        out.text(serverLabels[i][j]);
        if (key === OVERFLOW_KEY) out.text(',code="other"} ');
        else {
          out.text(',code="');
          out.number(key);
          out.text('"} ');
        }
        out.number(n);
        out.newline();
      }
    });
  });
  out.family(
    "dynlb_upstream_errors_total",
    "counter",
    "Failed exchanges with servers, by backend, server and kind (connect, timeout, broken, malformed).",
  );
  backends.forEach((b, i) => {
    b.servers.forEach((s, j) => {
      r.sumServer(s.id, l.serverErrors, kinds);
      kinds.forEach((n, k) => {
        if (n === 0) return;
        out.text("dynlb_upstream_errors_total{");
        out.text(serverLabels[i][j]);
        out.text(',kind="');
        out.text(ERROR_KINDS[k]);
        out.text('"} ');
        out.number(n);
        out.newline();
      });
    });
  });
}

/** Writes one histogram's series from non-cumulative counts; returns its count. */
function histogram(
  out: ByteWriter,
  name: string,
  labels: string,
  les: readonly string[],
  counts: Float64Array,
): number {
  const buckets = les.length - 1;
  let count = 0;
  for (let i = 0; i <= buckets; i++) count += counts[i];
  if (count === 0) return 0;
  let cumulative = 0;
  for (let i = 0; i <= buckets; i++) {
    cumulative += counts[i];
    out.text(name);
    out.text("_bucket{");
    out.text(labels);
    out.text(les[i]);
    out.number(cumulative);
    out.newline();
  }
  out.text(name);
  out.text("_sum{");
  out.text(labels);
  out.text("} ");
  out.number(counts[buckets + 1]);
  out.newline();
  out.text(name);
  out.text("_count{");
  out.text(labels);
  out.text("} ");
  out.number(count);
  out.newline();
  return count;
}

function healthSeries(out: ByteWriter, status: readonly BackendStatus[]): void {
  const labels = status.map((b) =>
    b.servers.map((s) => `backend="${escape(b.backend)}",server="${escape(s.server)}"} `)
  );
  const serverGauge = (name: string, help: string, value: (s: ServerStatus) => number) => {
    out.family(name, "gauge", help);
    const prefix = `${name}{`;
    status.forEach((b, i) =>
      b.servers.forEach((s, j) => {
        out.text(prefix);
        out.text(labels[i][j]);
        out.number(value(s));
        out.newline();
      })
    );
  };
  serverGauge(
    "dynlb_server_up",
    "1 when the server takes traffic, 0 when health checks or passive detection took it out.",
    (s) => s.state === "up" ? 1 : 0,
  );
  serverGauge(
    "dynlb_server_check_failures",
    "Consecutive failed checks of the server (passive failures in the window without active checks).",
    (s) => s.failures,
  );
}

/** One server's health, as {@link healthSeries} reports it. */
type ServerStatus = BackendStatus["servers"][number];

function configSeries(out: ByteWriter, sources: MetricsSources): void {
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

function processSeries(out: ByteWriter): void {
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

const encoder = new TextEncoder();

/** A text buffer that grows by doubling. */
class ByteWriter {
  /** The last output's size: the next one is about as large, so it rarely grows. */
  static #lastSize = 64 * 1024;
  #buffer = new Uint8Array(Math.ceil(ByteWriter.#lastSize * 1.25));
  #length = 0;

  family(name: string, type: string, help: string): void {
    this.text(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
  }

  sample(name: string, labels: string, value: number): void {
    this.text(labels === "" ? `${name} ` : `${name}{${labels}} `);
    this.number(value);
    this.newline();
  }

  /** ASCII (nearly everything) one byte per character; anything else as UTF-8. */
  text(text: string): void {
    const n = text.length;
    if (this.#length + n > this.#buffer.length) this.#grow(n);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c > 127) return this.#utf8(text);
      buffer[at++] = c;
    }
    this.#length = at;
  }

  #utf8(text: string): void {
    const bytes = encoder.encode(text);
    if (this.#length + bytes.length > this.#buffer.length) this.#grow(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  number(value: number): void {
    if (value >= 0 && value < 1e15 && Number.isInteger(value)) {
      if (this.#length + 16 > this.#buffer.length) this.#grow(16);
      const buffer = this.#buffer;
      if (value === 0) {
        buffer[this.#length++] = 48;
        return;
      }
      let digits = 0;
      for (let v = value; v >= 1; v = Math.floor(v / 10)) digits++;
      let at = this.#length + digits;
      this.#length = at;
      for (let v = value; v >= 1; v = Math.floor(v / 10)) buffer[--at] = 48 + (v % 10);
      return;
    }
    this.text(String(value));
  }

  newline(): void {
    if (this.#length + 1 > this.#buffer.length) this.#grow(1);
    this.#buffer[this.#length++] = 10;
  }

  bytes(): Uint8Array<ArrayBuffer> {
    ByteWriter.#lastSize = this.#length;
    return this.#buffer.subarray(0, this.#length);
  }

  #grow(needed: number): void {
    const next = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + needed));
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
  }
}
