/**
 * WebSocket parts for integration tests: a real WebSocket echo server (`Deno.serve` +
 * `Deno.upgradeWebSocket`) and a raw-frame client over TCP for what the `WebSocket` API hides
 * (ping/pong, the exact handshake answer, close frames).
 *
 * @module
 */

/** What the echo server saw of one upgrade request, and how that socket ended. */
export interface WsSeen {
  /** Path and query. */
  readonly target: string;
  readonly headers: Headers;
  /** Close code and reason the server received, once the socket closed. */
  closed?: { code: number; reason: string };
}

/** A running WebSocket echo server. */
export interface WsBackend extends AsyncDisposable {
  readonly name: string;
  readonly port: number;
  /** Upgrade requests received so far. */
  readonly seen: WsSeen[];
  /** Sockets open right now. */
  readonly open: number;
  /** Resolves once `seen[index]` has closed. */
  closedAt(index: number): Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * Starts an echo server on a free loopback port. Text and binary messages come back as sent,
 * except commands: `close CODE REASON` closes with that code, `name` answers the server's name.
 * `/hello` greets first (`hello from NAME`); `/plain` answers an upgrade request with an
 * ordinary 200, `/refuse` with a 403. The subprotocol chosen is the first offered of `chat` and
 * `superchat`.
 *
 * @example
 * ```ts
 * await using echo = await startWsBackend("a");
 * ```
 */
export function startWsBackend(name: string): Promise<WsBackend> {
  const seen: WsSeen[] = [];
  const closers: Array<() => void> = [];
  let open = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const path = url.pathname;
    // A copy: the request's own headers are gone once it is answered.
    const record: WsSeen = { target: path + url.search, headers: new Headers(request.headers) };
    seen.push(record);
    const index = seen.length - 1;
    if (path === "/plain") return new Response(`plain answer from ${name}`);
    if (path === "/refuse") return new Response("go away", { status: 403 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response(`http answer from ${name}`);
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim());
    const protocol = offered.find((p) => p === "chat" || p === "superchat");
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      open++;
      if (path === "/hello") socket.send(`hello from ${name}`);
    };
    socket.onmessage = (event) => {
      const data = event.data;
      if (typeof data === "string" && data.startsWith("close ")) {
        const [, code, ...reason] = data.split(" ");
        socket.close(Number(code), reason.join(" "));
      } else if (data === "name") {
        socket.send(name);
      } else {
        socket.send(data);
      }
    };
    socket.onerror = (event) => event.preventDefault();
    socket.onclose = (event) => {
      open--;
      record.closed = { code: event.code, reason: event.reason };
      closers[index]?.();
    };
    return response;
  });
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return Promise.resolve({
    name,
    port: server.addr.port,
    seen,
    get open() {
      return open;
    },
    closedAt(index) {
      return new Promise((resolve) => {
        const check = () => {
          const done = seen[index]?.closed;
          if (done) resolve(done);
          return done !== undefined;
        };
        if (!check()) closers[index] = () => void check();
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}

/**
 * Opens a WebSocket through the proxy at `origin` with a `Host` header (the standard API with
 * Deno's `headers` extension), resolved once open. Binary messages arrive as `ArrayBuffer`s.
 *
 * @example
 * ```ts
 * const ws = await openWebSocket(lb.proxy, "ws.test", "/", ["chat"]);
 * ```
 */
export async function openWebSocket(
  origin: string,
  host: string,
  path = "/",
  protocols: string[] = [],
): Promise<WebSocket & AsyncDisposable> {
  const client = Deno.createHttpClient({ allowHost: true });
  const ws = new WebSocket(origin.replace(/^http/, "ws") + path, {
    protocols,
    headers: { host },
    client,
  }) as WebSocket & AsyncDisposable;
  ws.binaryType = "arraybuffer";
  const messages: Array<string | ArrayBuffer> = [];
  const waiters: Array<(data: string | ArrayBuffer) => void> = [];
  ws.onmessage = (event) => {
    const waiter = waiters.shift();
    if (waiter) waiter(event.data);
    else messages.push(event.data);
  };
  queues.set(ws, { messages, waiters });
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
  closes.set(ws, closed);
  closed.then(() => client.close());
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (event) => reject(new Error(`WebSocket failed: ${(event as ErrorEvent).message}`));
  });
  ws.onerror = null;
  ws[Symbol.asyncDispose] = async () => {
    if (ws.readyState !== WebSocket.CLOSED) {
      ws.close();
      await closed;
    }
  };
  return ws;
}

const queues = new WeakMap<
  WebSocket,
  { messages: Array<string | ArrayBuffer>; waiters: Array<(data: string | ArrayBuffer) => void> }
>();
const closes = new WeakMap<WebSocket, Promise<CloseEvent>>();

/**
 * The next message of a socket from {@link openWebSocket} (rejects when it closes first).
 *
 * @example
 * ```ts
 * ws.send("hi");
 * await nextMessage(ws); // "hi"
 * ```
 */
export function nextMessage(ws: WebSocket): Promise<string | ArrayBuffer> {
  const queue = queues.get(ws)!;
  const ready = queue.messages.shift();
  if (ready !== undefined) return Promise.resolve(ready);
  return new Promise((resolve, reject) => {
    queue.waiters.push(resolve);
    closes.get(ws)!.then((event) =>
      reject(new Error(`closed (${event.code} ${event.reason}) before a message`))
    );
  });
}

/** Resolves with the close event of a socket from {@link openWebSocket}. */
export function closeEvent(ws: WebSocket): Promise<CloseEvent> {
  return closes.get(ws)!;
}

/** WebSocket opcodes (RFC 6455 §5.2). */
export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One frame as read off the wire. */
export interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Uint8Array;
}

/** A raw WebSocket client connection after its handshake. */
export interface RawWebSocket extends AsyncDisposable {
  /** The status line's code (101 when upgraded). */
  readonly status: number;
  /** The answer's head, as text. */
  readonly head: string;
  /** Writes one masked frame. */
  send(opcode: number, payload?: Uint8Array | string, fin?: boolean): Promise<void>;
  /** Reads the next frame (rejects at end of stream). */
  frame(): Promise<Frame>;
  /** Writes raw bytes (for a second HTTP request after a refused upgrade). */
  write(bytes: string): Promise<void>;
  /** Reads until the peer closes, as text. */
  rest(): Promise<string>;
  close(): void;
}

/**
 * Opens a TCP connection to `origin`, sends a WebSocket upgrade request for `host` and `path`
 * and reads the answer's head.
 *
 * @example
 * ```ts
 * await using raw = await rawWebSocket(lb.proxy, "ws.test", "/");
 * await raw.send(OP.ping, "p");
 * (await raw.frame()).opcode; // OP.pong
 * ```
 */
export async function rawWebSocket(
  origin: string,
  host: string,
  path = "/",
): Promise<RawWebSocket> {
  const { hostname, port } = new URL(origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const encoder = new TextEncoder();
  const writeAll = async (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  };
  await writeAll(encoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  let buffer = new Uint8Array(0);
  const more = async (): Promise<boolean> => {
    const chunk = new Uint8Array(65536);
    const n = await conn.read(chunk);
    if (n === null) return false;
    const grown = new Uint8Array(buffer.length + n);
    grown.set(buffer);
    grown.set(chunk.subarray(0, n), buffer.length);
    buffer = grown;
    return true;
  };
  const take = async (n: number): Promise<Uint8Array> => {
    while (buffer.length < n) {
      if (!(await more())) throw new Error("connection closed mid-frame");
    }
    const out = buffer.slice(0, n);
    buffer = buffer.slice(n);
    return out;
  };
  const decoder = new TextDecoder("latin1");
  const latin1 = (bytes: Uint8Array) => decoder.decode(bytes);
  let headEnd = -1;
  while ((headEnd = latin1(buffer).indexOf("\r\n\r\n")) === -1) {
    if (!(await more())) throw new Error(`closed before an answer: ${latin1(buffer)}`);
  }
  const head = latin1(await take(headEnd + 4));
  const status = Number(head.slice(9, 12));
  return {
    status,
    head,
    async send(opcode, payload = new Uint8Array(), fin = true) {
      const data = typeof payload === "string" ? encoder.encode(payload) : payload;
      const mask = crypto.getRandomValues(new Uint8Array(4));
      const extra = data.length < 126 ? 0 : data.length < 65536 ? 2 : 8;
      const frame = new Uint8Array(2 + extra + 4 + data.length);
      frame[0] = (fin ? 0x80 : 0) | opcode;
      const view = new DataView(frame.buffer);
      if (extra === 0) frame[1] = 0x80 | data.length;
      else if (extra === 2) {
        frame[1] = 0x80 | 126;
        view.setUint16(2, data.length);
      } else {
        frame[1] = 0x80 | 127;
        view.setBigUint64(2, BigInt(data.length));
      }
      frame.set(mask, 2 + extra);
      for (let i = 0; i < data.length; i++) frame[6 + extra + i] = data[i] ^ mask[i & 3];
      await writeAll(frame);
    },
    async frame() {
      const [b0, b1] = await take(2);
      let length = b1 & 0x7f;
      if (length === 126) length = new DataView((await take(2)).buffer).getUint16(0);
      else if (length === 127) {
        length = Number(new DataView((await take(8)).buffer).getBigUint64(0));
      }
      const mask = b1 & 0x80 ? await take(4) : undefined;
      const payload = await take(length);
      if (mask) { for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3]; }
      return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload };
    },
    async write(text) {
      await writeAll(encoder.encode(text));
    },
    async rest() {
      while (await more());
      return latin1(buffer);
    },
    close() {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
    [Symbol.asyncDispose]() {
      try {
        conn.close();
      } catch { /* already closed */ }
      return Promise.resolve();
    },
  };
}

/**
 * A WebSocket server that completes the handshake and then never reads: what a stuck or slow
 * server looks like to a relay.
 *
 * @example
 * ```ts
 * await using stuck = stallingWsServer();
 * ```
 */
export function stallingWsServer(): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const buffer = new Uint8Array(8192);
      const n = await conn.read(buffer);
      const head = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
      const key = head.match(/sec-websocket-key: *(\S+)/i)?.[1] ?? "";
      const digest = await crypto.subtle.digest(
        "SHA-1",
        new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
      );
      const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
      await conn.write(new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}
