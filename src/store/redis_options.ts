/**
 * The one Redis option parser: flag and environment values (`--redis-host`, `DYNLB_REDIS_URL`,
 * `--redis-sentinel`, …) into connection settings, and settings into the endpoint the client
 * connects to. Kept apart from the store so the command line does not load the Redis client.
 *
 * @module
 */

/** A `host:port` pair (a Sentinel, or a resolved master). */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** Redis connection settings, named as in the seed, with defaults applied. */
export interface RedisOptions {
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly password?: string;
  readonly db: number;
  readonly tls: boolean;
  /** `redis://` or `rediss://` URL; overrides host, port, password, db and tls. */
  readonly url?: string;
  /** Sentinels to ask for the master (then host, port and url are not used). */
  readonly sentinels?: readonly RedisNode[];
  /** The master's name at the Sentinels; default `mymaster`. */
  readonly sentinelName: string;
}

/** Values as flags or environment variables give them (strings; empty means unset). */
export interface RedisFlagValues {
  host?: string;
  port?: string;
  key?: string;
  password?: string;
  db?: string;
  tls?: string;
  url?: string;
  sentinel?: string;
  sentinelName?: string;
}

/**
 * Parses flag values into {@link RedisOptions}; throws a `TypeError` naming the flag.
 *
 * @example
 * ```ts
 * parseRedisFlags({ port: "6380", sentinel: "10.0.0.1:26379,10.0.0.2:26379" });
 * ```
 */
export function parseRedisFlags(values: RedisFlagValues): RedisOptions {
  const text = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v);
  const tls = text(values.tls)?.toLowerCase();
  if (tls !== undefined && !["1", "0", "true", "false", "yes", "no", "on", "off"].includes(tls)) {
    throw new TypeError(`--redis-tls must be true or false (got "${values.tls}")`);
  }
  const options: RedisOptions = {
    host: text(values.host) ?? "127.0.0.1",
    port: integerIn(text(values.port) ?? "6379", 1, 65535, "--redis-port"),
    key: text(values.key) ?? "balancer",
    password: text(values.password),
    db: integerIn(text(values.db) ?? "0", 0, 1 << 20, "--redis-db"),
    tls: ["1", "true", "yes", "on"].includes(tls ?? ""),
    url: text(values.url),
    sentinels: text(values.sentinel) === undefined ? undefined : parseNodes(values.sentinel!),
    sentinelName: text(values.sentinelName) ?? "mymaster",
  };
  return options;
}

/** Connection settings after defaults and `url` were applied. */
export interface RedisEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls: boolean;
}

/**
 * Where and how to connect, as a store is given it: each setting optional, `url` winning over
 * the separate ones.
 *
 * @example
 * ```ts
 * const options: RedisConnectOptions = { url: "rediss://:secret@redis.internal:6380/2" };
 * ```
 */
export interface RedisConnectOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default `6379`. */
  port?: number;
  /** ACL user name (needs `password`). */
  username?: string;
  /** `AUTH` password. Never logged. */
  password?: string;
  /** Database number for `SELECT`; default 0. */
  db?: number;
  /** Connect with TLS. */
  tls?: boolean;
  /** `redis[s]://[user[:password]@]host[:port][/db]`; overrides host, port, password, db, tls. */
  url?: string;
}

/**
 * The endpoint `options` describe (`url` wins over the separate settings); throws a `TypeError`
 * on a bad URL.
 *
 * @example
 * ```ts
 * resolveEndpoint({ url: "rediss://:pw@redis.internal:6380/2" }); // { host: "redis.internal", port: 6380, db: 2, tls: true, … }
 * ```
 */
export function resolveEndpoint(options: RedisConnectOptions): RedisEndpoint {
  const base: RedisEndpoint = {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 6379,
    username: options.username,
    password: options.password,
    db: options.db ?? 0,
    tls: options.tls ?? false,
  };
  if (options.url === undefined) return base;
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError("redis url: not a URL (expected redis[s]://host:port/db)");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(`redis url: expected redis: or rediss:, got ${url.protocol}`);
  }
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) {
    throw new TypeError(`redis url: database must be a number, got ${JSON.stringify(path)}`);
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1") || base.host,
    port: url.port === "" ? 6379 : Number(url.port),
    username: url.username === "" ? undefined : decodeURIComponent(url.username),
    password: url.password === "" ? base.password : decodeURIComponent(url.password),
    db: path === "" ? 0 : Number(path),
    tls: url.protocol === "rediss:",
  };
}

/** `host:port,host:port` (IPv6 in brackets). */
function parseNodes(text: string): RedisNode[] {
  return text.split(",").map((item) => {
    const trimmed = item.trim();
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]\s]+):(\d{1,5})$/.exec(trimmed);
    if (match === null) {
      throw new TypeError(`--redis-sentinel must be HOST:PORT,… (got "${trimmed}")`);
    }
    return {
      host: match[1].replace(/^\[(.*)\]$/, "$1"),
      port: integerIn(match[2], 1, 65535, "--redis-sentinel port"),
    };
  });
}

function integerIn(value: string, min: number, max: number, what: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TypeError(`${what} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return n;
}
