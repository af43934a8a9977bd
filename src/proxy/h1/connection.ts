/**
 * One upstream connection: a reusable read buffer over a byte stream, reading response heads,
 * and the idle watch that notices an upstream closing a pooled connection.
 *
 * @module
 */
import type { Tunnel } from "../transport.ts";
import { SlabPool } from "./slabs.ts";
import {
  findHeadEnd,
  type HeadLimits,
  ParseError,
  parseHead,
  type ResponseHead,
} from "./parser.ts";

/**
 * What a connection reads from; `Deno.Conn` is one.
 *
 * @example
 * ```ts
 * const source: ByteSource = await Deno.connect({ port: 8080 });
 * ```
 */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * What a connection talks over; `Deno.TcpConn` is one.
 *
 * @example
 * ```ts
 * const conn: ByteConn = await Deno.connect({ port: 8080 });
 * ```
 */
export interface ByteConn extends ByteSource {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/**
 * Told when a read started by {@link Wire.wait} ends: a wait costs no promise and no closure
 * (an idle keep-alive client connection holds its pending read for minutes).
 *
 * @example
 * ```ts
 * wire.wait({ readEnded: (more) => console.log(more ? "bytes" : "end"), readFailed: console.error });
 * ```
 */
export interface ReadListener {
  /** The read brought bytes (`true`, they are buffered) or the stream ended (`false`). */
  readEnded(more: boolean): void;
  /** The read failed (a reset, or the socket closed under it). */
  readFailed(err: unknown): void;
}

/**
 * The upstream closed the connection before a complete response.
 *
 * @example
 * ```ts
 * if (err instanceof EofError && err.empty) console.log("dropped before answering");
 * ```
 */
export class EofError extends Error {
  override name = "EofError";
  /** No byte of a response had arrived: typical of a pooled connection the upstream dropped. */
  readonly empty: boolean;

  constructor(message: string, empty: boolean) {
    super(message);
    this.empty = empty;
  }
}

const INITIAL_BUFFER = 16 * 1024;
/** Less free space than this at the end of the buffer makes a read compact (or grow) it first. */
const MIN_READ = 4096;
/**
 * The largest read buffer of a parked wire ({@link Wire.park}): big enough for a typical request
 * head (wrk's, curl's, most browsers'), so that a keep-alive connection between requests does not
 * hold {@link INITIAL_BUFFER} bytes. 10,000 idle connections hold 10 MiB of these instead of 160
 * MiB; fewer still when their heads are short ({@link parkedSize}).
 */
export const PARKED_BUFFER = 1024;
/** The smallest parked buffer (a smaller one saves no memory: malloc rounds up). */
const MIN_PARKED = 128;

/**
 * The parked buffer for requests of about `bytes` bytes (a head, and a body that comes with it):
 * room for a quarter more, as a power of two from 128 B to {@link PARKED_BUFFER} (a request that
 * does not fit costs one more read).
 *
 * @example
 * ```ts
 * parkedSize(60); // 128
 * parkedSize(300); // 512
 * ```
 */
export function parkedSize(bytes: number): number {
  const want = bytes + (bytes >> 2);
  let size = MIN_PARKED;
  while (size < want && size < PARKED_BUFFER) size <<= 1;
  return size;
}
/** The parked buffers of each size, 128 B to 1 KiB (per isolate). */
const parkedPools = [MIN_PARKED, 2 * MIN_PARKED, 4 * MIN_PARKED, PARKED_BUFFER].map((size) =>
  new SlabPool(size)
);

/** The pool of parked buffers of `size` bytes (a {@link parkedSize}). */
function parkedPool(size: number): SlabPool {
  return parkedPools[31 - Math.clz32(size / MIN_PARKED)];
}

/**
 * Parked buffers taken by wires and not given back yet, in this isolate (a closed connection's
 * wire gives its own back).
 *
 * @example
 * ```ts
 * console.log(`${parkedBuffersOut()} connections parked`);
 * ```
 */
export function parkedBuffersOut(): number {
  let out = 0;
  for (const pool of parkedPools) out += pool.out;
  return out;
}

/** The buffer of a released wire: nothing to read. */
const RELEASED = new Uint8Array(0);

/** Read buffers given back by parking wires, taken again when one needs room (per isolate). */
const spare: Uint8Array<ArrayBuffer>[] = [];
/** Spare buffers kept: enough for the connections busy at once, bounded (1 MiB). */
const MAX_SPARE = 64;

/**
 * A read buffer over a byte source: `buf[start, end)` holds bytes read but not yet consumed.
 *
 * @example
 * ```ts
 * const wire = new Wire(conn);
 * const head = await readResponseHead(wire, DEFAULT_LIMITS);
 * ```
 */
export class Wire {
  buf: Uint8Array<ArrayBuffer>;
  start = 0;
  end = 0;
  readonly source: ByteSource;
  /** The read in flight, until {@link fill} takes it over (or, when {@link wait}ed, it ends). */
  #pending: Promise<boolean> | null = null;
  /** Told when the pending read ends ({@link wait}); `null`: its promise tells. */
  #listener: ReadListener | null = null;
  /**
   * The small buffer of {@link park}, a view of a shared slab: taken on the first park, again
   * when the size wanted changes, given back by {@link release}.
   */
  #small: Uint8Array<ArrayBuffer> | null = null;
  /** Parked, and the next read may still go to the small buffer. */
  #parkedRead = false;
  /** A read is in flight (its buffer may not go to anyone else until it ends). */
  #reading = false;
  /** {@link release} ran. */
  #released = false;

  constructor(source: ByteSource, size = INITIAL_BUFFER) {
    this.source = source;
    this.buf = new Uint8Array(size);
  }

  /**
   * Between requests: when nothing is buffered and no read is pending, the next read goes to a
   * small buffer, {@link parkedSize}`(expect)` bytes (`expect`: the longest request seen on the
   * connection), and the big one is given back for other connections. Any read after that
   * one (a head longer than the small buffer, a body, a tunnel) moves the bytes to a big buffer
   * again. The small buffer is a view of a shared slab ({@link SlabPool}): a parking wire must
   * be {@link release}d when it is done with.
   */
  park(expect: number = PARKED_BUFFER): void {
    if (this.start !== this.end || this.#pending !== null || this.#reading || this.#released) {
      return;
    }
    this.start = this.end = 0;
    this.#parkedRead = true;
    const size = parkedSize(expect);
    let small = this.#small;
    if (small === null || small.length !== size) {
      if (small !== null) parkedPool(small.length).give(small);
      this.#small = small = parkedPool(size).take();
    }
    const buf = this.buf;
    if (buf === small) return;
    if (buf.length === INITIAL_BUFFER && spare.length < MAX_SPARE) spare.push(buf);
    this.buf = small;
  }

  /**
   * The wire is done with (its connection closed): its parked buffer goes back to the shared
   * slab — once the read in flight has ended, if one is — nothing buffered is left, and every
   * later read fails. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.buf = RELEASED;
    this.start = this.end = 0;
    if (!this.#reading) this.#giveBack();
  }

  #giveBack(): void {
    const small = this.#small;
    if (small === null) return;
    this.#small = null;
    parkedPool(small.length).give(small);
  }

  /** Bytes buffered and not consumed. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Reads more bytes into the buffer, compacting or growing it when full (callers bound how much
   * they let accumulate). Resolves `false` at end of stream. A read started by {@link prefetch} is
   * taken over instead of starting another.
   */
  fill(): Promise<boolean> {
    const pending = this.#pending;
    if (pending !== null) {
      this.#pending = null;
      this.#listener = null; // a waited read: its end now resolves the promise instead
      return pending;
    }
    return this.#read();
  }

  /** Starts a read in the background (while idle), to be taken over by the next {@link fill}. */
  prefetch(): Promise<boolean> {
    this.#pending ??= this.#read();
    return this.#pending;
  }

  /**
   * Reads more bytes (as {@link fill}) and tells `listener` when the read ends, or, when a read
   * is already pending, tells `listener` of its end instead. No promise is chained and no
   * closure made: the wait of an idle connection holds only the read itself. A later
   * {@link fill} takes the read over (the listener is then not told).
   */
  wait(listener: ReadListener): void {
    const pending = this.#pending;
    if (pending === null) this.#pending = this.#read();
    else if (this.#listener === null) {
      // A prefetch's read, perhaps ended already: its promise tells.
      this.#pending = null;
      pending.then((more) => listener.readEnded(more), (err) => listener.readFailed(err));
      return;
    }
    this.#listener = listener;
  }

  /**
   * Reads until at least `bytes` bytes are buffered, making room for them first (compacting, or
   * growing the buffer once to fit): resolves `false` at end of stream before that.
   */
  async fillTo(bytes: number): Promise<boolean> {
    const used = this.end - this.start;
    if (used >= bytes) return true;
    if (this.buf.length - this.start < bytes) {
      if (this.buf.length >= bytes + MIN_READ) this.buf.copyWithin(0, this.start, this.end);
      else {
        const grown = new Uint8Array(Math.max(bytes + MIN_READ, this.buf.length * 2));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.start = 0;
      this.end = used;
    }
    while (this.end - this.start < bytes) {
      if (!(await this.fill())) return false;
    }
    return true;
  }

  /**
   * Ends a read (both outcomes: one function made per wire, not two): counts the bytes it
   * brought, resolves `false` at end of stream, and tells a {@link wait}ing listener.
   */
  readonly #onRead = (n: number | null | Error): boolean => {
    this.#reading = false;
    if (this.#released) {
      this.#giveBack();
      if (typeof n === "number") n = null; // what it read is nobody's any more
    }
    const listener = this.#listener;
    if (typeof n === "number") this.end += n;
    else if (n !== null) {
      if (listener === null) throw n;
      this.#listener = null;
      this.#pending = null;
      listener.readFailed(n);
      return false;
    }
    if (listener !== null) {
      this.#listener = null;
      this.#pending = null;
      listener.readEnded(n !== null);
    }
    return n !== null;
  };

  /**
   * Not an async function on purpose: two run per request, and a `then` on the read's own
   * promise allocates less than an async frame (no suspended register file).
   */
  #read(): Promise<boolean> {
    if (this.#released) {
      const closed = new Deno.errors.BadResource("the connection was released");
      return Promise.reject(closed).then(this.#onRead, this.#onRead);
    }
    if (this.buf === this.#small) {
      if (this.#parkedRead && this.start === this.end) this.start = this.end = 0;
      else {
        // More than the parked read brought is needed: back to a big buffer.
        const used = this.end - this.start;
        const big = spare.pop() ?? new Uint8Array(INITIAL_BUFFER);
        big.set(this.buf.subarray(this.start, this.end));
        this.buf = big;
        this.start = 0;
        this.end = used;
      }
      this.#parkedRead = false;
    } else if (this.start === this.end) this.start = this.end = 0;
    else if (this.buf.length - this.end < MIN_READ) {
      const used = this.end - this.start;
      if (used <= this.buf.length >> 1) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(this.buf.length * 2);
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.start = 0;
      this.end = used;
    }
    const end = this.end;
    this.#reading = true;
    try {
      // An empty buffer is read into whole: no view object.
      return this.source.read(end === 0 ? this.buf : this.buf.subarray(end))
        .then(this.#onRead, this.#onRead);
    } catch (err) {
      // Ended as a failed read is (a waiting listener is told).
      return Promise.reject(err).then(this.#onRead, this.#onRead);
    }
  }
}

/**
 * Reads response heads until a final one (skipping interim 1xx heads; a 101 is final when
 * `upgrading`) and leaves the wire at its body.
 *
 * @throws {ParseError} on a malformed or oversized head, {@link EofError} on end of stream.
 * @example
 * ```ts
 * const head = await readResponseHead(wire, DEFAULT_LIMITS);
 * ```
 */
export async function readResponseHead(
  wire: Wire,
  limits: HeadLimits,
  upgrading = false,
): Promise<ResponseHead> {
  let empty = true;
  for (;;) {
    let scanned = 0; // bytes after wire.start already scanned
    for (;;) {
      const from = wire.start + (scanned > 3 ? scanned - 3 : 0);
      const end = findHeadEnd(wire.buf, from, wire.start, wire.end);
      if (end >= 0) {
        const head = parseHead(wire.buf, wire.start, end, limits);
        wire.start = end;
        if (head.status >= 200) return head;
        // 101 switches protocols: only an answer to an upgrade request may do that.
        if (head.status === 101) {
          if (upgrading) return head;
          throw new ParseError("unexpected 101 Switching Protocols");
        }
        break;
      }
      scanned = wire.end - wire.start;
      if (scanned > limits.maxHeadBytes) throw new ParseError("response head too large");
      if (scanned > 0) empty = false;
      let more: boolean;
      try {
        more = await wire.fill();
      } catch (err) {
        // A reset before any answer is how a dropped pooled connection often shows.
        if (empty && err instanceof Deno.errors.ConnectionReset) more = false;
        else throw err;
      }
      if (!more) {
        throw new EofError("upstream closed the connection before the response head", empty);
      }
    }
    empty = false;
  }
}

/**
 * A TCP connection to one upstream server with its read buffer.
 *
 * @example
 * ```ts
 * const c = new H1Connection(await Deno.connect({ hostname: "127.0.0.1", port: 8080 }));
 * ```
 */
export class H1Connection {
  readonly wire: Wire;
  readonly #conn: ByteConn;
  #closed = false;
  /** When it went idle (ms, `performance.now()`), for the pool's idle timeout. */
  idleSince = 0;
  /** Whether it sits idle in a pool (the pool sets it). */
  idle = false;
  /** Told when the idle connection turns out dead. */
  #onDead: ((conn: H1Connection) => void) | null = null;
  /** One callback per connection, not a closure per exchange. */
  readonly #checkIdle = (): void => {
    if (this.idle) this.#onDead?.(this);
  };
  /** Exchanges completed on it (0 while the first is running). */
  uses = 0;

  constructor(conn: ByteConn) {
    this.#conn = conn;
    this.wire = new Wire(conn);
  }

  /** Whether {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void> {
    return writeFully(this.#conn, bytes);
  }

  /**
   * Watches an idle connection: any byte or end of stream while {@link idle} means it is
   * unusable, and `onDead` runs (unless the connection was taken again before that).
   */
  watchIdle(onDead: (conn: H1Connection) => void): void {
    this.#onDead = onDead;
    this.wire.prefetch().then(this.#checkIdle, this.#checkIdle);
  }

  /**
   * The socket as a tunnel (after a 101), with the bytes already read past the head. The
   * connection must have left its pool.
   */
  tunnel(buffered: Uint8Array): Tunnel {
    const conn = this.#conn;
    return {
      read: (p) => conn.read(p),
      write: (p) => conn.write(p),
      close: () => this.close(),
      buffered,
    };
  }

  /** Closes the socket; further reads and writes fail. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

/**
 * Writes all of `bytes` to `to`. Not an async function: when the socket takes every byte at once
 * (the usual case) the write's own promise is chained, with no async frame of its own; the rest
 * of a partial write is written in a loop.
 *
 * @example
 * ```ts
 * await writeFully(conn, new TextEncoder().encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
 * ```
 */
export function writeFully(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  try {
    return to.write(bytes).then((n) => n === bytes.length ? undefined : writeRest(to, bytes, n));
  } catch (err) {
    return Promise.reject(err);
  }
}

async function writeRest(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
  off: number,
): Promise<void> {
  while (off < bytes.length) off += await to.write(bytes.subarray(off));
}
