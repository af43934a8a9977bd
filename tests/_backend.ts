/**
 * Real upstream HTTP servers on loopback for integration tests. Each answers with its own name
 * and records what it received.
 *
 * @module
 */
import { tempDir } from "./_temp.ts";

/** What a backend saw of one request. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
}

/** A running test backend. */
export interface Backend extends AsyncDisposable {
  readonly name: string;
  readonly port: number;
  /** Requests received so far. */
  readonly seen: Seen[];
  /** Stops listening (connections are refused afterwards). */
  close(): Promise<void>;
}

/**
 * Starts a backend answering `name` (or what `handler` returns) on a free loopback port
 * (`hostname` 127.0.0.1 unless given, e.g. `::1`).
 *
 * @example
 * ```ts
 * await using a = await startBackend("a");
 * ```
 */
export function startBackend(
  name: string,
  handler?: (request: Request) => Response | Promise<Response>,
  port = 0,
  hostname = "127.0.0.1",
): Promise<Backend> {
  const seen: Seen[] = [];
  const server = Deno.serve(
    { hostname, port, onListen: () => {} },
    (request) => {
      seen.push({ method: request.method, url: request.url, headers: request.headers });
      return handler ? handler(request) : new Response(name);
    },
  );
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return Promise.resolve({
    name,
    port: server.addr.port,
    seen,
    close,
    [Symbol.asyncDispose]: close,
  });
}

/** A port nothing listens on (bound and released at once). */
export function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A config routing each `host → servers` (one backend per host, weights optional). */
export function configOf(
  routes: Record<string, Array<{ port: number; weight?: number }>>,
): { backends: unknown[]; hosts: unknown[] } {
  const backends = [];
  const hosts = [];
  for (const [host, servers] of Object.entries(routes)) {
    backends.push({
      backend_name: `b-${host}`,
      servers: servers.map((s) => ({ addr: "127.0.0.1", port: s.port, weight: s.weight ?? 1 })),
    });
    hosts.push({ host, backend_name: `b-${host}` });
  }
  return { backends, hosts };
}

/**
 * Writes `config` into a fresh temporary directory (removed when the test module ends); returns
 * the file's path.
 */
export async function configFile(config: unknown): Promise<string> {
  const dir = await tempDir();
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}

/**
 * Replaces the file at `path` with `text` as careful editors do: a new file in the same directory
 * renamed over it, so a poll never reads a half-written file.
 */
export async function editFile(path: string, text: string): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.edit`;
  await Deno.writeTextFile(temp, text);
  await Deno.rename(temp, path);
}
