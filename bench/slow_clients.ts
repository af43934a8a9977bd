/**
 * The slow-client run: 2,000 connections that send the start of a request head and never finish
 * it (a slowloris), while wrk measures a normal client. Reported: requests/s of the normal client
 * before and during the attack, how many of the slow connections dynlb answered `408`, and when
 * the last of them was closed (after `--client-header-timeout`).
 *
 * @module
 */
import { dynlbConfig, HOSTS, PATHS, type Route, startDynlb } from "./peers.ts";
import { fmt, table } from "./report.ts";
import { runWrk } from "./wrk.ts";

/** Settings of the run. */
export interface SlowClientSettings {
  /** Connections that never finish their head. */
  readonly slow: number;
  /** `--client-header-timeout` given to dynlb, seconds. */
  readonly headerTimeoutSeconds: number;
  /** Seconds of each wrk measurement. */
  readonly durationSeconds: number;
  readonly connections: number;
}

/** What one run measured. */
export interface SlowClientRow {
  readonly proxy: string;
  readonly slow: number;
  /** Slow connections that could be opened. */
  readonly opened: number;
  readonly rpsBefore: number;
  readonly rpsDuring: number;
  /** Slow connections answered `408` before they were closed. */
  readonly answered408: number;
  /** Slow connections closed by the proxy by the end of the wait. */
  readonly closed: number;
  /** Seconds from the last slow connection opened to the last one closed. */
  readonly lastClosedSeconds: number;
}

const encoder = new TextEncoder();

/** One slow connection: the head's first lines, then silence; resolves when the proxy closes. */
async function slowConnection(
  port: number,
): Promise<{ closed: Promise<{ at: number; got408: boolean }> } | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(`GET ${PATHS.short} HTTP/1.1\r\nHost: ${HOSTS.main}\r\n`));
  } catch {
    return null;
  }
  const closed = (async () => {
    const buf = new Uint8Array(1024);
    let text = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      // reset: closed as well
    }
    try {
      conn.close();
    } catch { /* closed */ }
    return { at: performance.now(), got408: text.startsWith("HTTP/1.1 408") };
  })();
  return { closed };
}

/**
 * Runs the slow-client attack against dynlb.
 *
 * @example
 * ```ts
 * const { rows, markdown } = await slowClientRun(dir, backends.routes, settings, dynlb, progress);
 * ```
 */
export async function slowClientRun(
  dir: string,
  routes: readonly Route[],
  settings: SlowClientSettings,
  dynlb: { transport: "h1" | "fetch"; workers: number },
  progress: (message: string) => void,
): Promise<{ rows: SlowClientRow[]; markdown: string }> {
  const name = `dynlb-${dynlb.transport}-w${dynlb.workers}`;
  const proxy = await startDynlb({
    name: `${name}-slow`,
    dir,
    config: dynlbConfig(routes),
    transport: dynlb.transport,
    workers: dynlb.workers,
    extraArgs: ["--client-header-timeout", String(settings.headerTimeoutSeconds)],
  });
  try {
    const port = Number(new URL(proxy.url).port);
    const wrk = () =>
      runWrk({
        url: proxy.url + PATHS.short,
        host: HOSTS.main,
        connections: settings.connections,
        durationSeconds: settings.durationSeconds,
      });
    await wrk(); // warm-up
    const before = await wrk();
    const slow = (await Promise.all(
      Array.from({ length: settings.slow }, () => slowConnection(port)),
    )).filter((c) => c !== null);
    const openedAt = performance.now();
    const during = await wrk();
    // Wait for every slow connection to be closed, at most twice the timeout.
    const deadline = settings.headerTimeoutSeconds * 2000;
    const ends = await Promise.all(slow.map((c) =>
      Promise.race([
        c.closed,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), deadline)),
      ])
    ));
    const closedEnds = ends.filter((e) => e !== null);
    const row: SlowClientRow = {
      proxy: name,
      slow: settings.slow,
      opened: slow.length,
      rpsBefore: before.requestsPerSecond,
      rpsDuring: during.requestsPerSecond,
      answered408: closedEnds.filter((e) => e.got408).length,
      closed: closedEnds.length,
      lastClosedSeconds: closedEnds.length === 0
        ? NaN
        : (Math.max(...closedEnds.map((e) => e.at)) - openedAt) / 1000,
    };
    progress(
      `slow clients: ${row.opened} open, ${fmt(row.rpsBefore)} → ${fmt(row.rpsDuring)} req/s, ` +
        `${row.closed} closed (${row.answered408} with 408) by ${fmt(row.lastClosedSeconds, 1)} s`,
    );
    const markdown = `### Slow clients (${settings.slow} connections send \`GET … HTTP/1.1\` and ` +
      `\`Host\` and never finish the head; a normal client measured with wrk -t1 ` +
      `-c${settings.connections} -d${settings.durationSeconds}s on the short body before and ` +
      `during; \`--client-header-timeout ${settings.headerTimeoutSeconds}\`)\n\n` +
      table(
        [
          "proxy",
          "slow conns open",
          "req/s before",
          "req/s during",
          "ratio",
          "closed",
          "answered 408",
          "last closed after s",
        ],
        [[
          row.proxy,
          String(row.opened),
          fmt(row.rpsBefore),
          fmt(row.rpsDuring),
          fmt(row.rpsDuring / row.rpsBefore, 2),
          `${row.closed}/${row.opened}`,
          String(row.answered408),
          fmt(row.lastClosedSeconds, 1),
        ]],
      );
    return { rows: [row], markdown };
  } finally {
    await proxy.process.stop();
  }
}
