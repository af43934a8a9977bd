/**
 * The WebSocket load generator, as its own process so its CPU is not the harness's:
 *
 *   deno run --allow-net bench/ws_load.ts echo URL HOST CLIENTS SECONDS SIZE
 *     N clients, each in a closed loop: send a SIZE-byte binary message, wait for the echo.
 *     Prints JSON {"roundTrips", "seconds", "errors"} (a round trip is one message each way).
 *
 *   deno run --allow-net bench/ws_load.ts upload URL HOST BYTES
 *     One connection (raw frames over TCP, so writes have backpressure) sends BYTES in 1 MiB
 *     binary messages to `/sink`, then `done`; prints JSON {"bytes", "seconds", "counted"}.
 *
 * @module
 */

async function echo(url: string, host: string, clients: number, seconds: number, size: number) {
  const sockets = await Promise.all(Array.from({ length: clients }, () => open(url, host, "/")));
  // One write per frame (head, zero masking key, payload): a frame split over two writes meets
  // Nagle's algorithm and delayed ACKs (40 ms stalls), which would measure the kernel instead.
  const extra = size < 126 ? 0 : size < 65536 ? 2 : 8;
  const frame = new Uint8Array(2 + extra + 4 + size).fill(0x61, 2 + extra + 4);
  frame[0] = 0x82;
  if (extra === 0) frame[1] = 0x80 | size;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    new DataView(frame.buffer).setUint16(2, size);
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(size));
  }
  frame.fill(0, 2 + extra, 2 + extra + 4);
  let roundTrips = 0;
  let errors = 0;
  let running = true;
  const started = performance.now();
  const loops = sockets.map(async ({ write, reader }) => {
    try {
      while (running) {
        await write(frame);
        if ((await reader.frame()).length !== size) errors++;
        roundTrips++;
      }
    } catch {
      errors++;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - started) / 1000;
  const counted = roundTrips;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);
  for (const { conn } of sockets) conn.close();
  return { roundTrips: counted, seconds: elapsed, errors };
}

/** A WebSocket opened with raw frames over TCP (so each frame goes out in one write). */
async function open(url: string, host: string, path: string) {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  conn.setNoDelay(true);
  const write = async (data: Uint8Array) => {
    for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
  };
  await write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const reader = new Reader(conn);
  const head = await reader.head();
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${head}`);
  return { conn, write, reader };
}

async function upload(url: string, host: string, bytes: number) {
  const { conn, write, reader } = await open(url, host, "/sink");
  const encoder = new TextEncoder();
  const started = performance.now();
  const MESSAGE = 1024 * 1024;
  // A zero masking key leaves the payload as it is: no per-byte work in the client.
  const frameHead = new Uint8Array([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const body = new Uint8Array(MESSAGE);
  for (let sent = 0; sent < bytes; sent += MESSAGE) {
    const n = Math.min(MESSAGE, bytes - sent);
    new DataView(frameHead.buffer).setBigUint64(2, BigInt(n));
    await write(frameHead);
    await write(body.subarray(0, n));
  }
  const done = encoder.encode("done");
  await write(new Uint8Array([0x81, 0x80 | done.length, 0, 0, 0, 0, ...done]));
  const counted = Number(new TextDecoder().decode(await reader.frame()));
  const seconds = (performance.now() - started) / 1000;
  conn.close();
  return { bytes, seconds, counted };
}

/** Reads an HTTP head, then unmasked frames, off a connection (one buffer, reused). */
class Reader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Makes at least `n` bytes available from `#start`. */
  async #fill(n: number): Promise<void> {
    while (this.#end - this.#start < n) {
      if (this.#buffer.length - this.#start < n) {
        const grown = new Uint8Array(Math.max(this.#buffer.length, n * 2));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
        this.#end -= this.#start;
        this.#start = 0;
      } else if (this.#start === this.#end) {
        this.#start = this.#end = 0;
      }
      const read = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (read === null) throw new Error("connection closed");
      this.#end += read;
    }
  }

  /** The next `n` bytes (a view, valid until the next read). */
  async #take(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const out = this.#buffer.subarray(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  async head(): Promise<string> {
    const decoder = new TextDecoder("latin1");
    for (let want = 1;; want = this.#end - this.#start + 1) {
      await this.#fill(want);
      const text = decoder.decode(this.#buffer.subarray(this.#start, this.#end));
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) return decoder.decode(await this.#take(end + 4));
    }
  }

  async frame(): Promise<Uint8Array> {
    const [, b1] = await this.#take(2);
    let length = b1 & 0x7f;
    if (length === 126) {
      const b = await this.#take(2);
      length = (b[0] << 8) | b[1];
    } else if (length === 127) {
      const b = await this.#take(8);
      length = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0));
    }
    return await this.#take(length);
  }
}

if (import.meta.main) {
  const [mode, url, host, ...rest] = Deno.args;

  if (mode === "echo") {
    const [clients, seconds, size] = rest.map(Number);
    console.log(JSON.stringify(await echo(url, host, clients, seconds, size)));
  } else if (mode === "upload") {
    const bytes = Number(rest[0]);
    const started = performance.now();
    // A proxy that gives up (closes the tunnel) is a result, not a failure of the run.
    const result = await upload(url, host, bytes).catch((err) => ({
      bytes,
      seconds: (performance.now() - started) / 1000,
      counted: -1,
      error: String(err),
    }));
    console.log(JSON.stringify(result));
  } else {
    console.error("usage: ws_load.ts echo URL HOST CLIENTS SECONDS SIZE | upload URL HOST BYTES");
    Deno.exit(2);
  }
}
