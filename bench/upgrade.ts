/**
 * The upgrade run: wrk keeps 32 keep-alive connections busy for 20 s while, in the middle, the
 * proxy replaces itself — nginx with its own binary upgrade (`USR2`, then `WINCH` and `QUIT` to
 * the old master), dynlb with a second process on the same port (`--reuse-port`) and `SIGTERM`
 * to the first. Reported: failed requests (wrk's socket errors and non-2xx answers; wrk does not
 * retry) and the worst 1-second window of completed requests.
 *
 * @module
 */
import {
  dynlbConfig,
  freePort,
  HOSTS,
  nginxProxyConf,
  PATHS,
  type Route,
  startDynlb,
} from "./peers.ts";
import { runTracked } from "./proc.ts";
import { fmt, table } from "./report.ts";
import { parseWrk } from "./wrk.ts";

/** Counts 2xx answers per wall-clock second in each wrk thread; prints them at the end. */
const PER_SECOND_LUA = `
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status < 300 then
    local s = os.time()
    counts[s] = (counts[s] or 0) + 1
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do total[s] = (total[s] or 0) + n end
  end
  for s, n in pairs(total) do io.write(string.format("second %d %d\\n", s, n)) end
end
`;

/** One proxy's upgrade under load. */
export interface UpgradeRow {
  readonly proxy: string;
  readonly how: string;
  readonly requests: number;
  readonly failed: number;
  readonly meanRps: number;
  /** Fewest answers in one whole second of the run. */
  readonly worstSecond: number;
  /**
   * Seconds the switch took, from its first step until the old process was gone (for dynlb
   * this includes starting the new process, which shares the CPU with the one serving).
   */
  readonly switchSeconds: number;
}

/** Settings of the run. */
export interface UpgradeSettings {
  readonly durationSeconds: number;
  readonly connections: number;
}

/**
 * Runs the upgrade of nginx and of dynlb, one after the other, and returns the table.
 *
 * @example
 * ```ts
 * const { rows, markdown } = await upgradeRun(dir, backends.routes, { durationSeconds: 20, connections: 32 });
 * ```
 */
export async function upgradeRun(
  dir: string,
  routes: readonly Route[],
  settings: UpgradeSettings,
  dynlb: { transport: "h1" | "fetch"; workers: number; listener?: string },
  progress: (message: string) => void,
): Promise<{ rows: UpgradeRow[]; markdown: string }> {
  const script = `${dir}/per-second.lua`;
  await Deno.writeTextFile(script, PER_SECOND_LUA);
  const rows: UpgradeRow[] = [];

  rows.push(
    await underLoad(
      "nginx",
      "binary upgrade: USR2, WINCH, QUIT",
      script,
      settings,
      async (port) => {
        const nginx = await NginxMaster.start(dir, port, routes);
        return {
          async switchOver() {
            await nginx.binaryUpgrade();
          },
          stop: () => nginx.stop(),
        };
      },
    ),
  );
  progress(describe(rows[rows.length - 1]));

  const { transport, workers } = dynlb;
  const extra = ["--reuse-port", ...(dynlb.listener ? ["--listener", dynlb.listener] : [])];
  rows.push(
    await underLoad(
      `dynlb-${transport}-w${workers}${dynlb.listener ? `-${dynlb.listener}` : ""}`,
      "second process with --reuse-port, then SIGTERM to the first",
      script,
      settings,
      async (port) => {
        const start = (name: string) =>
          startDynlb({
            name,
            dir,
            config: dynlbConfig(routes),
            transport,
            workers,
            listen: `127.0.0.1:${port}`,
            extraArgs: extra,
          });
        let current = await start("dynlb-upgrade-old");
        return {
          async switchOver() {
            const next = await start("dynlb-upgrade-new");
            await current.process.stop(30_000);
            current = next;
          },
          stop: () => current.process.stop(),
        };
      },
    ),
  );
  progress(describe(rows[rows.length - 1]));

  const markdown = `### Upgrade under load (wrk -t1 -c${settings.connections} ` +
    `-d${settings.durationSeconds}s, short body; the switch starts at ` +
    `${settings.durationSeconds / 2} s; failed = wrk socket errors + non-2xx, wrk does not ` +
    `retry; worst second = fewest answers in one whole wall-clock second)\n\n` +
    table(
      ["proxy", "how", "requests", "failed", "mean req/s", "worst 1 s", "worst ÷ mean", "switch s"],
      rows.map((r) => [
        r.proxy,
        r.how,
        String(r.requests),
        String(r.failed),
        fmt(r.meanRps),
        String(r.worstSecond),
        fmt(r.worstSecond / r.meanRps),
        fmt(r.switchSeconds),
      ]),
    );
  console.log(`\n${markdown}`);
  return { rows, markdown };
}

function describe(r: UpgradeRow): string {
  return `upgrade ${r.proxy}: ${r.requests} requests, ${r.failed} failed, ` +
    `worst second ${r.worstSecond} (mean ${fmt(r.meanRps)}/s), switch ${fmt(r.switchSeconds)} s`;
}

interface Upgradable {
  switchOver(): Promise<void>;
  stop(): Promise<void>;
}

async function underLoad(
  proxy: string,
  how: string,
  script: string,
  settings: UpgradeSettings,
  launch: (port: number) => Promise<Upgradable>,
): Promise<UpgradeRow> {
  const port = freePort();
  const target = await launch(port);
  let switchSeconds = NaN;
  try {
    const wrk = runTracked("wrk", [
      "-t1",
      `-c${settings.connections}`,
      `-d${settings.durationSeconds}s`,
      "--latency",
      "-s",
      script,
      "-H",
      `Host: ${HOSTS.main}`,
      `http://127.0.0.1:${port}${PATHS.short}`,
    ]);
    // The switch in the middle of the run: the schedule of the benchmark, not a wait.
    await new Promise((resolve) => setTimeout(resolve, settings.durationSeconds * 500));
    const started = performance.now();
    await target.switchOver();
    switchSeconds = (performance.now() - started) / 1000;
    const output = await wrk;
    const text = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new Error(`wrk failed:\n${text}${new TextDecoder().decode(output.stderr)}`);
    }
    const result = parseWrk(text);
    const seconds = [...text.matchAll(/^second (\d+) (\d+)$/gm)]
      .map((m) => [Number(m[1]), Number(m[2])] as const)
      .sort((a, b) => a[0] - b[0]);
    // The first and last seconds are partial; a second with no answer at all has no entry.
    let worst = Infinity;
    if (seconds.length > 2) {
      const counts = new Map(seconds);
      for (let s = seconds[0][0] + 1; s < seconds[seconds.length - 1][0]; s++) {
        worst = Math.min(worst, counts.get(s) ?? 0);
      }
    }
    return {
      proxy,
      how,
      requests: result.requests,
      failed: result.non2xx + result.socketErrors,
      meanRps: result.requestsPerSecond,
      worstSecond: worst === Infinity ? 0 : worst,
      switchSeconds,
    };
  } finally {
    await target.stop();
  }
}

/**
 * A daemonised nginx master (a binary upgrade needs one: a foreground master ignores `USR2`
 * while its parent lives), found through its pid file.
 */
class NginxMaster {
  readonly #pidFile: string;
  #pid: number;

  private constructor(pidFile: string, pid: number) {
    this.#pidFile = pidFile;
    this.#pid = pid;
  }

  static async start(dir: string, port: number, routes: readonly Route[]): Promise<NginxMaster> {
    const name = "nginx-upgrade";
    const conf = `${dir}/${name}.conf`;
    // Daemonised: its own error log only, not the foreground -g "daemon off;".
    await Deno.writeTextFile(conf, nginxProxyConf(dir, port, routes, name));
    const binary = await which("nginx");
    const out = await runTracked(binary, ["-p", dir, "-e", `${dir}/${name}-error.log`, "-c", conf]);
    if (!out.success) throw new Error(`nginx: ${new TextDecoder().decode(out.stderr)}`);
    const pidFile = `${dir}/${name}.pid`;
    const master = new NginxMaster(pidFile, await readPid(pidFile));
    await waitForListening(port);
    return master;
  }

  /** USR2 (a new master with new workers beside the old), WINCH (old workers leave), QUIT. */
  async binaryUpgrade(): Promise<void> {
    const old = this.#pid;
    Deno.kill(old, "SIGUSR2");
    let next = old;
    while (next === old) {
      await tick();
      next = await readPid(this.#pidFile).catch(() => old);
    }
    // The new master is up once its workers are (they accept on the inherited sockets).
    while (childrenOf(next).length < 1) await tick();
    Deno.kill(old, "SIGWINCH");
    // The new master is a child of the old one: wait for the old workers only.
    while (childrenOf(old).some((pid) => pid !== next)) await tick();
    Deno.kill(old, "SIGQUIT");
    while (alive(old)) await tick();
    this.#pid = next;
  }

  async stop(): Promise<void> {
    try {
      Deno.kill(this.#pid, "SIGQUIT");
    } catch {
      return;
    }
    const deadline = performance.now() + 10_000;
    while (alive(this.#pid) && performance.now() < deadline) await tick();
    for (const pid of [this.#pid, ...childrenOf(this.#pid)]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

async function which(command: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", `command -v ${command}`] }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || path === "") throw new Error(`${command} not found`);
  return path;
}

async function readPid(file: string): Promise<number> {
  for (let i = 0; i < 250; i++) {
    try {
      const pid = Number((await Deno.readTextFile(file)).trim());
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch { /* not written yet */ }
    await tick();
  }
  throw new Error(`no pid in ${file}`);
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const child = Number(entry.name);
    if (!Number.isInteger(child)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${child}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid && fields[0] !== "Z") children.push(child);
    } catch { /* gone */ }
  }
  return children;
}

async function waitForListening(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await tick();
    }
  }
  throw new Error(`nothing listens on ${port}`);
}
