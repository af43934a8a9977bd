/**
 * Turns measured samples into medians, ratios to nginx and markdown tables.
 *
 * @module
 */

/** One wrk run of one proxy in one round. */
export interface Sample {
  readonly round: number;
  /** e.g. `short c32`. */
  readonly scenario: string;
  readonly proxy: string;
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Proxy CPU time (all its processes/threads) divided by requests, in µs. */
  readonly cpuUsPerRequest: number;
  /** Highest summed RSS of the proxy's processes during the run, in MiB. */
  readonly peakRssMiB: number;
  /** Non-2xx responses plus socket errors. */
  readonly errors: number;
}

/** The figures of {@link Sample} that get medians and ratios. */
export const FIGURES = ["rps", "p50Ms", "p99Ms", "cpuUsPerRequest", "peakRssMiB"] as const;
type Figure = typeof FIGURES[number];

/** Medians over rounds of one proxy in one scenario. */
export interface Summary {
  readonly scenario: string;
  readonly proxy: string;
  readonly rounds: number;
  readonly median: Record<Figure, number>;
  /** Median over rounds of (proxy figure / nginx figure in the same round); NaN without nginx. */
  readonly ratio: Record<Figure, number>;
  readonly errors: number;
}

/**
 * The median (mean of the middle two for an even count); NaN for none.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Medians per (scenario, proxy), and ratios to nginx taken round by round, so drift between
 * rounds cancels out.
 *
 * @example
 * ```ts
 * const summaries = summarize(samples, "nginx");
 * ```
 */
export function summarize(samples: readonly Sample[], reference = "nginx"): Summary[] {
  const keyOf = (s: Sample) => `${s.scenario}\u0000${s.proxy}`;
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const group = groups.get(keyOf(s));
    if (group) group.push(s);
    else groups.set(keyOf(s), [s]);
  }
  const refOf = (s: Sample) =>
    samples.find((r) => r.proxy === reference && r.scenario === s.scenario && r.round === s.round);
  const out: Summary[] = [];
  for (const group of groups.values()) {
    const median_ = {} as Record<Figure, number>;
    const ratio = {} as Record<Figure, number>;
    for (const f of FIGURES) {
      median_[f] = median(group.map((s) => s[f]));
      ratio[f] = median(group.map((s) => {
        const ref = refOf(s);
        return ref ? s[f] / ref[f] : NaN;
      }));
    }
    out.push({
      scenario: group[0].scenario,
      proxy: group[0].proxy,
      rounds: group.length,
      median: median_,
      ratio,
      errors: group.reduce((n, s) => n + s.errors, 0),
    });
  }
  return out;
}

/**
 * A markdown table from a header row and rows of cells.
 *
 * @example
 * ```ts
 * table(["a", "b"], [["1", "2"]]);
 * ```
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/**
 * A number with sensible precision for a table; `—` for NaN.
 *
 * @example
 * ```ts
 * fmt(1234.567); // "1235"
 * fmt(0.4567); // "0.457"
 * ```
 */
export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return "—";
  if (digits !== undefined) return value.toFixed(digits);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/**
 * One markdown table per scenario of the throughput run.
 *
 * @example
 * ```ts
 * console.log(throughputTables(summarize(samples)));
 * ```
 */
export function throughputTables(summaries: readonly Summary[]): string {
  const scenarios = [...new Set(summaries.map((s) => s.scenario))];
  const header = [
    "proxy",
    "req/s",
    "×nginx",
    "p50 ms",
    "×nginx",
    "p99 ms",
    "×nginx",
    "CPU µs/req",
    "×nginx",
    "peak RSS MiB",
    "×nginx",
    "errors",
  ];
  return scenarios.map((scenario) => {
    const rows = summaries.filter((s) => s.scenario === scenario).map((s) => [
      s.proxy,
      ...FIGURES.flatMap((f) => [fmt(s.median[f]), fmt(s.ratio[f], 2)]),
      String(s.errors),
    ]);
    return `#### ${scenario}\n\n${table(header, rows)}`;
  }).join("\n\n");
}
