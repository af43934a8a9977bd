/**
 * The benchmark's HTTPS run: dynlb's `--listen-tls` against nginx `listen … ssl` with the same
 * certificate (ECDSA P-256, made here with openssl) and the same backends, in interleaved rounds:
 *
 * - keep-alive requests/s (short body, c32): TLS record cost on top of proxying;
 * - new-connection handshakes/s (`Connection: close` on every request, c32): a full TLS
 *   handshake (no session resumption: wrk does not resume) per request.
 *
 * @module
 */
import {
  type Backends,
  dynlbConfig,
  HOSTS,
  nginxConf,
  PATHS,
  type Proxy,
  startDynlb,
  startNginxReference,
} from "./peers.ts";
import { ProcessMeter, runTracked } from "./proc.ts";
import { fmt, median, table } from "./report.ts";
import { runWrk } from "./wrk.ts";

/** What the run needs from the harness. */
export interface HttpsRunSettings {
  readonly rounds: number;
  /** Seconds per wrk measurement. */
  readonly duration: number;
  /** Seconds of warm-up per proxy and scenario. */
  readonly warmup: number;
  /** The dynlbs to measure (nginx is always the reference). */
  readonly dynlbs: readonly { transport: "h1" | "fetch"; workers: number; args?: string[] }[];
}

/** One HTTPS measurement. */
export interface HttpsSample {
  readonly round: number;
  readonly scenario: "keep-alive" | "new connection";
  readonly proxy: string;
  readonly rps: number;
  readonly p99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly errors: number;
}

const SCENARIOS = [
  { name: "keep-alive", close: false },
  { name: "new connection", close: true },
] as const;

/**
 * Runs the HTTPS run and returns its samples and Markdown.
 *
 * @example
 * ```ts
 * const { markdown } = await httpsRun(backends, dir, { rounds: 1, duration: 2, warmup: 1,
 *   dynlbs: [{ transport: "h1", workers: 2 }] }, console.error);
 * ```
 */
export async function httpsRun(
  backends: Backends,
  dir: string,
  settings: HttpsRunSettings,
  progress: (line: string) => void,
): Promise<{ samples: HttpsSample[]; markdown: string }> {
  const { cert, key } = await makeCertificate(dir);
  const proxies: (Proxy & { https: string })[] = [
    await startNginxTls(dir, backends, cert, key),
  ];
  for (const [i, d] of settings.dynlbs.entries()) {
    const config = {
      ...dynlbConfig(backends.routes),
      tls: { certificates: [{ cert_file: cert, key_file: key }] },
    };
    const proxy = await startDynlb({
      name: `dynlb-tls-${i}`,
      dir,
      transport: d.transport,
      workers: d.workers,
      extraArgs: ["--listen-tls", "127.0.0.1:0", ...(d.args ?? [])],
      config,
    });
    const [, https] = await proxy.process.waitFor(/, https https:\/\/(\S+),/);
    proxies.push({
      ...proxy,
      name: `${proxy.name} (${d.workers} workers)`,
      https: `https://${https}`,
    });
  }
  try {
    for (const proxy of proxies) {
      for (const s of SCENARIOS) await load(proxy, s.close, settings.warmup);
    }
    const samples: HttpsSample[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      for (const s of SCENARIOS) {
        for (const proxy of proxies) {
          const meter = new ProcessMeter(proxy.pid);
          const r = await load(proxy, s.close, settings.duration);
          const usage = meter.stop();
          const sample: HttpsSample = {
            round,
            scenario: s.name,
            proxy: proxy.name,
            rps: r.requestsPerSecond,
            p99Ms: r.p99Ms,
            cpuUsPerRequest: usage.cpuSeconds / Math.max(1, r.requests) * 1e6,
            errors: r.non2xx + r.socketErrors,
          };
          samples.push(sample);
          progress(
            `https round ${round} ${s.name} ${proxy.name}: ${fmt(sample.rps)} req/s, ` +
              `${fmt(sample.cpuUsPerRequest)} µs CPU each` +
              (sample.errors ? `, ${sample.errors} errors` : ""),
          );
        }
      }
    }
    return { samples, markdown: report(samples, proxies) };
  } finally {
    await Promise.all(proxies.map((p) => p.process.stop()));
  }
}

function load(proxy: { https: string }, close: boolean, seconds: number) {
  return runWrk({
    url: `${proxy.https}${PATHS.short}`,
    host: HOSTS.main,
    connections: 32,
    durationSeconds: seconds,
    headers: close ? ["Connection: close"] : [],
  });
}

function report(samples: readonly HttpsSample[], proxies: readonly Proxy[]): string {
  const rows: string[][] = [];
  for (const s of SCENARIOS) {
    const reference = median(
      samples.filter((x) => x.scenario === s.name && x.proxy === "nginx").map((x) => x.rps),
    );
    for (const proxy of proxies) {
      const mine = samples.filter((x) => x.scenario === s.name && x.proxy === proxy.name);
      const rps = median(mine.map((x) => x.rps));
      rows.push([
        s.name,
        proxy.name,
        fmt(rps),
        fmt(rps / reference, 2),
        fmt(median(mine.map((x) => x.p99Ms))),
        fmt(median(mine.map((x) => x.cpuUsPerRequest))),
        String(mine.reduce((n, x) => n + x.errors, 0)),
      ]);
    }
  }
  return [
    "## HTTPS",
    "",
    "Short body through TLS, wrk -t1 -c32, the same ECDSA P-256 certificate on both; medians of " +
    "the rounds. `new connection` sends `Connection: close`: every request is a new TCP " +
    "connection and a full TLS handshake, so its req/s are handshakes/s. Targets: keep-alive " +
    "≥ 0.7× nginx, new connection ≥ 0.5× nginx.",
    "",
    table(
      ["scenario", "proxy", "req/s", "× nginx", "p99 ms", "CPU µs/req", "errors"],
      rows,
    ),
    "",
    proxies.map((p) => `- ${p.name}: ${p.describe}`).join("\n"),
  ].join("\n");
}

async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/bench-tls.pem`;
  const key = `${dir}/bench-tls.key`;
  const out = await runTracked("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "30",
    "-subj",
    `/CN=${HOSTS.main}`,
    "-addext",
    `subjectAltName=DNS:${HOSTS.main}`,
  ]);
  if (!out.success) throw new Error(`openssl: ${new TextDecoder().decode(out.stderr)}`);
  // nginx workers run as nobody.
  await Deno.chmod(key, 0o644);
  return { cert, key };
}

async function startNginxTls(
  dir: string,
  backends: Backends,
  cert: string,
  key: string,
): Promise<Proxy & { https: string }> {
  const nginx = await startNginxReference(
    "nginx-tls",
    dir,
    (port) => nginxTlsConf(dir, port, backends, cert, key),
    "nginx 2 workers (auto), listen ssl with the same certificate, no session " +
      "resumption, upstream keepalive 256",
  );
  return { ...nginx, https: nginx.url.replace("http:", "https:") };
}

function nginxTlsConf(
  dir: string,
  port: number,
  backends: Backends,
  cert: string,
  key: string,
): string {
  const upstreams = backends.routes.map((r) => `
  upstream ${r.name} {
    ${r.servers.map((s) => `server 127.0.0.1:${s.port} weight=${s.weight};`).join("\n    ")}
    keepalive 256;
  }`).join("");
  const servers = backends.routes.map((r) => `
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${r.host};
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    location / {
      proxy_pass http://${r.name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto https;
    }
  }`).join("");
  return nginxConf(
    dir,
    "nginx-tls",
    `  ssl_session_cache off;
  ssl_session_tickets off;
  ${upstreams}
  ${servers}`,
  );
}
