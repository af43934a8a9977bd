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
  const http = Deno.createHttpClient({ allowHost: true });
  const payload = new Uint8Array(size).fill(0x61);
  const sockets = await Promise.all(
    Array.from({ length: clients }, () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { host }, client: http });
        ws.binaryType = "arraybuffer";
        ws.onopen = () => resolve(ws);
        ws.onerror = (event) => reject(new Error((event as ErrorEvent).message));
      })),
  );
  let roundTrips = 0;
  let errors = 0;
  let running = true;
  const started = performance.now();
  const loops = sockets.map((ws) =>
    new Promise<void>((resolve) => {
      ws.onmessage = (event) => {
        if ((event.data as ArrayBuffer).byteLength !== size) errors++;
        roundTrips++;
        if (running) ws.send(payload);
        else resolve();
      };
      ws.onerror = () => {
        errors++;
        resolve();
      };
      ws.onclose = () => resolve();
      ws.send(payload);
    })
  );
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - started) / 1000;
  const counted = roundTrips;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);
  for (const ws of sockets) ws.close();
  return { roundTrips: counted, seconds: elapsed, errors };
}

async function upload(url: string, host: string, bytes: number) {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const encoder = new TextEncoder();
  const write = async (data: Uint8Array) => {
    for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
  };
  await write(encoder.encode(
    `GET /sink HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const reader = new Reader(conn);
  const head = await reader.head();
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${head}`);
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

/** Reads an HTTP head, then unmasked frames, off a connection. */
class Reader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #more(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed");
    const grown = new Uint8Array(this.#buffer.length + n);
    grown.set(this.#buffer);
    grown.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = grown;
  }

  async #take(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n) await this.#more();
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return out;
  }

  async head(): Promise<string> {
    const decoder = new TextDecoder("latin1");
    let end: number;
    while ((end = decoder.decode(this.#buffer).indexOf("\r\n\r\n")) === -1) await this.#more();
    return decoder.decode(await this.#take(end + 4));
  }

  async frame(): Promise<Uint8Array> {
    const [, b1] = await this.#take(2);
    let length = b1 & 0x7f;
    if (length === 126) length = new DataView((await this.#take(2)).buffer).getUint16(0);
    else if (length === 127) {
      length = Number(new DataView((await this.#take(8)).buffer).getBigUint64(0));
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
