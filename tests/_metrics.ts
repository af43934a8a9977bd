/**
 * Reading dynlb's `/metrics` in tests: the text parsed into samples, and `promtool check
 * metrics` (Debian `prometheus`) run over it.
 *
 * @module
 */

/** One sample: its labels and value. */
export interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Fetches `/metrics` from the admin API. */
export async function scrape(lb: { admin: string }): Promise<string> {
  const response = await fetch(lb.admin + "/metrics");
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return await response.text();
}

/** Parses the text format into name → samples (comments skipped). */
export function parseMetrics(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const list = out.get(match[1]) ?? [];
    list.push({ labels, value: Number(match[3]) });
    out.set(match[1], list);
  }
  return out;
}

/** The sum of `name`'s samples whose labels include `match`. */
export function sum(
  metrics: Map<string, Sample[]>,
  name: string,
  match: Record<string, string> = {},
): number {
  let total = 0;
  for (const s of metrics.get(name) ?? []) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Runs `promtool check metrics` over `text`; resolves with its exit code and output. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}
