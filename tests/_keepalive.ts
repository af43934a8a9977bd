/**
 * A keep-alive HTTP/1.1 load client that behaves like browsers, curl and the Go/Node clients
 * when a server goes away: a request on a reused connection that was closed before any byte of
 * the answer arrived is sent again on a new connection; every other failure counts.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the load saw. */
export interface LoadResult {
  /** Requests answered with 200 and an expected body. */
  ok: number;
  /** Requests sent again after a reused connection closed before any byte of the answer. */
  retried: number;
  /** Answers that carried `Connection: close` (the client then opened a new connection). */
  closeHeaders: number;
  /** Everything else: refused or reset fresh connections, cut answers, wrong statuses or bodies. */
  failures: string[];
}

/**
 * Runs `clients` loops of requests to `127.0.0.1:port` until `stop` resolves; `live` is updated
 * as answers arrive.
 *
 * @example
 * ```ts
 * const done = Promise.withResolvers<void>();
 * const load = keepAliveLoad(port, "a.test", (b) => b === "a", 8, done.promise);
 * done.resolve();
 * console.log((await load.finished).failures);
 * ```
 */
export function keepAliveLoad(
  port: number,
  host: string,
  expected: (body: string) => boolean,
  clients: number,
  stop: Promise<unknown>,
): { live: LoadResult; finished: Promise<LoadResult> } {
  const result: LoadResult = { ok: 0, retried: 0, closeHeaders: 0, failures: [] };
  let stopped = false;
  stop.then(() => stopped = true, () => stopped = true);
  const request = encoder.encode(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);

  const loop = async () => {
    let conn: Deno.TcpConn | null = null;
    let reader: ResponseReader | null = null;
    let uses = 0;
    while (!stopped) {
      if (conn === null) {
        try {
          conn = await Deno.connect({ hostname: "127.0.0.1", port });
        } catch (err) {
          result.failures.push(`connect: ${(err as Error).name}`);
          continue;
        }
        reader = new ResponseReader(conn);
        uses = 0;
      }
      const reused = uses > 0;
      uses++;
      let answer: { status: number; close: boolean; body: string } | string;
      let broken: Error | undefined;
      try {
        await conn.write(request);
        answer = await reader!.read();
      } catch (err) {
        broken = err as Error;
        answer = reader!.gotBytes
          ? `an answer cut off: ${(err as Error).message}`
          : "closed-before-any-byte";
      }
      if (answer === "closed-before-any-byte") {
        const port = (conn.localAddr as Deno.NetAddr).port;
        close(conn);
        conn = null;
        if (reused) result.retried++;
        else {
          // How (reset or orderly close) and when tell a closing listener's queue from a drain.
          result.failures.push(
            `a new connection closed before any byte (${broken?.name}, client port ${port}, ` +
              `${new Date().toISOString()})`,
          );
        }
        continue;
      }
      if (typeof answer === "string") {
        result.failures.push(answer);
        close(conn);
        conn = null;
        continue;
      }
      if (answer.status === 200 && expected(answer.body)) result.ok++;
      else result.failures.push(`${answer.status} ${answer.body}`);
      if (answer.close) {
        result.closeHeaders++;
        close(conn);
        conn = null;
      }
    }
    if (conn !== null) close(conn);
  };
  const finished = Promise.all(Array.from({ length: clients }, loop)).then(() => result);
  return { live: result, finished };
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/**
 * Reads `Content-Length` responses off one connection.
 *
 * @example
 * ```ts
 * const reader = new ResponseReader(conn);
 * const { status, close, body } = await reader.read();
 * ```
 */
export class ResponseReader {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  /** Whether any byte of the current answer arrived. */
  gotBytes = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(): Promise<{ status: number; close: boolean; body: string }> {
    this.gotBytes = this.#buf.length > 0;
    let end: number;
    while ((end = indexOfBlankLine(this.#buf)) < 0) await this.#fill();
    const head = decoder.decode(this.#buf.subarray(0, end));
    const status = Number(head.slice(9, 12));
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
    const close = /\r\nconnection: *close/i.test(head);
    while (this.#buf.length < end + 4 + length) await this.#fill();
    const body = decoder.decode(this.#buf.subarray(end + 4, end + 4 + length));
    this.#buf = this.#buf.slice(end + 4 + length);
    return { status, close, body };
  }

  /** Resolves `true` once the server closed the connection with nothing more to read. */
  async closed(): Promise<boolean> {
    try {
      await this.#fill();
      return false;
    } catch {
      return this.#buf.length === 0;
    }
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      if (this.gotBytes) throw new Error("connection closed inside an answer");
      throw new Deno.errors.UnexpectedEof("closed");
    }
    this.gotBytes = true;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
  }
}

function indexOfBlankLine(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
