/**
 * Where an idle keep-alive connection's memory goes, finer than the idle-connections run: the h1
 * listener in one isolate of a subprocess (or, for comparison, a bare `Deno.listen` loop), N
 * clients in this process that each make one request and stay idle; RSS and V8 heap before and
 * after (with a forced GC), and optionally a heap snapshot counted by constructor.
 *
 * ```sh
 * deno run -A bench/idle_probe.ts                  # dynlb's listener, 10,000 connections
 * deno run -A bench/idle_probe.ts --mode bare128   # accept + a pending read into 128 B
 * deno run -A bench/idle_probe.ts --mode bare0 --connections 5000 --snapshot /tmp/idle
 * ```
 *
 * Modes: `dynlb` (H1Server, the real request path and h1 transport to a local backend), `bareN`
 * (accepted sockets, each with a read pending into its own N-byte buffer; N = 0: no read).
 * The open-file limit must allow the connections twice (both ends live on this machine).
 *
 * @module
 */
import v8 from "node:v8";
import { parseArgs } from "node:util";

const encoder = new TextEncoder();
const REQUEST = encoder.encode("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
const ANSWER = encoder.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");

/** What the server side reports about itself. */
interface Memory {
  heapUsed: number;
  external: number;
  /** KiB per V8 space: [size, used]. */
  spaces: Record<string, [number, number]>;
}

/** The server side: listens, prints its port, then answers `gc`, `mem` and `snap FILE` lines. */
async function serve(mode: string, backendPort: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  if (mode === "dynlb") {
    const { validateConfig } = await import("../src/config/schema.ts");
    const { RequestPath } = await import("../src/proxy/request_path.ts");
    const { Router } = await import("../src/proxy/router.ts");
    const { H1Server } = await import("../src/proxy/h1/server.ts");
    const { H1Transport } = await import("../src/proxy/h1/transport.ts");
    const router = new Router();
    const checked = validateConfig({
      backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: backendPort }] }],
      hosts: [{ host: "a.test", backend_name: "b" }],
    });
    if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
    await router.applyConfig(checked.config, 1, []);
    const transport = new H1Transport({ connectMs: 1000, responseMs: 5000 });
    new H1Server({
      path: new RequestPath({ router, transport, retries: 1 }),
      timeouts: { headerMs: 10_000, idleMs: 300_000, bodyMs: 60_000, tunnelIdleMs: 600_000 },
      maxConnections: 100_000,
    }).serve(listener, { proto: "http" });
  } else {
    const size = Number(mode.slice("bare".length));
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const conn of listener) {
        held.push(conn);
        (async () => {
          await conn.read(new Uint8Array(1024));
          await conn.write(ANSWER);
          if (size > 0) conn.read(new Uint8Array(size)).catch(() => {});
        })().catch(() => {});
      }
    })();
  }
  console.log((listener.addr as Deno.NetAddr).port);
  const gc = (globalThis as { gc?: () => void }).gc;
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  for await (const chunk of lines) {
    for (const line of chunk.trim().split("\n")) {
      if (line === "gc") gc?.();
      else if (line.startsWith("snap ")) v8.writeHeapSnapshot(line.slice("snap ".length));
      else if (line === "mem") {
        const usage = Deno.memoryUsage();
        const spaces = Object.fromEntries(
          v8.getHeapSpaceStatistics().map((s) => [
            s.space_name,
            [Math.round(s.space_size / 1024), Math.round(s.space_used_size / 1024)],
          ]),
        );
        console.log(JSON.stringify({ heapUsed: usage.heapUsed, external: usage.external, spaces }));
      }
    }
  }
}

/** Opens a connection and makes one request; the connection stays open (null if that failed). */
async function openIdle(port: number): Promise<Deno.TcpConn | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(REQUEST);
  const buf = new Uint8Array(4096);
  let got = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) {
      conn.close();
      return null;
    }
    got += n;
    if (new TextDecoder().decode(buf.subarray(0, got)).includes("\r\n\r\nok")) return conn;
  }
}

/**
 * Groups a heap snapshot's nodes by type and name (closures by where they were written) and
 * lists the groups with at least `connections / 2` members, by bytes per connection.
 */
function countByConstructor(file: string, connections: number): string[] {
  const snapshot = JSON.parse(Deno.readTextFileSync(file));
  const meta = snapshot.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const nodes: number[] = snapshot.nodes;
  const strings: string[] = snapshot.strings;
  const [type, name, self] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const where = new Map<number, string>();
  const locations: number[] = snapshot.locations ?? [];
  const step = meta.location_fields?.length ?? 5;
  for (let i = 0; i < locations.length; i += step) {
    const script = strings[nodes[locations[i + 2] + name]] ?? "";
    where.set(
      locations[i],
      `${script.split("/").slice(-2).join("/")}:${locations[i + 3] + 1}`,
    );
  }
  const groups = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const t = types[nodes[i + type]];
    const label = t.includes("string")
      ? t
      : t === "closure"
      ? `closure ${strings[nodes[i + name]]}@${where.get(i) ?? "?"}`
      : `${t} ${strings[nodes[i + name]].slice(0, 50)}`;
    const group = groups.get(label) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += nodes[i + self];
    groups.set(label, group);
  }
  return [...groups.entries()]
    .filter(([, g]) => g.count >= connections / 2)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([label, g]) =>
      `${(g.bytes / connections).toFixed(0).padStart(6)} B ${
        (g.count / connections).toFixed(1).padStart(5)
      }×  ${label}`
    );
}

/** The driver: backend, server subprocess, idle clients, figures. */
async function drive(mode: string, connections: number, snapshot: string | undefined) {
  const backend = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("ok"),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=4,--expose-gc",
      import.meta.filename!,
      "--serve",
      mode,
      String(backend.addr.port),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  const line = async (): Promise<string> => {
    for (;;) {
      const at = pending.indexOf("\n");
      if (at >= 0) {
        const text = pending.slice(0, at);
        pending = pending.slice(at + 1);
        return text;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the server side ended");
      pending += value;
    }
  };
  const tell = (command: string) => writer.write(encoder.encode(`${command}\n`));
  const rssKiB = () =>
    Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`))![1]);
  const settle = async () => {
    await tell("gc");
    await tell("gc");
    await new Promise((r) => setTimeout(r, 2000));
  };
  const memory = async (): Promise<Memory> => {
    await tell("mem");
    return JSON.parse(await line());
  };
  const clients: Deno.TcpConn[] = [];
  try {
    const port = Number(await line());
    for (const c of await Promise.all(Array.from({ length: 64 }, () => openIdle(port)))) c?.close();
    await settle();
    const [rss0, mem0] = [rssKiB(), await memory()];
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next++ < connections) {
        const c = await openIdle(port);
        if (c !== null) clients.push(c);
      }
    }));
    await settle();
    const [rss1, mem1] = [rssKiB(), await memory()];
    const per = (kib: number) => (kib / clients.length).toFixed(2);
    console.log(
      `${mode}, ${clients.length} idle connections: RSS ${(rss0 / 1024).toFixed(1)} → ` +
        `${(rss1 / 1024).toFixed(1)} MiB, ${per(rss1 - rss0)} KiB each; V8 heap used ` +
        `${per((mem1.heapUsed - mem0.heapUsed) / 1024)} KiB each, external ` +
        `${per((mem1.external - mem0.external) / 1024)} KiB each; new space ` +
        `${mem0.spaces.new_space[0]} → ${mem1.spaces.new_space[0]} KiB`,
    );
    if (snapshot !== undefined) {
      const file = `${snapshot}-${mode}.heapsnapshot`;
      await tell(`snap ${file}`);
      await memory(); // answered once the snapshot is written
      console.log(`${file}, self size per connection by constructor:`);
      for (const row of countByConstructor(file, clients.length)) console.log(row);
    }
  } finally {
    for (const c of clients) c.close();
    child.kill();
    await child.status;
    await backend.shutdown();
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--serve") await serve(Deno.args[1], Number(Deno.args[2]));
  else {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        mode: { type: "string", default: "dynlb" },
        connections: { type: "string", default: "10000" },
        snapshot: { type: "string" },
      },
    });
    await drive(values.mode, Number(values.connections), values.snapshot);
  }
}
