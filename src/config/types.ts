/**
 * The configuration document, exactly as the seed defines it (see `SEED.md`), after validation
 * and with defaults applied. These types describe what `parseConfig` returns; the raw JSON may
 * omit the fields marked optional in the README.
 *
 * @module
 */
import type { BalancerName } from "../balance/selector.ts";

/** Active health check settings of one backend. Durations are in seconds. */
export interface HealthCheckConfig {
  /** Run active checks for this backend's servers. */
  readonly enable: boolean;
  /** `tcp`: a connection opens; `http`: a `GET uri` answers 2xx/3xx. */
  readonly type: "tcp" | "http";
  /** Path (and query) requested by `http` checks; required when `type` is `http`. */
  readonly uri?: string;
  /** Seconds between two checks of one server. */
  readonly interval: number;
  /** Seconds before a check counts as failed. */
  readonly timeout: number;
  /** Consecutive passing checks that mark a down server up. */
  readonly success: number;
  /** Consecutive failing checks that mark an up server down. */
  readonly fail: number;
}

/** Passive failure detection of one backend (beyond the seed; nginx's `max_fails`). */
export interface PassiveCheckConfig {
  /** Failed connections within `fail_timeout` seconds that take a server out; 0 disables. */
  readonly max_fails: number;
  /** Window for counting failures, and the cool-down when no active check brings it back. */
  readonly fail_timeout: number;
}

/** One upstream server of a backend. */
export interface ServerConfig {
  /** IPv4 or IPv6 address, or a host name. */
  readonly addr: string;
  /** TCP port, 1–65535. */
  readonly port: number;
  /** Relative share of requests; 1 when absent. */
  readonly weight: number;
}

/** `backends[].sticky`: a cookie that keeps a client on the server that first answered it. */
export interface StickyCookieConfig {
  /** Cookie name. */
  readonly cookie: string;
  /** Seconds the cookie lives; absent: until the browser closes. */
  readonly max_age?: number;
}

/** A named group of servers that hosts route to. */
export interface BackendConfig {
  /** The name `hosts[].backend_name` refers to; unique. */
  readonly backend_name: string;
  /** Active checks; absent means none. */
  readonly health_check?: HealthCheckConfig;
  /** Passive detection; absent means the defaults (see README). */
  readonly passive_check?: PassiveCheckConfig;
  /** The servers; may be empty (requests then get 503). */
  readonly servers: readonly ServerConfig[];
  /** Balancing algorithm; absent: `round_robin`. */
  readonly balancer?: BalancerName;
  /** The key `hash` balances on: `client_ip`, `uri`, `header:NAME` or `cookie:NAME`. */
  readonly hash_on?: string;
  /** Sticky sessions by cookie; absent: none. */
  readonly sticky?: StickyCookieConfig;
}

/** `hosts[].paths[]`: requests whose path starts with `prefix` (whole segments) go elsewhere. */
export interface PathConfig {
  /** A path prefix starting with `/`, matched on whole segments of the raw path. */
  readonly prefix: string;
  /** Name of an existing backend. */
  readonly backend_name: string;
  /** Remove the prefix from the path before forwarding. */
  readonly strip_prefix: boolean;
}

/** `Host` → backend mapping. */
export interface HostConfig {
  /**
   * Host name as clients send it, or `*.example.com` for every name under `example.com`;
   * matched case-insensitively, port and trailing dot ignored.
   */
  readonly host: string;
  /** Name of an existing backend. */
  readonly backend_name: string;
  /** Path prefixes routed to other backends; absent: none. */
  readonly paths?: readonly PathConfig[];
  /** Answer plain-HTTP requests for this host with a 308 to `https://` (ACME challenges excepted). */
  readonly redirect_https?: boolean;
}

/** One certificate of `tls.certificates`: a pair of files or inline PEM text. */
export interface TlsCertificateConfig {
  /** PEM certificate chain file (leaf first); with `key_file`. */
  readonly cert_file?: string;
  /** PEM private key file; with `cert_file`. */
  readonly key_file?: string;
  /** Inline PEM certificate chain; with `key`. */
  readonly cert?: string;
  /** Inline PEM private key; shown as `"<redacted>"` by the admin API. */
  readonly key?: string;
}

/** Automatic certificates from an ACME CA (RFC 8555, HTTP-01). */
export interface AcmeConfig {
  /** Contact address given to the CA. */
  readonly email?: string;
  /** The CA's directory URL; Let's Encrypt production by default. */
  readonly directory: string;
  /** PEM file of a CA that signs the directory's HTTPS certificate (a private CA). */
  readonly ca_cert_file?: string;
  /** Names to get certificates for, or `"all"`: every non-wildcard host of the config. */
  readonly hosts: readonly string[] | "all";
}

/** TLS termination settings (optional; the seed's document has none). */
export interface TlsConfig {
  /** Served by SNI; the first one also to clients without SNI or with an unknown name. */
  readonly certificates: readonly TlsCertificateConfig[];
  readonly acme?: AcmeConfig;
}

/** The whole configuration document. */
export interface Config {
  readonly backends: readonly BackendConfig[];
  readonly hosts: readonly HostConfig[];
  /** Backend of requests whose host matches no `hosts[]` entry; absent: those get 404. */
  readonly default_backend?: string;
  readonly tls?: TlsConfig;
}

/** One problem found in a configuration, with the JSON path it is about. */
export interface ConfigIssue {
  /** Path like `backends[1].servers[0].port`; empty for the document itself. */
  readonly path: string;
  /** What is wrong, in words. */
  readonly message: string;
}

/** The result of parsing: either a valid config or every problem found. */
export type ParseResult =
  | {
    readonly ok: true;
    /** The config with defaults applied. */
    readonly config: Config;
    /** The document as given (parsed JSON), without defaults. */
    readonly document: unknown;
    /** Things that work but deserve attention (a certificate expiring within 7 days). */
    readonly warnings: readonly ConfigIssue[];
  }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };
