/**
 * The idle-connections run: 10,000 keep-alive client connections that each made one request
 * (the short body) and then stay open, idle. Reported per proxy: RSS of the whole proxy (every
 * process of its tree) before and after, what the connections added (issue 10's target for
 * dynlb: ≤ 50 MB), per connection, and how many were still open at the end (each asks once more
 * after the RSS was read).
 *
 * Open-file limits are raised for the run: the harness's own (`prlimit --pid`, it holds the
 * client side of every connection) and dynlb's (started under `prlimit`, or `--max-connections`
 * would be lowered to fit); nginx gets `worker_connections` and `worker_rlimit_nofile` to match.
 * Raising a hard limit needs root; without it the run reports how many connections it could open.
 *
 * @module
 */
import {
  dynlbConfig,
  freePort,
  HOSTS,
  nginxProxyConf,
  PATHS,
  type Proxy,
  type ProxyName,
  type Route,
  startDynlb,
  startNginx,
  waitForPort,
} from "./peers.ts";
import { processTree, rssBytes, runTracked } from "./proc.ts";
import { fmt, table } from "./report.ts";

/** Settings of the run. */
export interface IdleSettings {
  /** Connections opened and left idle. */
  readonly connections: number;
  /** Connections being opened at once. */
  readonly concurrency: number;
  /** Seconds waited after the last connection before RSS is read (settling). */
  readonly settleSeconds: number;
}

/** What one proxy measured. */
export interface IdleRow {
  readonly proxy: string;
  readonly wanted: number;
  /** Connections that got their answer. */
  readonly opened: number;
  /** Of those, still open when the RSS was read. */
  readonly open: number;
  readonly rssBeforeMiB: number;
  readonly rssAfterMiB: number;
  readonly addedMiB: number;
  /** Added RSS per open connection, in KiB. */
  readonly kibPerConnection: number;
  /** Seconds to open every connection and get its answer. */
  readonly openSeconds: number;
}

const OPEN_FILES = 65_536;
const encoder = new TextEncoder();
const REQUEST = encoder.encode(`GET ${PATHS.short} HTTP/1.1\r\nHost: ${HOSTS.main}\r\n\r\n`);

/** Sends one request on `conn` and reads the whole answer (a `Content-Length` body). */
async function exchange(conn: Deno.TcpConn): Promise<boolean> {
  try {
    await conn.write(REQUEST);
    const buf = new Uint8Array(4096);
    let got = 0;
    for (;;) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) return false;
      got += n;
      const text = new TextDecoder().decode(buf.subarray(0, got));
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) continue;
      if (!text.startsWith("HTTP/1.1 200")) return false;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? NaN);
      if (got >= end + 4 + length) return true;
    }
  } catch {
    return false;
  }
}

/** Connects and makes one request; the connection is then left idle (null if that failed). */
async function openIdle(port: number): Promise<Deno.TcpConn | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return null;
  }
  if (await exchange(conn)) return conn;
  conn.close();
  return null;
}

/** This process's open-file limit (soft, hard). */
async function openFileLimit(): Promise<[number, number]> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  const n = (s: string | undefined) => s === undefined || s === "unlimited" ? Infinity : Number(s);
  return [n(m?.[1]), n(m?.[2])];
}

/**
 * Raises this process's open-file limit to {@link OPEN_FILES} (root), or else its soft limit to
 * the hard one; resolves the limit in force.
 */
async function raiseOpenFiles(): Promise<number> {
  const [soft, hard] = await openFileLimit();
  for (const limit of [OPEN_FILES, hard]) {
    if (limit <= soft || !Number.isFinite(limit)) continue;
    const pid = String(Deno.pid);
    const raised = await runTracked("prlimit", ["--pid", pid, `--nofile=${limit}:${limit}`]);
    if (raised.success) return limit;
  }
  return soft;
}

function rssMiB(pid: number): number {
  return rssBytes(processTree(pid)) / 2 ** 20;
}

/** Starts one proxy of the run, with limits for `connections` idle clients. */
async function startIdleProxy(
  name: ProxyName,
  dir: string,
  routes: readonly Route[],
  connections: number,
  openFiles: number,
): Promise<Proxy> {
  if (name === "nginx") {
    const port = freePort();
    const conf = `${dir}/nginx-idle.conf`;
    // Per worker: all of them may land on one worker, plus its upstream connections.
    await Deno.writeTextFile(
      conf,
      nginxProxyConf(dir, port, routes, "nginx-idle", connections + 4096),
    );
    const process = startNginx("nginx-idle", dir, conf);
    await waitForPort(port, process);
    return {
      name,
      url: `http://127.0.0.1:${port}`,
      pid: process.pid,
      process,
      describe: `nginx 2 workers, worker_connections ${connections + 4096}`,
    };
  }
  const [, kind, w] = name.split("-");
  const serve = kind === "serve";
  return await startDynlb({
    name: `${name}-idle`,
    dir,
    config: dynlbConfig(routes),
    transport: serve ? "h1" : kind as "h1" | "fetch",
    workers: Number(w.slice(1)),
    // The connections must outlive the run (nginx's keepalive_timeout here is 300 s too).
    extraArgs: [
      ...(serve ? ["--listener", "serve"] : []),
      "--client-idle-timeout",
      "300",
      "--max-connections",
      String(connections + 1000),
    ],
    openFiles,
  });
}

/**
 * Runs the idle-connections measurement for each proxy in turn.
 *
 * @example
 * ```ts
 * const { rows, markdown } = await idleConnectionsRun(dir, routes, ["nginx"], settings, progress);
 * ```
 */
export async function idleConnectionsRun(
  dir: string,
  routes: readonly Route[],
  proxies: readonly ProxyName[],
  settings: IdleSettings,
  progress: (message: string) => void,
): Promise<{ rows: IdleRow[]; markdown: string }> {
  // The client side of every connection lives in this process; dynlb is started with the same.
  const openFiles = await raiseOpenFiles();
  progress(`idle connections: open-file limit ${openFiles} (this process and dynlb)`);
  const rows: IdleRow[] = [];
  for (const name of proxies) {
    if (name !== "nginx" && !name.startsWith("dynlb")) continue;
    const proxy = await startIdleProxy(name, dir, routes, settings.connections, openFiles);
    const clients: Deno.TcpConn[] = [];
    try {
      const port = Number(new URL(proxy.url).port);
      // Warm-up on a few connections (JIT, pools), closed again, then a quiet moment.
      const warm = await Promise.all(Array.from({ length: 64 }, () => openIdle(port)));
      for (const c of warm) c?.close();
      await new Promise((r) => setTimeout(r, settings.settleSeconds * 1000));
      const before = rssMiB(proxy.pid);
      const started = performance.now();
      let next = 0;
      const opener = async () => {
        while (next < settings.connections) {
          next++;
          const client = await openIdle(port);
          if (client !== null) clients.push(client);
        }
      };
      await Promise.all(Array.from({ length: settings.concurrency }, opener));
      const openSeconds = (performance.now() - started) / 1000;
      await new Promise((r) => setTimeout(r, settings.settleSeconds * 1000));
      const after = rssMiB(proxy.pid);
      // Still open and served: each connection asks again (after the RSS was read), a few at a
      // time as they were opened.
      let open = 0;
      let asked = 0;
      const asker = async () => {
        while (asked < clients.length) if (await exchange(clients[asked++])) open++;
      };
      await Promise.all(Array.from({ length: settings.concurrency }, asker));
      const row: IdleRow = {
        proxy: proxy.name,
        wanted: settings.connections,
        opened: clients.length,
        open,
        rssBeforeMiB: before,
        rssAfterMiB: after,
        addedMiB: after - before,
        kibPerConnection: open === 0 ? NaN : (after - before) * 1024 / open,
        openSeconds,
      };
      progress(
        `idle connections, ${row.proxy}: ${row.open}/${row.wanted} open, RSS ` +
          `${fmt(before, 1)} → ${fmt(after, 1)} MiB (+${fmt(row.addedMiB, 1)}, ` +
          `${fmt(row.kibPerConnection, 1)} KiB each)`,
      );
      rows.push(row);
    } finally {
      for (const c of clients) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await proxy.process.stop();
    }
  }
  const markdown = `### Idle keep-alive connections (${settings.connections} client ` +
    `connections each make one request for the short body, then stay open and idle; RSS of the ` +
    `whole proxy (all its processes) ${settings.settleSeconds} s after a 64-connection warm-up ` +
    `and ${settings.settleSeconds} s after the last connection; target for dynlb: ≤ 50 MB ` +
    `per 10,000; open-file limit ${openFiles}: dynlb keeps two descriptors per connection plus ` +
    `256 for itself, so a lower limit caps how many it holds)\n\n` +
    table(
      [
        "proxy",
        "open / wanted",
        "RSS before MiB",
        "RSS after MiB",
        "added MiB",
        "KiB per connection",
        "MB per 10,000",
        "seconds to open",
      ],
      rows.map((r) => [
        r.proxy,
        `${r.open}/${r.wanted}`,
        fmt(r.rssBeforeMiB, 1),
        fmt(r.rssAfterMiB, 1),
        fmt(r.addedMiB, 1),
        fmt(r.kibPerConnection, 1),
        fmt(r.kibPerConnection * 1024 * 10_000 / 1e6, 1),
        fmt(r.openSeconds, 1),
      ]),
    );
  return { rows, markdown };
}
