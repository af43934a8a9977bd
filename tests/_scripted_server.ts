/**
 * A TCP server on 127.0.0.1 that writes hand-crafted bytes, for testing HTTP clients against
 * what real servers never send.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One accepted connection with a read buffer for request heads. */
export class RawConn {
  readonly conn: Deno.Conn;
  #buffered = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /**
   * Reads one request head and then `bodyBytes` bytes; `null` when the client closed first.
   */
  async readRequest(bodyBytes = 0): Promise<{ head: string; body: Uint8Array } | null> {
    for (;;) {
      const text = decoder.decode(this.#buffered);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0 && this.#buffered.length >= end + 4 + bodyBytes) {
        const head = text.slice(0, end);
        const body = this.#buffered.slice(end + 4, end + 4 + bodyBytes);
        this.#buffered = this.#buffered.slice(end + 4 + bodyBytes);
        return { head, body };
      }
      const chunk = new Uint8Array(65536);
      let n: number | null;
      try {
        n = await this.conn.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) return null;
      const joined = new Uint8Array(this.#buffered.length + n);
      joined.set(this.#buffered);
      joined.set(chunk.subarray(0, n), this.#buffered.length);
      this.#buffered = joined;
    }
  }

  /** Writes text (Latin-1 is fine for tests) or bytes; ignores a closed peer. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
    } catch {
      // The client went away: what the test checks happens on its side.
    }
  }

  /** Waits until the client closes the connection (or resets it). */
  async waitClosed(): Promise<void> {
    const chunk = new Uint8Array(4096);
    for (;;) {
      try {
        if (await this.conn.read(chunk) === null) return;
      } catch {
        return;
      }
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** A running raw server (`await using` closes it). */
export interface RawServer extends AsyncDisposable {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops accepting, closes open connections and waits for the handlers. */
  close(): Promise<void>;
}

/**
 * Starts a server that runs `handle` for every connection (numbered from 0). The connection is
 * closed when `handle` returns.
 *
 * @example
 * ```ts
 * const server = rawServer(async (c) => {
 *   await c.readRequest();
 *   await c.write("HTTP/1.1 204 No Content\r\n\r\n");
 * });
 * await server.close();
 * ```
 */
export function rawServer(handle: (conn: RawConn, index: number) => Promise<void>): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<RawConn>();
  const handlers: Promise<void>[] = [];
  let accepted = 0;
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      const raw = new RawConn(conn);
      open.add(raw);
      const index = accepted++;
      handlers.push(
        handle(raw, index).catch(() => {}).finally(() => {
          open.delete(raw);
          raw.close();
        }),
      );
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    async close() {
      try {
        listener.close();
      } catch { /* closed before */ }
      await loop;
      for (const raw of open) raw.close();
      await Promise.all(handlers);
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound and released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
