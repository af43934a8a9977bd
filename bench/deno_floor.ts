/**
 * The Deno floor: the least a reverse proxy on Deno can do per request, measured beside dynlb
 * so that its cost can be split into what Deno's sockets and event loop take and what dynlb's
 * features take. Not a product: no validation, no timeouts, no retries, no health, no metrics,
 * no header rewriting — it finds the end of the request head, its `Host` and `Content-Length`,
 * forwards the bytes as they came over a pooled keep-alive connection (servers picked in turn,
 * each listed `weight` times), reads the response head's `Content-Length` and copies the
 * response back. N worker isolates share the port (`reusePort`), as dynlb's do; sockets use
 * the same direct I/O as dynlb (`src/net/direct_io.ts`).
 *
 * Usage: `deno run -A --unstable-net bench/deno_floor.ts PORT WORKERS ROUTES_JSON`
 * (ROUTES_JSON: `[{"host":"a.test","servers":[{"port":8080,"weight":1}]}]`).
 *
 * @module
 */
import { directIo } from "../src/net/direct_io.ts";

interface FloorRoute {
  host: string;
  servers: { port: number; weight: number }[];
}

const CR = 13, LF = 10;
const decoder = new TextDecoder();

/** Index after the blank line ending the head in `buf[0, n)`, or -1. */
function headEnd(buf: Uint8Array, n: number): number {
  for (let i = buf.indexOf(LF); i >= 0 && i < n; i = buf.indexOf(LF, i + 1)) {
    if (i >= 3 && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return -1;
}

/** The value of header `name` (lower case, with its colon) in a head, or "". */
function header(head: string, name: string): string {
  const i = head.indexOf("\n" + name);
  if (i < 0) return "";
  const end = head.indexOf("\r", i);
  return head.slice(i + 1 + name.length, end).trim();
}

/** One upstream server: idle keep-alive connections. */
class Server {
  readonly idle: Deno.TcpConn[] = [];
  constructor(readonly port: number) {}
  async take(): Promise<Deno.TcpConn> {
    const conn = this.idle.pop();
    if (conn !== undefined) return conn;
    const fresh = directIo(await Deno.connect({ hostname: "127.0.0.1", port: this.port }));
    fresh.setNoDelay(true);
    return fresh;
  }
}

class Floor {
  readonly #routes = new Map<string, { servers: Server[]; next: number }>();

  constructor(routes: FloorRoute[]) {
    for (const route of routes) {
      const servers: Server[] = [];
      for (const { port, weight } of route.servers) {
        const server = new Server(port);
        for (let w = 0; w < weight; w++) servers.push(server);
      }
      this.#routes.set(route.host, { servers, next: 0 });
    }
  }

  async serve(port: number): Promise<void> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port, reusePort: true });
    for await (const conn of listener) {
      conn.setNoDelay(true);
      this.#client(directIo(conn)).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  }

  async #client(conn: Deno.TcpConn): Promise<void> {
    let buf = new Uint8Array(16 * 1024);
    let n = 0;
    const answer = new Uint8Array(64 * 1024);
    for (;;) {
      let end = headEnd(buf, n);
      while (end < 0) {
        const got = await conn.read(buf.subarray(n));
        if (got === null) return;
        n += got;
        end = headEnd(buf, n);
      }
      const head = decoder.decode(buf.subarray(0, end)).toLowerCase();
      const total = end + Number(header(head, "content-length:") || 0);
      if (total > buf.length) {
        const grown = new Uint8Array(total);
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      while (n < total) {
        const got = await conn.read(buf.subarray(n));
        if (got === null) return;
        n += got;
      }
      const route = this.#routes.get(header(head, "host:"));
      if (route === undefined) return;
      const server = route.servers[route.next++ % route.servers.length];
      const upstream = await server.take();
      await writeAll(upstream, buf.subarray(0, total));
      buf.copyWithin(0, total, n);
      n -= total;
      let m = 0;
      let rEnd = -1;
      while (rEnd < 0) {
        const got = await upstream.read(answer.subarray(m));
        if (got === null) throw new Error("upstream closed");
        m += got;
        rEnd = headEnd(answer, m);
      }
      const rHead = decoder.decode(answer.subarray(0, rEnd)).toLowerCase();
      const length = Number(header(rHead, "content-length:"));
      if (!Number.isFinite(length) || header(rHead, "content-length:") === "") {
        throw new Error("the floor relays Content-Length responses only");
      }
      let left = rEnd + length - m;
      await writeAll(conn, answer.subarray(0, m));
      while (left > 0) {
        const got = await upstream.read(answer.subarray(0, Math.min(left, answer.length)));
        if (got === null) throw new Error("upstream closed");
        left -= got;
        await writeAll(conn, answer.subarray(0, got));
      }
      server.idle.push(upstream);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

type Start = { port: number; routes: FloorRoute[] };

if ("WorkerGlobalScope" in globalThis) {
  const scope = self as unknown as { onmessage: (event: MessageEvent<Start>) => void };
  scope.onmessage = (event) => {
    new Floor(event.data.routes).serve(event.data.port);
  };
} else if (import.meta.main) {
  const [port, workers, routes] = Deno.args;
  for (let i = 0; i < Number(workers); i++) {
    const worker = new Worker(import.meta.url, { type: "module" });
    worker.postMessage({ port: Number(port), routes: JSON.parse(routes) } satisfies Start);
  }
}
