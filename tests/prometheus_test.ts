/**
 * A real Prometheus server (Debian `prometheus`) scrapes dynlb's `/metrics`; its query answers
 * must match the requests sent.
 */
import { assertEquals } from "./_assert.ts";
import { configFile, configOf, deadPort, startBackend } from "./_backend.ts";
import { eventually, get, startDynlb } from "./_dynlb.ts";

/** Runs a PromQL instant query; the single result's value, or `undefined` without one. */
async function query(prometheus: string, promql: string): Promise<number | undefined> {
  const url = `${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`;
  const body = await (await fetch(url)).json();
  const result = body?.data?.result as { value: [number, string] }[] | undefined;
  return result?.length === 1 ? Number(result[0].value[1]) : undefined;
}

Deno.test("Prometheus scrapes dynlb and its queries count the requests sent", async () => {
  await using a = await startBackend("a");
  await using b = await startBackend("b", () => new Response("no", { status: 503 }));
  const config = configOf({ "a.test": [{ port: a.port }], "b.test": [{ port: b.port }] });
  // A server that is down from the start, found by active checks.
  const dead = deadPort();
  config.backends.push({
    backend_name: "gone",
    health_check: { enable: true, type: "tcp", interval: 0.2, timeout: 0.2, success: 1, fail: 1 },
    servers: [{ addr: "127.0.0.1", port: dead, weight: 1 }],
  });
  await using lb = await startDynlb(["--config-file", await configFile(config)]);

  const dir = await Deno.makeTempDir({ prefix: "dynlb-prometheus-" });
  const admin = new URL(lb.admin);
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    [
      "global:",
      "  scrape_interval: 1s",
      "scrape_configs:",
      "  - job_name: dynlb",
      "    static_configs:",
      `      - targets: ["${admin.host}"]`,
    ].join("\n") + "\n",
  );
  const port = deadPort();
  const server = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-lifecycle",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const prometheus = `http://127.0.0.1:${port}`;
  try {
    await eventually(
      async () => {
        try {
          const response = await fetch(`${prometheus}/-/ready`);
          await response.body?.cancel();
          return response.ok;
        } catch {
          return false;
        }
      },
      30_000,
      "prometheus ready",
    );
    for (let i = 0; i < 12; i++) assertEquals((await get(lb, "a.test")).status, 200);
    for (let i = 0; i < 5; i++) assertEquals((await get(lb, "b.test")).status, 503);
    for (let i = 0; i < 3; i++) assertEquals((await get(lb, "c.test")).status, 404);

    // Wait for a scrape that saw everything, then compare what Prometheus answers.
    await eventually(
      async () => (await query(prometheus, 'sum(dynlb_requests_total{backend="b-a.test"})')) === 12,
      20_000,
      "a scrape with every request",
    );
    assertEquals(
      await query(prometheus, 'sum(dynlb_requests_total{backend="b-b.test",code="503"})'),
      5,
    );
    assertEquals(await query(prometheus, 'sum(dynlb_requests_total{backend=""})'), 3);
    assertEquals(
      await query(prometheus, 'sum(dynlb_request_duration_seconds_count{backend="b-a.test"})'),
      12,
    );
    assertEquals(
      await query(prometheus, `sum(dynlb_upstream_requests_total{server="127.0.0.1:${b.port}"})`),
      5,
    );
    assertEquals(await query(prometheus, "count(dynlb_server_up == 1)"), 2);
    await eventually(
      async () => (await query(prometheus, `dynlb_server_up{server="127.0.0.1:${dead}"}`)) === 0,
      10_000,
      "the dead server down in Prometheus",
    );
    assertEquals(await query(prometheus, 'up{job="dynlb"}'), 1);
    const p99 = await query(
      prometheus,
      'histogram_quantile(0.99, sum by (le) (dynlb_request_duration_seconds_bucket{backend="b-a.test"}))',
    );
    assertEquals(typeof p99 === "number" && p99 > 0 && p99 <= 10, true);
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});
