/**
 * Idle connections to one upstream server.
 *
 * Size limit: at most `max` connections belong to the pool (busy or idle). When all are busy a
 * request does not wait: it opens an extra connection that is closed after its exchange. Waiting
 * would add latency and could stall behind slow responses; the limit bounds what stays open.
 * Reuse is LIFO (the most recently used connection is the likeliest to be alive and warm), and
 * idle connections are closed after `idleTimeoutMs` or as soon as the upstream closes them.
 *
 * @module
 */
import type { H1Connection } from "./connection.ts";

/**
 * The pool of one server.
 *
 * @example
 * ```ts
 * const pool = new ServerPool(64, 30_000);
 * const conn = pool.take(performance.now()); // null: none idle, connect a new one
 * ```
 */
export class ServerPool {
  /** Idle connections, most recently used last. */
  readonly #idle: H1Connection[] = [];
  /** Pooled connections (busy or idle). */
  #members = new Set<H1Connection>();
  readonly #max: number;
  readonly #idleTimeoutMs: number;

  constructor(max: number, idleTimeoutMs: number) {
    this.#max = max;
    this.#idleTimeoutMs = idleTimeoutMs;
  }

  /** Idle connections right now. */
  get idleCount(): number {
    return this.#idle.length;
  }

  /** Connections belonging to the pool (busy or idle). */
  get size(): number {
    return this.#members.size;
  }

  /** Takes the most recently used idle connection still fresh, or `null`. */
  take(now: number): H1Connection | null {
    const idle = this.#idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      conn.idle = false;
      if (!conn.closed && now - conn.idleSince < this.#idleTimeoutMs) return conn;
      this.#drop(conn);
    }
    return null;
  }

  /** Registers a new connection; `false` when the pool is full (the caller closes it after use). */
  admit(conn: H1Connection): boolean {
    if (this.#members.size >= this.#max) return false;
    this.#members.add(conn);
    return true;
  }

  /** Returns a connection after a clean exchange; non-members are closed. */
  release(conn: H1Connection, now: number): void {
    if (conn.closed || !this.#members.has(conn)) {
      this.#drop(conn);
      return;
    }
    conn.idleSince = now;
    conn.idle = true;
    this.#idle.push(conn);
    conn.watchIdle(this.#evict);
  }

  /** Closes a connection that cannot be reused and forgets it. */
  discard(conn: H1Connection): void {
    this.#drop(conn);
  }

  /** Forgets a busy connection without closing it (it became a tunnel). */
  detach(conn: H1Connection): void {
    this.#members.delete(conn);
  }

  /** Closes idle connections older than the idle timeout; returns how many stay idle. */
  sweep(now: number): number {
    const idle = this.#idle;
    let n = 0;
    while (n < idle.length && now - idle[n].idleSince >= this.#idleTimeoutMs) n++;
    if (n > 0) {
      for (const conn of idle.splice(0, n)) {
        conn.idle = false;
        this.#drop(conn);
      }
    }
    return idle.length;
  }

  /** Closes every idle connection and forgets busy ones (they close when their exchange ends). */
  close(): void {
    for (const conn of this.#idle) {
      conn.idle = false;
      conn.close();
    }
    this.#idle.length = 0;
    this.#members.clear();
  }

  /** An idle connection turned out dead (the upstream closed it or sent bytes unasked). */
  readonly #evict = (conn: H1Connection): void => {
    conn.idle = false;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#drop(conn);
  };

  #drop(conn: H1Connection): void {
    conn.close();
    this.#members.delete(conn);
  }
}
