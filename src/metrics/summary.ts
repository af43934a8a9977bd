/**
 * The dashboard's JSON (`GET /dashboard.json`): every backend and server with its state,
 * weight, requests per second, error rate and p50/p99 latency over the last minute, plus the
 * config version and the recent reloads and health changes.
 *
 * Rates need two readings: each call keeps a reading of the counters (at most one a second,
 * none older than a minute plus one), and figures are the difference between now and the
 * oldest reading kept. Nothing is sampled while nobody asks.
 *
 * @module
 */
import type { BackendStatus } from "../health/types.ts";
import type { HealthEvent } from "./events.ts";
import type { MetricsRegistry } from "./registry.ts";
import type { Reload } from "./reloads.ts";

/** Where the summary reads from. */
export interface SummarySources {
  readonly registry: MetricsRegistry;
  readonly status: () => readonly BackendStatus[];
  readonly running: () => { version: number; hash: string; source: string; applied_at: string };
  readonly reloads: () => readonly Reload[];
  readonly healthEvents: () => readonly HealthEvent[];
}

/** Figures of one backend or server over the window. */
export interface WindowFigures {
  readonly requests_per_s: number | null;
  /** Share of 5xx answers (and, for a server, failed exchanges); null without requests. */
  readonly error_rate: number | null;
  /** Seconds; null without requests. */
  readonly p50: number | null;
  readonly p99: number | null;
}

interface Reading {
  readonly time: number;
  /** id → [requests, errors, histogram counts…] */
  readonly backends: Map<number, Float64Array>;
  readonly servers: Map<number, Float64Array>;
}

const WINDOW_MS = 60_000;
const MIN_SPACING_MS = 1_000;

/**
 * Builds dashboard summaries.
 *
 * @example
 * ```ts
 * const summary = new Summary(sources);
 * const body = summary.read();
 * ```
 */
export class Summary {
  readonly #sources: SummarySources;
  #readings: Reading[] = [];

  constructor(sources: SummarySources) {
    this.#sources = sources;
  }

  /** The summary now. */
  read(now = Date.now()): Record<string, unknown> {
    const { registry, status, running, reloads, healthEvents } = this.#sources;
    const current = this.#take(now);
    const base = this.#readings[0];
    const seconds = (current.time - base.time) / 1000;
    const bounds = registry.layout.buckets;
    const idOf = new Map(registry.backends.map((b) => [b.name, b]));
    const backends = status().map((b) => {
      const metered = idOf.get(b.backend);
      const serverIds = new Map(metered?.servers.map((s) => [s.server, s.id]));
      return {
        backend: b.backend,
        check: b.check,
        ...figures(current.backends, base.backends, metered?.id, seconds, bounds),
        servers: b.servers.map((s) => ({
          server: s.server,
          state: s.state,
          weight: s.weight,
          last_error: s.last_error,
          last_change: s.last_change,
          ...figures(current.servers, base.servers, serverIds.get(s.server), seconds, bounds),
        })),
      };
    });
    const r = running();
    return {
      time: new Date(now).toISOString(),
      window_s: seconds,
      config: { version: r.version, hash: r.hash, source: r.source, applied_at: r.applied_at },
      unmatched: figures(current.backends, base.backends, 0, seconds, bounds),
      backends,
      reloads: reloads().map((x) => ({ ...x, time: new Date(x.time).toISOString() })),
      health_events: healthEvents(),
    };
  }

  /** Reads the counters (or reuses a reading younger than a second) and drops old readings. */
  #take(now: number): Reading {
    const last = this.#readings[this.#readings.length - 1];
    if (last !== undefined && now - last.time < MIN_SPACING_MS) return last;
    const registry = this.#sources.registry;
    const l = registry.layout;
    const codes = new Map<number, number>();
    const backends = new Map<number, Float64Array>();
    for (const b of [{ id: 0 }, ...registry.backends]) {
      const v = new Float64Array(2 + l.histogramSize);
      registry.sumBackend(b.id, l.duration, v.subarray(2));
      v[0] = count(v.subarray(2), l.buckets.length);
      codes.clear();
      for (const [key, n] of registry.backendCodes(b.id, codes)) if (key % 1000 >= 500) v[1] += n;
      backends.set(b.id, v);
    }
    const servers = new Map<number, Float64Array>();
    const kinds = new Float64Array(l.serverUpstream - l.serverErrors);
    for (const b of registry.backends) {
      for (const s of b.servers) {
        const v = new Float64Array(2 + l.histogramSize);
        registry.sumServer(s.id, l.serverUpstream, v.subarray(2));
        codes.clear();
        for (const [key, n] of registry.serverCodes(s.id, codes)) {
          v[0] += n;
          if (key >= 500) v[1] += n;
        }
        registry.sumServer(s.id, l.serverErrors, kinds);
        for (const n of kinds) {
          v[0] += n;
          v[1] += n;
        }
        servers.set(s.id, v);
      }
    }
    const reading = { time: now, backends, servers };
    this.#readings.push(reading);
    // Keep the newest reading at least a minute old as the window's start.
    while (this.#readings.length > 2 && this.#readings[1].time <= now - WINDOW_MS) {
      this.#readings.shift();
    }
    return reading;
  }
}

function count(hist: Float64Array, buckets: number): number {
  let n = 0;
  for (let i = 0; i <= buckets; i++) n += hist[i];
  return n;
}

function figures(
  current: Map<number, Float64Array>,
  base: Map<number, Float64Array>,
  id: number | undefined,
  seconds: number,
  bounds: readonly number[],
): WindowFigures {
  const now = id === undefined ? undefined : current.get(id);
  if (now === undefined || seconds <= 0) {
    return { requests_per_s: null, error_rate: null, p50: null, p99: null };
  }
  const then = base.get(id!) ?? new Float64Array(now.length);
  const requests = now[0] - then[0];
  const errors = now[1] - then[1];
  const hist = new Float64Array(bounds.length + 1);
  for (let i = 0; i <= bounds.length; i++) hist[i] = now[2 + i] - then[2 + i];
  return {
    requests_per_s: requests / seconds,
    error_rate: requests > 0 ? errors / requests : null,
    p50: quantile(0.5, hist, bounds),
    p99: quantile(0.99, hist, bounds),
  };
}

/**
 * A quantile from non-cumulative bucket counts, interpolated within its bucket as Prometheus'
 * `histogram_quantile` does (the `+Inf` bucket answers with the highest bound).
 *
 * @example
 * ```ts
 * quantile(0.5, new Float64Array([0, 10, 0]), [0.1, 1]); // 0.55
 * ```
 */
export function quantile(
  q: number,
  counts: Float64Array,
  bounds: readonly number[],
): number | null {
  let total = 0;
  for (const n of counts) total += n;
  if (total === 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    const before = cumulative;
    cumulative += counts[i];
    if (cumulative >= rank && counts[i] > 0) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - before) / counts[i]);
    }
  }
  return bounds[bounds.length - 1];
}
