/**
 * What a config change does, in the terms an operator checks before applying or rolling back:
 * which backends, servers, weights and hosts it adds, removes or alters. Compares validated
 * configs (defaults applied), so an omitted `weight` and `"weight": 1` are no change.
 *
 * @module
 */
import type { BackendConfig, Config, HostConfig } from "./types.ts";
import { normalizeHost } from "./host.ts";
import { formatHostPort } from "../address.ts";

/** A changed value. */
export interface Change<T> {
  readonly from: T;
  readonly to: T;
}

/** How one backend present on both sides changed. */
export interface BackendDiff {
  readonly backend: string;
  /** Servers as `addr:port`. */
  readonly servers_added: readonly string[];
  readonly servers_removed: readonly string[];
  readonly weights: readonly ({ readonly server: string } & Change<number>)[];
  /** Other fields that differ (`health_check`, `balancer`, …). */
  readonly settings: readonly string[];
}

/** How one host present on both sides changed. */
export interface HostDiff {
  readonly host: string;
  readonly backend?: Change<string>;
  /** Other fields that differ (`paths`, …). */
  readonly settings: readonly string[];
}

/** The whole difference; every list empty means the configs route alike. */
export interface ConfigDiff {
  readonly backends_added: readonly string[];
  readonly backends_removed: readonly string[];
  readonly backends_changed: readonly BackendDiff[];
  readonly hosts_added: readonly { readonly host: string; readonly backend: string }[];
  readonly hosts_removed: readonly { readonly host: string; readonly backend: string }[];
  readonly hosts_changed: readonly HostDiff[];
  /** Top-level fields other than backends and hosts that differ (`default_backend`, …). */
  readonly settings: readonly string[];
}

/**
 * Compares two validated configs.
 *
 * @example
 * ```ts
 * const diff = diffConfigs(before, after);
 * diff.backends_changed[0].weights; // [{ server: "127.0.0.1:10001", from: 10, to: 1 }]
 * ```
 */
export function diffConfigs(from: Config, to: Config): ConfigDiff {
  const oldBackends = new Map(from.backends.map((b) => [b.backend_name, b]));
  const newBackends = new Map(to.backends.map((b) => [b.backend_name, b]));
  const oldHosts = new Map(from.hosts.map((h) => [normalizeHost(h.host), h]));
  const newHosts = new Map(to.hosts.map((h) => [normalizeHost(h.host), h]));
  const backendsChanged: BackendDiff[] = [];
  for (const [name, before] of oldBackends) {
    const after = newBackends.get(name);
    if (after === undefined) continue;
    const change = diffBackend(before, after);
    if (change !== null) backendsChanged.push(change);
  }
  const hostsChanged: HostDiff[] = [];
  for (const [name, before] of oldHosts) {
    const after = newHosts.get(name);
    if (after === undefined) continue;
    const change = diffHost(name, before, after);
    if (change !== null) hostsChanged.push(change);
  }
  const hostOf = ([host, h]: [string, HostConfig]) => ({ host, backend: h.backend_name });
  return {
    backends_added: [...newBackends.keys()].filter((n) => !oldBackends.has(n)),
    backends_removed: [...oldBackends.keys()].filter((n) => !newBackends.has(n)),
    backends_changed: backendsChanged,
    hosts_added: [...newHosts].filter(([h]) => !oldHosts.has(h)).map(hostOf),
    hosts_removed: [...oldHosts].filter(([h]) => !newHosts.has(h)).map(hostOf),
    hosts_changed: hostsChanged,
    settings: otherFields(from, to, ["backends", "hosts", "$schema"]),
  };
}

/**
 * Whether a diff changes nothing.
 *
 * @example
 * ```ts
 * isEmptyDiff(diffConfigs(config, config)); // true
 * ```
 */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return Object.values(diff).every((list) => (list as unknown[]).length === 0);
}

/**
 * The diff as lines for a terminal: `+` added, `-` removed, `~` changed.
 *
 * @example
 * ```ts
 * console.log(formatDiff(diffConfigs(before, after)).join("\n"));
 * // ~ backend backend2: weight 127.0.0.1:10001 10 → 1
 * ```
 */
export function formatDiff(diff: ConfigDiff): string[] {
  const lines: string[] = [];
  for (const name of diff.backends_added) lines.push(`+ backend ${name}`);
  for (const name of diff.backends_removed) lines.push(`- backend ${name}`);
  for (const b of diff.backends_changed) {
    for (const s of b.servers_added) lines.push(`~ backend ${b.backend}: + server ${s}`);
    for (const s of b.servers_removed) lines.push(`~ backend ${b.backend}: - server ${s}`);
    for (const w of b.weights) {
      lines.push(`~ backend ${b.backend}: weight ${w.server} ${w.from} → ${w.to}`);
    }
    for (const field of b.settings) lines.push(`~ backend ${b.backend}: ${field} changed`);
  }
  for (const h of diff.hosts_added) lines.push(`+ host ${h.host} → ${h.backend}`);
  for (const h of diff.hosts_removed) lines.push(`- host ${h.host} (was → ${h.backend})`);
  for (const h of diff.hosts_changed) {
    if (h.backend) lines.push(`~ host ${h.host}: backend ${h.backend.from} → ${h.backend.to}`);
    for (const field of h.settings) lines.push(`~ host ${h.host}: ${field} changed`);
  }
  for (const field of diff.settings) lines.push(`~ ${field} changed`);
  return lines;
}

function diffBackend(before: BackendConfig, after: BackendConfig): BackendDiff | null {
  const key = (s: { addr: string; port: number }) => formatHostPort(s.addr.toLowerCase(), s.port);
  const oldServers = new Map(before.servers.map((s) => [key(s), s]));
  const newServers = new Map(after.servers.map((s) => [key(s), s]));
  const weights = [];
  for (const [server, s] of oldServers) {
    const next = newServers.get(server);
    if (next !== undefined && next.weight !== s.weight) {
      weights.push({ server, from: s.weight, to: next.weight });
    }
  }
  const diff: BackendDiff = {
    backend: before.backend_name,
    servers_added: [...newServers.keys()].filter((s) => !oldServers.has(s)),
    servers_removed: [...oldServers.keys()].filter((s) => !newServers.has(s)),
    weights,
    settings: otherFields(before, after, ["backend_name", "servers"]),
  };
  const changed = diff.servers_added.length + diff.servers_removed.length + weights.length +
    diff.settings.length;
  return changed === 0 ? null : diff;
}

function diffHost(name: string, before: HostConfig, after: HostConfig): HostDiff | null {
  const backend = before.backend_name === after.backend_name
    ? undefined
    : { from: before.backend_name, to: after.backend_name };
  const settings = otherFields(before, after, ["host", "backend_name"]);
  return backend === undefined && settings.length === 0
    ? null
    : { host: name, ...(backend ? { backend } : {}), settings };
}

/** Names of fields, other than `skip`, whose values differ. */
function otherFields(before: object, after: object, skip: readonly string[]): string[] {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((n) => !skip.includes(n) && !sameJson(a[n], b[n])).sort();
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      sorted[key] = canonical((value as Record<string, unknown>)[key]);
    }
    return sorted;
  }
  return value;
}
