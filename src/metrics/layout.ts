/**
 * Where each figure lives in a worker's shared memory (its *stripe*, see `stripe.ts`), and the
 * small fixed vocabularies that keep label values bounded: folded methods, error kinds,
 * listener names and histogram buckets.
 *
 * @module
 */

/** Standard methods (RFC 9110 and PATCH) in label order; anything else is `OTHER`. */
export const METHODS: readonly string[] = [
  "",
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
  "OTHER",
];

/** The `method` label index of a request method (a switch: no lookup, no allocation). */
export function methodIndex(method: string): number {
  switch (method) {
    case "GET":
      return 1;
    case "HEAD":
      return 2;
    case "POST":
      return 3;
    case "PUT":
      return 4;
    case "DELETE":
      return 5;
    case "CONNECT":
      return 6;
    case "OPTIONS":
      return 7;
    case "TRACE":
      return 8;
    case "PATCH":
      return 9;
    default:
      return 10;
  }
}

/** `kind` values of `dynlb_upstream_errors_total`, in slot order. */
export const ERROR_KINDS: readonly string[] = ["connect", "timeout", "broken", "malformed"];

/** The slot of an upstream failure kind; unknown kinds count as `broken`. */
export function errorKindIndex(kind: string): number {
  switch (kind) {
    case "connect":
      return 0;
    case "timeout":
      return 1;
    case "malformed":
      return 3;
    default:
      return 2;
  }
}

/** `listener` values of `dynlb_open_connections`, in slot order. */
export const LISTENERS: readonly string[] = ["http", "https"];

/** Default upper bounds (seconds) of the latency histograms: 1 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * Parses `--metrics-buckets`: comma-separated upper bounds in seconds, strictly increasing,
 * finite and positive. Returns the message of the first problem as a string.
 *
 * @example
 * ```ts
 * parseBuckets("0.005,0.05,0.5,5"); // [0.005, 0.05, 0.5, 5]
 * parseBuckets("1,0.5"); // "bucket bounds must increase (0.5 after 1)"
 * ```
 */
export function parseBuckets(text: string): number[] | string {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) return "give at least one bucket bound";
  if (parts.length > 64) return "at most 64 bucket bounds";
  const bounds: number[] = [];
  for (const part of parts) {
    const n = Number(part);
    if (!Number.isFinite(n) || n <= 0) return `"${part}" is not a positive number of seconds`;
    const last = bounds[bounds.length - 1];
    if (last !== undefined && n <= last) return `bucket bounds must increase (${n} after ${last})`;
    bounds.push(n);
  }
  return bounds;
}

/** Fixed slots of a stripe's header (gauges and process-wide counters of one isolate). */
export const HEADER = {
  /** `dynlb_open_connections`, one slot per entry of {@link LISTENERS}. */
  connections: 0,
  tunnels: 4,
  poolIdle: 5,
  poolActive: 6,
  accessLogDropped: 7,
  accessLogWritten: 8,
  size: 16,
} as const;

/** Method/code pairs counted per backend; the last entry takes any further pair. */
export const BACKEND_CODES = 32;
/** Status codes counted per server; the last entry takes any further code. */
export const SERVER_CODES = 16;
/** Key of the entry that took pairs beyond the table's size. */
export const OVERFLOW_KEY = -1;

/**
 * Offsets inside one backend's or one server's block, for a histogram of `buckets` bounds
 * (`buckets + 1` counts, the last one `+Inf`, then the sum).
 *
 * Backend block: retries, request duration histogram, upstream response histogram, then
 * {@link BACKEND_CODES} (key, count) pairs with key `method * 1000 + status`.
 * Server block: one count per {@link ERROR_KINDS}, upstream response histogram (for the
 * dashboard's per-server latency), then {@link SERVER_CODES} (status, count) pairs.
 *
 * @example
 * ```ts
 * const layout = new BlockLayout(DEFAULT_BUCKETS);
 * layout.backendSize; // doubles per backend
 * ```
 */
export class BlockLayout {
  readonly buckets: readonly number[];
  readonly histogramSize: number;
  readonly retries = 0;
  readonly duration = 1;
  readonly upstream: number;
  readonly backendCodes: number;
  readonly backendSize: number;
  readonly serverErrors = 0;
  readonly serverUpstream: number;
  readonly serverCodes: number;
  readonly serverSize: number;

  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.histogramSize = buckets.length + 2;
    this.upstream = this.duration + this.histogramSize;
    this.backendCodes = this.upstream + this.histogramSize;
    this.backendSize = this.backendCodes + 2 * BACKEND_CODES;
    this.serverUpstream = ERROR_KINDS.length;
    this.serverCodes = this.serverUpstream + this.histogramSize;
    this.serverSize = this.serverCodes + 2 * SERVER_CODES;
  }
}
