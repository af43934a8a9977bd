/**
 * A real loopback TCP server for health-check tests: it answers every connection with fixed
 * bytes (or holds it open, for hang tests), counts connections, and lets a test wait for the
 * n-th one instead of sleeping.
 *
 * @module
 */

/** A listening test server. */
export interface RawServer extends AsyncDisposable {
  readonly hostname: string;
  readonly port: number;
  /** Bytes written to each new connection after its first read; null holds it open silently. */
  response: string | null;
  /** Connections accepted so far. */
  readonly connections: number;
  /** The most connections that were open at once. */
  readonly maxOpen: number;
  /** Resolves once `connections` reaches `n`. */
  waitConnections(n: number): Promise<void>;
  /** Stops listening and closes every open connection; a second call does nothing. */
  close(): Promise<void>;
}

/**
 * Starts a server on `hostname` (127.0.0.1) and `port` (0: any free port).
 *
 * @example
 * ```ts
 * const server = rawServer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
 * await server.close();
 * ```
 */
export function rawServer(
  response: string | null,
  options: { hostname?: string; port?: number } = {},
): RawServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port: options.port ?? 0 });
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const encoder = new TextEncoder();
  let connections = 0;
  let closed = false;
  let maxOpen = 0;

  const handle = async (conn: Deno.Conn, reply: string | null) => {
    try {
      if (reply === null) {
        // Held open until the client or close() ends it.
        while ((await conn.read(new Uint8Array(1024))) !== null);
        return;
      }
      const n = await conn.read(new Uint8Array(4096));
      if (n === null) return;
      const bytes = encoder.encode(reply);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    } catch {
      // The client went away first.
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // Closed by close().
      }
    }
  };

  const server: RawServer = {
    hostname,
    port: (listener.addr as Deno.NetAddr).port,
    response,
    get connections() {
      return connections;
    },
    get maxOpen() {
      return maxOpen;
    },
    waitConnections(n) {
      if (connections >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      await accepting;
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await Promise.all(handlers);
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        open.add(conn);
        maxOpen = Math.max(maxOpen, open.size);
        const p = handle(conn, server.response);
        handlers.add(p);
        p.finally(() => handlers.delete(p));
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (connections >= waiters[i].n) waiters.splice(i, 1)[0].resolve();
        }
      }
    } catch {
      // Listener closed.
    }
  })();
  return server;
}

/** An HTTP/1.1 response with an empty body and the given status line. */
export function httpResponse(status: string): string {
  return `HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

/**
 * A free loopback port with nothing listening on it (bound then released).
 *
 * @example
 * ```ts
 * const port = closedPort();
 * ```
 */
export function closedPort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Resolves when `predicate` holds, checked each time `wake` is called or every `pollMs`;
 * rejects after `guardMs` (a failure guard, not a timing assertion).
 *
 * @example
 * ```ts
 * await until(() => server.connections >= 3);
 * ```
 */
export function until(predicate: () => boolean, guardMs = 10_000, pollMs = 10): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - started > guardMs) return reject(new Error("condition not met in time"));
      setTimeout(tick, pollMs);
    };
    tick();
  });
}
