/**
 * Command-line flags and their environment variables. A flag wins over its variable, which wins
 * over the default. Every setting of the seed keeps its name (`config_type` → `--config-type`,
 * `DYNLB_CONFIG_TYPE`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseRedisFlags, type RedisOptions } from "../store/redis_options.ts";

export type { RedisOptions };
import { DEFAULT_BUCKETS, parseBuckets } from "../metrics/layout.ts";
import { CidrError, CidrSet } from "../proxy/cidr.ts";

/** Everything the program can be told at start-up. */
export interface Options {
  /**
   * `serve` (the default), `check` (validate a config file), `diff` (compare two config files),
   * `schema` (print the JSON Schema), `demo` (demo backends + the proxy), `help` or `version`.
   */
  readonly command: Command;
  /** Arguments after the command (the two files of `diff`). */
  readonly args: readonly string[];
  readonly listen: Address;
  /** The HTTPS listener; absent: none. */
  readonly listenTls?: Address;
  readonly admin: Address;
  /** Bearer token the admin API requires (from `--admin-token`); see also `adminTokenFile`. */
  readonly adminToken?: string;
  /** File holding the admin token (read at start-up). */
  readonly adminTokenFile?: string;
  /** Allow a non-loopback `--admin` without a token. */
  readonly adminInsecure: boolean;
  /** Applied configs kept in the store's history (0: none). */
  readonly history: number;
  /** Ports of the two `dynlb demo` backends. */
  readonly demoPorts: readonly [number, number];
  readonly configType: "file" | "kv" | "redis";
  readonly configFile: string;
  readonly dataDir: string;
  readonly kvPath: string;
  readonly redis: RedisOptions;
  readonly workers: number;
  readonly upstreamTransport: "h1" | "fetch";
  readonly listener: "h1" | "serve";
  readonly clientHeaderTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly clientBodyTimeoutMs: number;
  readonly tunnelIdleTimeoutMs: number;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly retries: number;
  readonly shutdownTimeoutMs: number;
  readonly maxConfigBytes: number;
  /** CIDR ranges whose forwarding headers (and PROXY protocol headers) are believed. */
  readonly trustedProxies: readonly string[];
  /** Trusted peers open each connection with a PROXY protocol v1/v2 header. */
  readonly proxyProtocol: boolean;
  /** Share the proxy port with another dynlb (SO_REUSEPORT), for upgrades without a gap. */
  readonly reusePort: boolean;
  readonly logLevel: "debug" | "info" | "warn" | "error";
  /** Histogram bounds in seconds; `null` when metrics are off (`DYNLB_NO_METRICS=1`, for benchmarks). */
  readonly metricsBuckets: readonly number[] | null;
  /** Access log path (`-`: stdout); `null`: off. */
  readonly accessLog: string | null;
  readonly accessLogFormat: "json" | "combined";
  /** Request id header, lower case. */
  readonly requestIdHeader: string;
}

/** What the program was asked to do. */
export type Command = "serve" | "check" | "diff" | "schema" | "demo" | "help" | "version";

const COMMANDS: readonly Command[] = ["check", "diff", "schema", "demo", "help", "version"];

/** A listening address; port 0 picks a free port. */
export interface Address {
  readonly hostname: string;
  readonly port: number;
}

/**
 * A flag or variable that cannot be used; the message names it.
 *
 * @example
 * ```ts
 * try {
 *   parseOptions(["--listen", "nowhere"], {});
 * } catch (err) {
 *   (err as OptionError).message; // "--listen must be HOST:PORT (got \"nowhere\")"
 * }
 * ```
 */
export class OptionError extends Error {
  override name = "OptionError";
}

interface Flag {
  readonly env: string;
  readonly type: "string" | "boolean";
  readonly help: string;
  readonly fallback?: string;
}

/** Every flag: name → its environment variable, default and help line. */
export const FLAGS: Readonly<Record<string, Flag>> = {
  "listen": {
    env: "DYNLB_LISTEN",
    type: "string",
    fallback: "0.0.0.0:8080",
    help: "proxy listener HOST:PORT",
  },
  "listen-tls": {
    env: "DYNLB_LISTEN_TLS",
    type: "string",
    help: "HTTPS proxy listener HOST:PORT, certificates from the config (default: none)",
  },
  "admin": {
    env: "DYNLB_ADMIN",
    type: "string",
    fallback: "127.0.0.1:9001",
    help: "admin API HOST:PORT",
  },
  "admin-token": {
    env: "DYNLB_ADMIN_TOKEN",
    type: "string",
    help: "bearer token every admin request except GET /healthz must carry",
  },
  "admin-token-file": {
    env: "DYNLB_ADMIN_TOKEN_FILE",
    type: "string",
    help: "file holding the admin token (instead of --admin-token)",
  },
  "admin-insecure": {
    env: "DYNLB_ADMIN_INSECURE",
    type: "boolean",
    help: "allow a non-loopback --admin without a token",
  },
  "history": {
    env: "DYNLB_HISTORY",
    type: "string",
    fallback: "20",
    help: "applied configs kept in the store's history",
  },
  "config-type": {
    env: "DYNLB_CONFIG_TYPE",
    type: "string",
    fallback: "file",
    help: "where the config lives: file, kv or redis",
  },
  "config-file": {
    env: "DYNLB_CONFIG_FILE",
    type: "string",
    fallback: "./config.json",
    help: "config file of the file store",
  },
  "data-dir": {
    env: "DYNLB_DATA_DIR",
    type: "string",
    fallback: "./.data",
    help: "directory for the KV database and the last-good config cache",
  },
  "kv-path": {
    env: "DYNLB_KV_PATH",
    type: "string",
    help: "Deno KV database (default DATA_DIR/config.kv)",
  },
  "redis-host": {
    env: "DYNLB_REDIS_HOST",
    type: "string",
    fallback: "127.0.0.1",
    help: "Redis host",
  },
  "redis-port": { env: "DYNLB_REDIS_PORT", type: "string", fallback: "6379", help: "Redis port" },
  "redis-key": {
    env: "DYNLB_REDIS_KEY",
    type: "string",
    fallback: "balancer",
    help: "Redis key holding the config",
  },
  "redis-password": { env: "DYNLB_REDIS_PASSWORD", type: "string", help: "Redis password (AUTH)" },
  "redis-db": {
    env: "DYNLB_REDIS_DB",
    type: "string",
    fallback: "0",
    help: "Redis database number",
  },
  "redis-tls": { env: "DYNLB_REDIS_TLS", type: "boolean", help: "connect to Redis over TLS" },
  "redis-sentinel": {
    env: "DYNLB_REDIS_SENTINEL",
    type: "string",
    help: "HOST:PORT,… of Redis Sentinels that name the master (instead of host/port/url)",
  },
  "redis-sentinel-name": {
    env: "DYNLB_REDIS_SENTINEL_NAME",
    type: "string",
    fallback: "mymaster",
    help: "the master's name at the Sentinels",
  },
  "redis-url": {
    env: "DYNLB_REDIS_URL",
    type: "string",
    help: "redis[s]://[:password@]host:port/db, instead of the above",
  },
  "workers": {
    env: "DYNLB_WORKERS",
    type: "string",
    help: "proxy worker isolates (default: one per core)",
  },
  "upstream-transport": {
    env: "DYNLB_UPSTREAM_TRANSPORT",
    type: "string",
    fallback: "h1",
    help: "upstream client: h1 (own pooled HTTP/1.1) or fetch",
  },
  "listener": {
    env: "DYNLB_LISTENER",
    type: "string",
    fallback: "h1",
    help: "client side: h1 (own HTTP/1.1 server) or serve (Deno.serve)",
  },
  "client-header-timeout": {
    env: "DYNLB_CLIENT_HEADER_TIMEOUT",
    type: "string",
    fallback: "10",
    help: "seconds for a client's request head (then 408 and close; h1 listener)",
  },
  "client-idle-timeout": {
    env: "DYNLB_CLIENT_IDLE_TIMEOUT",
    type: "string",
    fallback: "60",
    help: "seconds an idle keep-alive client connection stays open (h1 listener)",
  },
  "client-body-timeout": {
    env: "DYNLB_CLIENT_BODY_TIMEOUT",
    type: "string",
    fallback: "60",
    help: "seconds without request-body bytes before the exchange is aborted (h1 listener)",
  },
  "tunnel-idle-timeout": {
    env: "DYNLB_TUNNEL_IDLE_TIMEOUT",
    type: "string",
    fallback: "600",
    help: "seconds an Upgrade tunnel may carry no byte before it is closed (h1 listener)",
  },
  "max-connections": {
    env: "DYNLB_MAX_CONNECTIONS",
    type: "string",
    fallback: "16384",
    help: "open client connections per process; more are closed at once (h1 listener)",
  },
  "connect-timeout": {
    env: "DYNLB_CONNECT_TIMEOUT",
    type: "string",
    fallback: "5",
    help: "seconds to open an upstream connection",
  },
  "response-timeout": {
    env: "DYNLB_RESPONSE_TIMEOUT",
    type: "string",
    fallback: "60",
    help: "seconds to wait for an upstream response head",
  },
  "retries": {
    env: "DYNLB_RETRIES",
    type: "string",
    fallback: "2",
    help: "other servers tried after a failed attempt (see README: Retries)",
  },
  "shutdown-timeout": {
    env: "DYNLB_SHUTDOWN_TIMEOUT",
    type: "string",
    fallback: "10",
    help: "seconds in-flight requests get on SIGTERM/SIGINT",
  },
  "max-config-bytes": {
    env: "DYNLB_MAX_CONFIG_BYTES",
    type: "string",
    fallback: "67108864",
    help: "largest POST /config body",
  },
  "trusted-proxies": {
    env: "DYNLB_TRUSTED_PROXIES",
    type: "string",
    help: "CIDR,… of proxies whose X-Forwarded-*/X-Real-IP are kept (default: none)",
  },
  "proxy-protocol": {
    env: "DYNLB_PROXY_PROTOCOL",
    type: "boolean",
    help: "trusted peers must open connections with a PROXY protocol v1/v2 header",
  },
  "reuse-port": {
    env: "DYNLB_REUSE_PORT",
    type: "boolean",
    help: "let another dynlb bind the same proxy port (upgrades; see README: Upgrades)",
  },
  "demo-ports": {
    env: "DYNLB_DEMO_PORTS",
    type: "string",
    fallback: "10001,10002",
    help: "ports of the two demo backends of `dynlb demo`",
  },
  "metrics-buckets": {
    env: "DYNLB_METRICS_BUCKETS",
    type: "string",
    fallback: DEFAULT_BUCKETS.join(","),
    help: "upper bounds (seconds) of the latency histograms of /metrics",
  },
  "access-log": {
    env: "DYNLB_ACCESS_LOG",
    type: "string",
    help: "access log file (- for stdout; off by default; SIGHUP reopens it)",
  },
  "access-log-format": {
    env: "DYNLB_ACCESS_LOG_FORMAT",
    type: "string",
    fallback: "json",
    help: "json (one object a line) or combined (nginx's, plus request id and upstream time)",
  },
  "request-id-header": {
    env: "DYNLB_REQUEST_ID_HEADER",
    type: "string",
    fallback: "X-Request-Id",
    help: "header carrying the request id to servers, clients and the access log",
  },
  "log-level": {
    env: "DYNLB_LOG_LEVEL",
    type: "string",
    fallback: "info",
    help: "debug, info, warn or error",
  },
};

/**
 * Parses arguments and environment into {@link Options}; throws {@link OptionError}.
 *
 * @example
 * ```ts
 * const options = parseOptions(["--listen", "127.0.0.1:0"], {});
 * options.listen.port; // 0
 * ```
 */
export function parseOptions(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Options {
  const spec: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean", short: "V" },
  };
  for (const [name, flag] of Object.entries(FLAGS)) spec[name] = { type: flag.type };
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: spec, allowPositionals: true, strict: true });
  } catch (err) {
    throw new OptionError(`${(err as Error).message.split("\n")[0]} (see --help)`);
  }
  const { values, positionals } = parsed;
  const value = (name: string): string | undefined => {
    const given = values[name];
    if (typeof given === "string") return given;
    if (given === true) return "true";
    const fromEnv = env[FLAGS[name].env];
    // An empty variable counts as unset, as shells make it easy to export one by accident.
    return fromEnv === undefined || fromEnv === "" ? FLAGS[name].fallback : fromEnv;
  };
  const str = (name: string): string => value(name)!;

  let command: Command = "serve";
  if (values.help || positionals[0] === "help") command = "help";
  else if (values.version || positionals[0] === "version") command = "version";
  else if ((COMMANDS as readonly string[]).includes(positionals[0])) {
    command = positionals[0] as Command;
  } else if (positionals.length > 0) {
    throw new OptionError(
      `unknown command "${positionals[0]}" (commands: ${COMMANDS.join(", ")})`,
    );
  }
  const rest = positionals.slice(1);
  if (command === "diff" && rest.length !== 2) {
    throw new OptionError("diff needs two files: dynlb diff OLD.json NEW.json");
  } else if (command !== "diff" && rest.length > 0) {
    throw new OptionError(`unexpected argument "${rest[0]}" (see --help)`);
  }
  const adminToken = value("admin-token");
  const adminTokenFile = value("admin-token-file");
  if (adminToken !== undefined && adminTokenFile !== undefined) {
    throw new OptionError("--admin-token and --admin-token-file exclude each other");
  }

  const dataDir = str("data-dir");
  const trustedProxies = cidrs("trusted-proxies", value("trusted-proxies") ?? "");
  const proxyProtocol = flag(value("proxy-protocol"));
  if (proxyProtocol && trustedProxies.length === 0) {
    throw new OptionError(
      "--proxy-protocol needs --trusted-proxies: PROXY headers are accepted from trusted peers only",
    );
  }
  return {
    command,
    args: rest,
    listen: address("listen", str("listen")),
    listenTls: value("listen-tls") === undefined
      ? undefined
      : address("listen-tls", str("listen-tls")),
    admin: address("admin", str("admin")),
    adminToken,
    adminTokenFile,
    adminInsecure: flag(value("admin-insecure")),
    history: integer("history", str("history"), 0, 10_000),
    demoPorts: portPair("demo-ports", str("demo-ports")),
    configType: oneOf("config-type", str("config-type"), ["file", "kv", "redis"] as const),
    configFile: str("config-file"),
    dataDir,
    kvPath: value("kv-path") ?? `${dataDir}/config.kv`,
    redis: redis({
      host: value("redis-host"),
      port: value("redis-port"),
      key: value("redis-key"),
      password: value("redis-password"),
      db: value("redis-db"),
      tls: value("redis-tls"),
      url: value("redis-url"),
      sentinel: value("redis-sentinel"),
      sentinelName: value("redis-sentinel-name"),
    }),
    workers: value("workers") === undefined
      ? navigator.hardwareConcurrency
      : integer("workers", str("workers"), 1, 256),
    upstreamTransport: oneOf(
      "upstream-transport",
      str("upstream-transport"),
      ["h1", "fetch"] as const,
    ),
    listener: oneOf("listener", str("listener"), ["h1", "serve"] as const),
    clientHeaderTimeoutMs: seconds("client-header-timeout", str("client-header-timeout")),
    clientIdleTimeoutMs: seconds("client-idle-timeout", str("client-idle-timeout")),
    clientBodyTimeoutMs: seconds("client-body-timeout", str("client-body-timeout")),
    tunnelIdleTimeoutMs: seconds("tunnel-idle-timeout", str("tunnel-idle-timeout")),
    maxConnections: integer("max-connections", str("max-connections"), 1, 1 << 24),
    connectTimeoutMs: seconds("connect-timeout", str("connect-timeout")),
    responseTimeoutMs: seconds("response-timeout", str("response-timeout")),
    retries: integer("retries", str("retries"), 0, 100),
    shutdownTimeoutMs: seconds("shutdown-timeout", str("shutdown-timeout")),
    maxConfigBytes: integer("max-config-bytes", str("max-config-bytes"), 1024, 2 ** 31),
    trustedProxies,
    proxyProtocol,
    reusePort: flag(value("reuse-port")),
    logLevel: oneOf("log-level", str("log-level"), ["debug", "info", "warn", "error"] as const),
    metricsBuckets: /^(1|true|yes|on)$/i.test(env.DYNLB_NO_METRICS ?? "")
      ? null
      : buckets(str("metrics-buckets")),
    accessLog: value("access-log") ?? null,
    accessLogFormat: oneOf(
      "access-log-format",
      str("access-log-format"),
      ["json", "combined"] as const,
    ),
    requestIdHeader: headerName("request-id-header", str("request-id-header")),
  };
}

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * console.log(helpText());
 * ```
 */
export function helpText(): string {
  const lines = [
    "dynlb — a dynamic, host-routed load balancer and reverse proxy",
    "",
    "Usage:",
    "  dynlb [flags]                      run the proxy",
    "  dynlb check [--config-file PATH]   validate a config file (exit 1 listing every problem)",
    "  dynlb diff OLD.json NEW.json       what a change adds, removes or alters (exit 1: differ)",
    "  dynlb schema                       print the JSON Schema of the config document",
    "  dynlb demo                         two demo backends and the proxy on the seed's config",
    "  dynlb --help | --version",
    "",
    "Flags (each also read from its environment variable):",
  ];
  for (const [name, flag] of Object.entries(FLAGS)) {
    const arg = flag.type === "boolean" ? "" : " VALUE";
    const fallback = flag.fallback === undefined ? "" : ` [default ${flag.fallback}]`;
    lines.push(`  --${name}${arg}`.padEnd(30) + ` ${flag.help}${fallback}  (${flag.env})`);
  }
  return lines.join("\n");
}

function redis(values: Parameters<typeof parseRedisFlags>[0]): RedisOptions {
  try {
    return parseRedisFlags(values);
  } catch (err) {
    if (err instanceof TypeError) throw new OptionError(err.message);
    throw err;
  }
}

function portPair(name: string, text: string): [number, number] {
  const parts = text.split(",");
  if (parts.length !== 2) throw new OptionError(`--${name} must be two ports, PORT,PORT`);
  const [a, b] = parts.map((p) => integer(name, p.trim(), 1, 65535));
  if (a === b) throw new OptionError(`--${name} must be two different ports`);
  return [a, b];
}

function address(name: string, text: string): Address {
  const colon = text.lastIndexOf(":");
  if (colon === -1) throw new OptionError(`--${name} must be HOST:PORT (got "${text}")`);
  let hostname = text.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (hostname === "") hostname = "0.0.0.0";
  return { hostname, port: integer(name, text.slice(colon + 1), 0, 65535) };
}

function buckets(text: string): number[] {
  const parsed = parseBuckets(text);
  if (typeof parsed === "string") {
    throw new OptionError(`--metrics-buckets: ${parsed} (got "${text}")`);
  }
  return parsed;
}

/** An HTTP field name (RFC 9110 token), lower-cased. */
function headerName(name: string, text: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(text)) {
    throw new OptionError(`--${name} must be a header name (got "${text}")`);
  }
  return text.toLowerCase();
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new OptionError(`--${name} must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return n;
}

/** Longest timer delay: beyond 2^31-1 ms a timer fires at once (a timeout of 0, not of weeks). */
const MAX_SECONDS = 2_147_483;

function seconds(name: string, text: string): number {
  const n = Number(text);
  // Below 1 ms the value would round to a timeout of 0.
  if (text.trim() === "" || !Number.isFinite(n) || n < 0.001 || n > MAX_SECONDS) {
    throw new OptionError(
      `--${name} must be a number of seconds greater than 0 and at most ${MAX_SECONDS} (got "${text}")`,
    );
  }
  return Math.round(n * 1000);
}

function flag(text: string | undefined): boolean {
  return /^(1|true|yes|on)$/i.test(text ?? "");
}

function cidrs(name: string, text: string): string[] {
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  try {
    new CidrSet(list);
  } catch (err) {
    if (err instanceof CidrError) throw new OptionError(`--${name}: ${err.message}`);
    throw err;
  }
  return list;
}

function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(text)) return text as T;
  throw new OptionError(`--${name} must be one of ${allowed.join(", ")} (got "${text}")`);
}
