/**
 * Turns measured samples into medians, ratios to nginx and markdown tables.
 *
 * @module
 */
import type { MeteredRun } from "./wrk.ts";

/** One wrk run of one proxy in one round. */
export interface Sample extends MeteredRun {
  readonly round: number;
  /** e.g. `short c32`. */
  readonly scenario: string;
  readonly proxy: string;
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

/** The figures a variant comparison keeps of each measurement. */
export interface VariantMeasure {
  readonly rps: number;
  readonly p99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly errors: number;
}

/** Medians over rounds of one variant of a run that compares variants of one dynlb. */
export interface VariantRow extends VariantMeasure {
  readonly variant: string;
}

/**
 * Medians per variant, in the order of `labels`; errors are summed.
 *
 * @example
 * ```ts
 * const rows = variantRows(["exact host", "wildcard host"], samples);
 * ```
 */
export function variantRows(
  labels: readonly string[],
  samples: ReadonlyMap<string, readonly VariantMeasure[]>,
): VariantRow[] {
  return labels.map((label) => {
    const list = samples.get(label) ?? [];
    return {
      variant: label,
      rps: median(list.map((m) => m.rps)),
      p99Ms: median(list.map((m) => m.p99Ms)),
      cpuUsPerRequest: median(list.map((m) => m.cpuUsPerRequest)),
      errors: list.reduce((sum, m) => sum + m.errors, 0),
    };
  });
}

/**
 * A titled markdown table of variant rows, throughput compared with the first row.
 *
 * @example
 * ```ts
 * console.log(variantTable("### Routing lookups", rows));
 * ```
 */
export function variantTable(title: string, rows: readonly VariantRow[]): string {
  const reference = rows[0].rps;
  return `${title}\n\n` + table(
    ["variant", "req/s (median)", "vs first", "p99 ms", "CPU µs/req", "errors"],
    rows.map((r) => [
      r.variant,
      fmt(r.rps),
      `${fmt((r.rps / reference - 1) * 100, 1)}%`,
      fmt(r.p99Ms),
      fmt(r.cpuUsPerRequest),
      String(r.errors),
    ]),
  );
}
