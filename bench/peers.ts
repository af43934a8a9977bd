/**
 * The processes of the benchmark: nginx backends, the proxies under test (nginx, HAProxy, Caddy,
 * dynlb) with configs generated into a temp dir, and their start/stop.
 *
 * Every proxy gets the same routes: Host `bench.test` → two servers weighted 10:1,
 * `other.test` → a third server (to prove routing by Host), `sink.test` → an upload sink.
 * Upstream keep-alive on, access logs off everywhere.
 *
 * @module
 */
import { processTree } from "./proc.ts";
import { RUN_PERMISSIONS } from "../src/permissions.ts";
import { V8_FLAG_ARG } from "../src/v8_flags.ts";

/** Host names the routes answer. */
export const HOSTS = { main: "bench.test", other: "other.test", sink: "sink.test" } as const;
/** Paths the backends serve. */
export const PATHS = { short: "/s", big: "/16k", huge: "/1g", upload: "/upload" } as const;
/** Body of `/s`. */
export const SHORT_BODY = "hello from the dynlb bench\n";
/** Size of `/16k`. */
export const BIG_BYTES = 16 * 1024;
/** Size of `/1g` (a sparse file) and of the streamed upload. */
export const HUGE_BYTES = 1024 ** 3;
/** Body the `other.test` server answers with. */
export const OTHER_BODY = "other\n";

/** A server of a route. */
export interface ServerRef {
  readonly port: number;
  readonly weight: number;
}

/** Host → servers, as every proxy is configured. */
export interface Route {
  readonly host: string;
  /** Upstream/backend name in the generated configs. */
  readonly name: string;
  readonly servers: readonly ServerRef[];
}

/** A process started by the harness; {@link stopAll} ends every one still running. */
export class Spawned {
  readonly name: string;
  readonly process: Deno.ChildProcess;
  readonly pid: number;
  #output = "";
  #stopping: Promise<void> | undefined;
  readonly #drained: Promise<void>;

  constructor(name: string, command: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.process = new Deno.Command(command, {
      args,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.process.pid;
    running.add(this);
    this.#drained = Promise.all([
      this.#drain(this.process.stdout),
      this.#drain(this.process.stderr),
    ])
      .then(() => {});
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      // Keep the tail only: a chatty process must not grow the harness.
      this.#output = (this.#output + chunk).slice(-20_000);
      for (const listener of this.#listeners) listener();
    }
  }

  readonly #listeners = new Set<() => void>();

  /** Everything the process printed (the last 20,000 characters). */
  output(): string {
    return this.#output;
  }

  /** Resolves with the first match of `re` in the output; rejects if the process exits first. */
  waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.#output.match(re);
        if (m) done(() => resolve(m));
      };
      const done = (then: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        then();
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name}: no ${re} in:\n${this.#output}`))),
        timeoutMs,
      );
      this.#listeners.add(check);
      this.process.status.then((s) =>
        done(() => reject(new Error(`${this.name} exited (${s.code}):\n${this.#output}`)))
      );
      check();
    });
  }

  /** SIGTERM to the process, SIGKILL to whatever of its tree is left after `graceMs`. */
  stop(graceMs = 5000): Promise<void> {
    this.#stopping ??= (async () => {
      const tree = processTree(this.pid);
      try {
        this.process.kill("SIGTERM");
      } catch { /* already gone */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        this.process.status.then(() => true),
        new Promise<boolean>((r) => timer = setTimeout(() => r(false), graceMs)),
      ]);
      clearTimeout(timer);
      // Workers of a master that died are ours too: kill the ones still there.
      for (const pid of exited ? tree.slice(1) : tree) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await this.process.status;
      await this.#drained;
      running.delete(this);
    })();
    return this.#stopping;
  }
}

const running = new Set<Spawned>();

/**
 * Stops every process the harness started and has not stopped yet.
 *
 * @example
 * ```ts
 * try { await bench(); } finally { await stopAll(); }
 * ```
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(3000)));
}

/**
 * A loopback port nothing listens on right now.
 *
 * @example
 * ```ts
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Resolves once `127.0.0.1:port` accepts connections; rejects if `proc` exits first.
 *
 * @example
 * ```ts
 * await waitForPort(8080, nginx);
 * ```
 */
export async function waitForPort(port: number, proc: Spawned, timeoutMs = 20_000): Promise<void> {
  const started = performance.now();
  let exited = false;
  proc.process.status.then(() => exited = true);
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (exited) throw new Error(`${proc.name} exited:\n${proc.output()}`);
      if (performance.now() - started > timeoutMs) {
        throw new Error(`${proc.name} never listened on ${port}:\n${proc.output()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backends

/** The loopback servers behind every proxy. */
export interface Backends {
  /** Ports of the weighted pair (a: weight 10, b: weight 1). */
  readonly a: number;
  readonly b: number;
  /** Port of the `other.test` server. */
  readonly other: number;
  /** Port of the upload sink. */
  readonly sink: number;
  /** Five distinct servers (a, b and three more nginx ports) for the scale runs. */
  readonly five: readonly number[];
  /** The routes every proxy is configured with. */
  readonly routes: readonly Route[];
  readonly nginx: Spawned;
}

/**
 * Writes the static files and starts the backend nginx plus the in-process upload sink.
 *
 * @example
 * ```ts
 * const backends = await startBackends(tmpDir);
 * ```
 */
export async function startBackends(dir: string): Promise<Backends> {
  const www = `${dir}/www`;
  await Deno.mkdir(www, { recursive: true });
  await Deno.writeTextFile(`${www}/s`, SHORT_BODY);
  await Deno.writeFile(`${www}/16k`, bigBody());
  using huge = await Deno.open(`${www}/1g`, { create: true, write: true, truncate: true });
  await huge.truncate(HUGE_BYTES); // sparse: no disk used

  const [a, b, c, d, e, other] = [0, 1, 2, 3, 4, 5].map(() => freePort());
  const named: [string, number][] = [["a", a], ["b", b], ["c", c], ["d", d], ["e", e]];
  const conf = `${dir}/backend-nginx.conf`;
  await Deno.writeTextFile(conf, nginxBackendConf(dir, www, named, other));
  const nginx = startNginx("backend-nginx", dir, conf);
  for (const port of [a, b, c, d, e, other]) await waitForPort(port, nginx);

  const sink = startSink();
  return {
    a,
    b,
    other,
    sink,
    five: [a, b, c, d, e],
    nginx,
    routes: [
      {
        host: HOSTS.main,
        name: "main",
        servers: [{ port: a, weight: 10 }, { port: b, weight: 1 }],
      },
      { host: HOSTS.other, name: "other", servers: [{ port: other, weight: 1 }] },
      { host: HOSTS.sink, name: "sink", servers: [{ port: sink, weight: 1 }] },
    ],
  };
}

/** The 16 KiB body: printable and position-dependent, so a mangled copy is caught. */
export function bigBody(): Uint8Array {
  const body = new Uint8Array(BIG_BYTES);
  for (let i = 0; i < body.length; i++) body[i] = 0x41 + (i * 7 + (i >> 8)) % 26;
  return body;
}

function nginxBackendConf(
  dir: string,
  www: string,
  named: readonly [string, number][],
  otherPort: number,
): string {
  const servers = named.map(([name, port]) => `
    server {
      listen 127.0.0.1:${port} reuseport;
      root ${www};
      add_header X-Backend ${name} always;
      location / { }
    }`).join("");
  return `worker_processes auto;
pid ${dir}/backend-nginx.pid;
error_log ${dir}/backend-nginx-error.log warn;
events { worker_connections 4096; }
http {
  ${commonHttp(dir, "backend-nginx")}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=100;
  etag off;
  ${servers}
  server {
    listen 127.0.0.1:${otherPort};
    add_header X-Backend other always;
    location / { return 200 "${OTHER_BODY.trim()}\\n"; }
  }
}
`;
}

/**
 * http-level settings shared by every nginx of the benchmark.
 *
 * @example
 * ```ts
 * commonHttp("/tmp/b", "nginx-ws");
 * ```
 */
export function commonHttp(dir: string, name: string): string {
  return `access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/${name}-client;
  proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fastcgi;
  uwsgi_temp_path ${dir}/${name}-uwsgi;
  scgi_temp_path ${dir}/${name}-scgi;`;
}

/**
 * Starts nginx in the foreground with `conf`, its prefix and error log in `dir`; `binary` is its
 * path (an absolute one lets it re-execute itself for a binary upgrade, `USR2`).
 *
 * @example
 * ```ts
 * const nginx = startNginx("nginx-ws", dir, `${dir}/nginx-ws.conf`);
 * ```
 */
export function startNginx(name: string, dir: string, conf: string, binary = "nginx"): Spawned {
  return new Spawned(name, binary, [
    "-p",
    dir,
    "-e",
    `${dir}/${name}-error.log`,
    "-c",
    conf,
    "-g",
    "daemon off;",
  ]);
}

/** The upload sink: counts the bytes of the request body and answers with the count. */
function startSink(): number {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      let bytes = 0;
      if (request.body) { for await (const chunk of request.body) bytes += chunk.length; }
      return new Response(`${bytes}\n`);
    },
  );
  sinks.add(server);
  return server.addr.port;
}

const sinks = new Set<Deno.HttpServer<Deno.NetAddr>>();

/**
 * Shuts the upload sink down.
 *
 * @example
 * ```ts
 * await stopSinks();
 * ```
 */
export async function stopSinks(): Promise<void> {
  await Promise.all([...sinks].map((s) => s.shutdown()));
  sinks.clear();
}

// ---------------------------------------------------------------------------------------------
// Proxies

/** A running proxy under test. */
export interface Proxy {
  /** Name as in `--only` and the tables, e.g. `dynlb-h1-w2`. */
  readonly name: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Root pid of its process tree (CPU and RSS are measured over the tree). */
  readonly pid: number;
  /** Admin API base URL (dynlb only). */
  readonly admin?: string;
  /** One line on how it is configured, for the report. */
  readonly describe: string;
  readonly process: Spawned;
}

/** Every proxy the harness knows, in the order they run in each round. */
export const PROXY_NAMES = [
  "nginx",
  "haproxy",
  "caddy",
  "dynlb-fetch-w1",
  "dynlb-fetch-w2",
  "dynlb-h1-w1",
  "dynlb-h1-w2",
  "dynlb-serve-w2",
  "deno-floor-w2",
] as const;

/** One of {@link PROXY_NAMES}. */
export type ProxyName = typeof PROXY_NAMES[number];

/**
 * Starts the named proxy with the shared routes and waits until it listens.
 *
 * @example
 * ```ts
 * const proxy = await startProxy("haproxy", dir, backends.routes);
 * ```
 */
export function startProxy(name: ProxyName, dir: string, routes: readonly Route[]): Promise<Proxy> {
  switch (name) {
    case "nginx":
      return startNginxProxy(dir, routes);
    case "haproxy":
      return startHaproxy(dir, routes);
    case "caddy":
      return startCaddy(dir, routes);
    case "deno-floor-w2":
      return startDenoFloor(routes);
    default: {
      // dynlb-<upstream transport>-w<workers> on the default (h1) listener; dynlb-serve-w<N>:
      // the Deno.serve listener with the h1 upstream transport.
      const [, kind, w] = name.split("-");
      const serve = kind === "serve";
      return startDynlb({
        name,
        dir,
        config: dynlbConfig(routes),
        transport: serve ? "h1" : kind as "h1" | "fetch",
        workers: Number(w.slice(1)),
        extraArgs: serve ? ["--listener", "serve"] : [],
      });
    }
  }
}

function startNginxProxy(dir: string, routes: readonly Route[]): Promise<Proxy> {
  return startNginxReference(
    "nginx-proxy",
    dir,
    (port) => nginxProxyConf(dir, port, routes),
    "nginx 2 workers (auto), upstream blocks with weight= and keepalive 256, " +
      "proxy_http_version 1.1, Host passed on; sink: proxy_request_buffering off",
  );
}

/**
 * Starts an nginx reference proxy (named "nginx" in results) on a free port with the config
 * `confOf(port)`, written to `<dir>/<name>.conf`, and waits until it listens.
 *
 * @example
 * ```ts
 * const nginx = await startNginxReference("nginx-ws", dir, (p) => conf(p), "nginx, Upgrade set");
 * ```
 */
export async function startNginxReference(
  name: string,
  dir: string,
  confOf: (port: number) => string,
  describe: string,
): Promise<Proxy> {
  const port = freePort();
  const conf = `${dir}/${name}.conf`;
  await Deno.writeTextFile(conf, confOf(port));
  const process = startNginx(name, dir, conf);
  await waitForPort(port, process);
  return { name: "nginx", url: `http://127.0.0.1:${port}`, pid: process.pid, process, describe };
}

/**
 * A whole nginx config for a reference proxy named `name`: as many workers as cores, each with
 * `workerConnections` connections (and the file limit for them), pid and error log in `dir`,
 * the common http settings, then `http` (upstreams and servers).
 *
 * @example
 * ```ts
 * nginxConf("/tmp/b", "nginx-ws", "upstream ws { server 127.0.0.1:9000; }");
 * ```
 */
export function nginxConf(
  dir: string,
  name: string,
  http: string,
  workerConnections = 4096,
): string {
  const nofile = workerConnections > 4096
    ? `worker_rlimit_nofile ${2 * workerConnections + 1000};\n`
    : "";
  return `worker_processes auto;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
${nofile}events { worker_connections ${workerConnections}; }
http {
  ${commonHttp(dir, name)}
${http}
}
`;
}

/**
 * The nginx reference config: static upstreams with keep-alive.
 *
 * @example
 * ```ts
 * nginxProxyConf("/tmp/b", 8080, routes);
 * ```
 */
export function nginxProxyConf(
  dir: string,
  port: number,
  routes: readonly Route[],
  name = "nginx-proxy",
  workerConnections = 4096,
): string {
  const upstreams = routes.map((r) => `
  upstream ${r.name} {
    ${r.servers.map((s) => `server 127.0.0.1:${s.port} weight=${s.weight};`).join("\n    ")}
    keepalive 256;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }`).join("");
  const servers = routes.map((r) => `
  server {
    listen 127.0.0.1:${port};
    server_name ${r.host};
    client_max_body_size 0;
    proxy_request_buffering off;
    location / {
      proxy_pass http://${r.name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_max_temp_file_size 0;
    }
  }`).join("");
  return nginxConf(
    dir,
    name,
    `  ${upstreams}
  server {
    listen 127.0.0.1:${port} default_server;
    return 404;
  }
  ${servers}`,
    workerConnections,
  );
}

async function startHaproxy(dir: string, routes: readonly Route[]): Promise<Proxy> {
  const port = freePort();
  const conf = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(conf, haproxyConf(port, routes));
  const process = new Spawned("haproxy", "haproxy", ["-f", conf, "-db"]);
  await waitForPort(port, process);
  return {
    name: "haproxy",
    url: `http://127.0.0.1:${port}`,
    pid: process.pid,
    process,
    describe: "HAProxy mode http, 2 threads (default), balance roundrobin with weights, " +
      "http-reuse always, Host ACLs",
  };
}

/**
 * The HAProxy config: http mode, one backend per route with weights, connection reuse.
 *
 * @example
 * ```ts
 * haproxyConf(8080, routes);
 * ```
 */
export function haproxyConf(port: number, routes: readonly Route[]): string {
  const rules = routes.map((r) => `  use_backend ${r.name} if { hdr(host) -i ${r.host} }`);
  const backends = routes.map((r) =>
    `backend ${r.name}
  balance roundrobin
${r.servers.map((s, i) => `  server s${i} 127.0.0.1:${s.port} weight ${s.weight}`).join("\n")}
`
  );
  return `global
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s

frontend fe
  bind 127.0.0.1:${port}
${rules.join("\n")}

${backends.join("\n")}`;
}

const DENO_FLOOR = new URL("./deno_floor.ts", import.meta.url).pathname;

async function startDenoFloor(routes: readonly Route[]): Promise<Proxy> {
  const port = freePort();
  const process = new Spawned("deno-floor-w2", Deno.execPath(), [
    "run",
    V8_FLAG_ARG,
    "--allow-net",
    "--allow-read",
    "--unstable-net",
    DENO_FLOOR,
    String(port),
    "2",
    JSON.stringify(routes.map((r) => ({ host: r.host, servers: r.servers }))),
  ]);
  await waitForPort(port, process);
  return {
    name: "deno-floor-w2",
    url: `http://127.0.0.1:${port}`,
    pid: process.pid,
    process,
    describe: "bench/deno_floor.ts: the least a proxy on Deno does (finds the head's end, Host " +
      "and Content-Length, forwards the bytes over pooled keep-alive connections, copies the " +
      "response back; no validation, rewriting, timeouts or metrics), 2 worker isolates, " +
      "dynlb's V8 flags and direct socket I/O — a reference, not a product",
  };
}

async function startCaddy(dir: string, routes: readonly Route[]): Promise<Proxy> {
  const port = freePort();
  const conf = `${dir}/Caddyfile`;
  await Deno.writeTextFile(conf, caddyfile(port, routes));
  const process = new Spawned(
    "caddy",
    "caddy",
    ["run", "--config", conf, "--adapter", "caddyfile"],
    { XDG_CONFIG_HOME: `${dir}/caddy-config`, XDG_DATA_HOME: `${dir}/caddy-data`, HOME: dir },
  );
  await waitForPort(port, process);
  return {
    name: "caddy",
    url: `http://127.0.0.1:${port}`,
    pid: process.pid,
    process,
    describe: "Caddy reverse_proxy, lb_policy round_robin over the upstream list with the " +
      "weight-10 server repeated 10 times (Caddy 2.6 has no weighted_round_robin), " +
      "keepalive_idle_conns_per_host 256",
  };
}

/**
 * The Caddyfile. Caddy 2.6 has no weighted policy (`weighted_round_robin` came in 2.8), so a
 * weight is expressed by repeating the upstream: round_robin over [a×10, b] gives 10:1, in bursts
 * rather than interleaved.
 *
 * @example
 * ```ts
 * caddyfile(8080, routes);
 * ```
 */
export function caddyfile(port: number, routes: readonly Route[]): string {
  const sites = routes.map((r) => {
    const upstreams = r.servers.flatMap((s) =>
      Array.from({ length: s.weight }, () => `127.0.0.1:${s.port}`)
    );
    return `http://${r.host}:${port} {
  bind 127.0.0.1
  reverse_proxy ${upstreams.join(" ")} {
    lb_policy round_robin
    transport http {
      keepalive 300s
      keepalive_idle_conns 1024
      keepalive_idle_conns_per_host 256
    }
  }
}`;
  });
  return `{
  admin off
  auto_https off
}

${sites.join("\n\n")}
`;
}

/** The dynlb config document (see the README's configuration section). */
export interface DynlbConfig {
  backends: {
    backend_name: string;
    health_check?: Record<string, unknown>;
    balancer?: string;
    hash_on?: string;
    sticky?: { cookie: string; max_age?: number };
    servers: { addr: string; port: number; weight: number }[];
  }[];
  hosts: {
    host: string;
    backend_name: string;
    paths?: { prefix: string; backend_name: string; strip_prefix?: boolean }[];
  }[];
  default_backend?: string;
  tls?: { certificates: { cert_file: string; key_file: string }[] };
}

/**
 * The dynlb config for the shared routes.
 *
 * @example
 * ```ts
 * const config = dynlbConfig(backends.routes);
 * ```
 */
export function dynlbConfig(routes: readonly Route[]): DynlbConfig {
  return {
    backends: routes.map((r) => ({
      backend_name: r.name,
      servers: r.servers.map((s) => ({ addr: "127.0.0.1", port: s.port, weight: s.weight })),
    })),
    hosts: routes.map((r) => ({ host: r.host, backend_name: r.name })),
  };
}

/**
 * A dynlb config with `hosts` more hosts (`h0.scale.test` …), each with its own backend whose
 * servers are `portsOf(i)`, on top of `base`; `healthCheck` is set on each of those backends.
 *
 * @example
 * ```ts
 * const config = scaleConfig(10_000, () => backends.five, dynlbConfig(backends.routes));
 * ```
 */
export function scaleConfig(
  hosts: number,
  portsOf: (i: number) => readonly number[],
  base: DynlbConfig,
  healthCheck?: Record<string, unknown>,
): DynlbConfig {
  const config: DynlbConfig = { backends: [...base.backends], hosts: [...base.hosts] };
  for (let i = 0; i < hosts; i++) {
    const name = `scale-${i}`;
    config.backends.push({
      backend_name: name,
      ...(healthCheck ? { health_check: healthCheck } : {}),
      servers: portsOf(i).map((port) => ({ addr: "127.0.0.1", port, weight: 1 })),
    });
    config.hosts.push({ host: `h${i}.scale.test`, backend_name: name });
  }
  return config;
}

/**
 * Starts an nginx that listens on `count` loopback ports and closes every connection at once:
 * distinct servers for the health-check run, which accept like real ones do.
 *
 * @example
 * ```ts
 * const { ports } = await startListenerFarm(dir, 10_000);
 * ```
 */
export async function startListenerFarm(
  dir: string,
  count: number,
): Promise<{ ports: number[]; process: Spawned }> {
  // Below the ephemeral range (32768+), so outgoing connections never took one of them.
  const ports: number[] = [];
  for (let port = 20_000; port < 32_768 && ports.length < count; port++) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      ports.push(port);
    } catch { /* taken */ }
  }
  if (ports.length < count) throw new Error(`only ${ports.length} free ports for the farm`);
  const conf = `${dir}/farm-nginx.conf`;
  await Deno.writeTextFile(
    conf,
    `worker_processes 1;
worker_rlimit_nofile ${count + 4000};
pid ${dir}/farm-nginx.pid;
error_log ${dir}/farm-nginx-error.log warn;
events { worker_connections ${count + 2000}; }
http {
  ${commonHttp(dir, "farm-nginx")}
  server {
    ${ports.map((p) => `listen 127.0.0.1:${p};`).join("\n    ")}
    return 444;
  }
}
`,
  );
  const process = startNginx("farm-nginx", dir, conf);
  await waitForPort(ports[ports.length - 1], process);
  return { ports, process };
}

/** How to start one dynlb. */
export interface DynlbOptions {
  readonly name: string;
  readonly dir: string;
  readonly config: DynlbConfig;
  readonly transport: "h1" | "fetch";
  readonly workers: number;
  /** Proxy address (default `127.0.0.1:0`). */
  readonly listen?: string;
  /** More flags (e.g. a listener choice). */
  readonly extraArgs?: readonly string[];
  /** Environment variables (e.g. `DYNLB_NO_METRICS=1`). */
  readonly env?: Record<string, string>;
  /** An open-file limit (`ulimit -n`) to start it with, set by `prlimit` (root may raise it). */
  readonly openFiles?: number;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const READY = /ready: proxy http:\/\/(\S+), admin http:\/\/(\S+),/;

/**
 * Starts `main.ts` with a config file and waits for its ready line.
 *
 * @example
 * ```ts
 * const lb = await startDynlb({ name: "lb", dir, config, transport: "h1", workers: 2 });
 * ```
 */
export async function startDynlb(options: DynlbOptions): Promise<Proxy> {
  const { name, dir, transport, workers } = options;
  const file = `${dir}/${name}.json`;
  await Deno.writeTextFile(file, JSON.stringify(options.config));
  const deno = Deno.execPath();
  // prlimit sets the limit on itself, then execs dynlb: the pid is dynlb's.
  const [command, prefix] = options.openFiles === undefined
    ? [deno, []]
    : ["prlimit", [`--nofile=${options.openFiles}:${options.openFiles}`, deno]];
  const process = new Spawned(name, command, [
    ...prefix,
    "run",
    V8_FLAG_ARG,
    ...RUN_PERMISSIONS,
    MAIN,
    "--listen",
    options.listen ?? "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--config-file",
    file,
    "--data-dir",
    `${dir}/${name}-data`,
    "--workers",
    String(workers),
    "--upstream-transport",
    transport,
    "--log-level",
    "warn",
    ...(options.extraArgs ?? []),
  ], options.env);
  const [, proxy, admin] = await process.waitFor(READY);
  return {
    name,
    url: `http://${proxy}`,
    admin: `http://${admin}`,
    pid: process.pid,
    process,
    describe: `dynlb --workers ${workers} --upstream-transport ${transport}` +
      `${options.extraArgs?.length ? ` ${options.extraArgs.join(" ")}` : ""} (file store, ` +
      "weights in the config, passive checks at their defaults)",
  };
}
