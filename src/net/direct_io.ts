/**
 * Socket reads and writes straight through Deno's I/O ops, for the data plane's connections.
 *
 * Why: `Deno.Conn.read` is an async function that also adds each pending read to a `Set` (for
 * `unref()`), and `Deno.Conn.write` awaits the write op inside another async function. Both
 * then call the same ops as `core.read(rid, buffer)` / `core.write(rid, buffer)`. A proxied
 * request makes two reads and two writes, and the wrappers cost ~1.4 KB of garbage and a few
 * microseconds of CPU per request (BENCHMARKS.md, "Direct socket I/O"). The data plane never
 * unrefs its sockets, so it gives up nothing.
 *
 * How: the connection's own `read` and `write` are shadowed by instance properties that call
 * the ops with the connection's resource id; everything else (`close`, `closeWrite`,
 * `setNoDelay`, addresses, TLS) stays Deno's. The ops and the resource id are runtime internals
 * (`Deno[Deno.internal].core`, the `Deno.internal.rid` symbol): when a Deno lacks them the
 * connection is left as it is (the public methods, same behaviour, slower), and
 * `direct_io_test.ts` fails on the pinned Deno so that an upgrade which loses them is noticed.
 *
 * @module
 */

/** The two ops used, as deno_core exposes them (they resolve to byte counts; 0 = end of stream). */
interface IoOps {
  read(rid: number, buffer: Uint8Array): Promise<number>;
  write(rid: number, buffer: Uint8Array): Promise<number>;
}

function findOps(): IoOps | null {
  const deno = Deno as unknown as Record<symbol, unknown> & { internal?: symbol };
  const internal = deno.internal === undefined ? undefined : deno[deno.internal];
  const core = (internal as { core?: Partial<IoOps> } | undefined)?.core;
  if (typeof core?.read !== "function" || typeof core.write !== "function") return null;
  return core as IoOps;
}

const ops = findOps();
let ridSymbol: symbol | null | undefined;

function ridOf(conn: Deno.Conn): number | null {
  if (ridSymbol === undefined) {
    ridSymbol = Object.getOwnPropertySymbols(conn).find((s) =>
      s.description === "Deno.internal.rid"
    ) ?? null;
  }
  if (ridSymbol === null) return null;
  const rid = (conn as unknown as Record<symbol, unknown>)[ridSymbol];
  return typeof rid === "number" ? rid : null;
}

const endToNull = (n: number): number | null => n === 0 ? null : n;

/** A connection {@link directIo} shadowed: Deno's own rid property is known to be there. */
type Direct = Deno.Conn & Record<symbol, number>;

// Shared by every connection (`this` is the connection): a closure per connection and method
// would cost ~0.2 KiB of each idle connection.
function directRead(this: Direct, buffer: Uint8Array): Promise<number | null> {
  return buffer.length === 0
    ? Promise.resolve(0)
    : ops!.read(this[ridSymbol!], buffer).then(endToNull);
}

function directWrite(this: Direct, buffer: Uint8Array): Promise<number> {
  return ops!.write(this[ridSymbol!], buffer);
}

/**
 * Makes `conn.read` and `conn.write` call Deno's I/O ops directly (same results and errors as
 * the public methods); returns `conn`. A no-op where the runtime lacks the internals.
 *
 * @example
 * ```ts
 * const conn = directIo(await Deno.connect({ port: 8080 }));
 * await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
 * ```
 */
export function directIo<T extends Deno.Conn>(conn: T): T {
  if (ops === null) return conn;
  if (ridOf(conn) === null) return conn;
  Object.defineProperty(conn, "read", { value: directRead });
  Object.defineProperty(conn, "write", { value: directWrite });
  return conn;
}
