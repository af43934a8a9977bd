/**
 * dynlb: a dynamic, host-routed load balancer and reverse proxy. See README.md.
 *
 * @module
 */
import { formatHostPort } from "./src/address.ts";
import { helpText, OptionError, type Options, parseOptions } from "./src/cli/options.ts";
import { start, StartupError } from "./src/app.ts";
import { formatIssues, parseConfig } from "./src/config/schema.ts";
import { diffConfigs, formatDiff } from "./src/config/diff.ts";
import { type Demo, DemoError, startDemo } from "./src/demo.ts";
import { log, setLogLevel } from "./src/log.ts";
import { VERSION } from "./src/version.ts";

/** A signal within this long after the first is the same one relayed, not a second request. */
const REPEAT_SIGNAL_MS = 1000;

async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(args, Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    console.error(`dynlb: ${err.message}`);
    return 2;
  }
  setLogLevel(options.logLevel);
  switch (options.command) {
    case "help":
      console.log(helpText());
      return 0;
    case "version":
      console.log(`dynlb ${VERSION} (deno ${Deno.version.deno})`);
      return 0;
    case "check":
      return await check(options.configFile);
    case "diff":
      return await diff(options.args[0], options.args[1]);
    case "schema": {
      const { configJsonSchema } = await import("./src/config/json_schema.ts");
      console.log(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }
  }

  let demo: Demo | undefined;
  if (options.command === "demo") {
    try {
      demo = await startDemo(options);
    } catch (err) {
      if (!(err instanceof DemoError)) throw err;
      console.error(`dynlb: ${err.message}`);
      return 1;
    }
    options = { ...options, configType: "file", configFile: demo.configFile };
  }

  let running;
  try {
    running = await start(options);
  } catch (err) {
    await demo?.close();
    if (!(err instanceof StartupError)) throw err;
    console.error(`dynlb: ${err.message}`);
    return 1;
  }
  const { proxy, admin, control, tls } = running;
  console.log(
    `dynlb ${VERSION} ready: proxy http://${hostPort(proxy)}, admin http://${hostPort(admin)}, ` +
      (tls ? `https https://${hostPort(tls)}, ` : "") +
      `config ${control.store.kind} ${control.store.location} (version ${control.running.version})`,
  );
  if (demo !== undefined) printDemoHints(demo, proxy, admin);

  // logrotate's signal: reopen the access log where it was.
  Deno.addSignalListener("SIGHUP", () => {
    log("info", "SIGHUP: reopening the access log");
    running.reopenLogs();
  });
  const signal = await new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  const firstAt = performance.now();
  log("info", "shutting down", { signal, timeout_s: options.shutdownTimeoutMs / 1000 });
  // A second signal means "now": requests still in flight are cut off. One signal often arrives
  // several times at once — `kill` on a process group reaches dynlb and the `deno task` runner,
  // which passes it on — so only a signal sent deliberately later counts.
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(name, () => {
      if (performance.now() - firstAt < REPEAT_SIGNAL_MS) {
        log("debug", "signal repeated within 1 s (relayed): still draining", { signal: name });
        return;
      }
      log("warn", "second signal: stopping at once");
      Deno.exit(1);
    });
  }
  const drained = await running.shutdown(options.shutdownTimeoutMs);
  await demo?.close();
  if (!drained) log("warn", "shutdown timeout: requests still in flight were cut off");
  log("info", "stopped");
  return 0;
}

async function check(path: string): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    console.error(`dynlb: cannot read ${path}: ${(err as Error).message}`);
    return 1;
  }
  const result = parseConfig(text);
  if (!result.ok) {
    console.error(`${path}: ${result.issues.length} problem(s)\n${formatIssues(result.issues)}`);
    return 1;
  }
  const { backends, hosts } = result.config;
  console.log(`${path}: ok (${backends.length} backends, ${hosts.length} hosts)`);
  if (result.warnings.length > 0) {
    console.error(`${result.warnings.length} warning(s)\n${formatIssues(result.warnings)}`);
  }
  return 0;
}

/** `dynlb diff OLD NEW`: exit 0 when they route alike, 1 when they differ, 2 on a bad file. */
async function diff(oldPath: string, newPath: string): Promise<number> {
  const configs = [];
  for (const path of [oldPath, newPath]) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      console.error(`dynlb: cannot read ${path}: ${(err as Error).message}`);
      return 2;
    }
    const result = parseConfig(text);
    if (!result.ok) {
      console.error(`${path}: ${result.issues.length} problem(s)\n${formatIssues(result.issues)}`);
      return 2;
    }
    configs.push(result.config);
  }
  const lines = formatDiff(diffConfigs(configs[0], configs[1]));
  if (lines.length === 0) {
    console.log("no difference");
    return 0;
  }
  console.log(lines.join("\n"));
  return 1;
}

function printDemoHints(demo: Demo, proxy: Deno.NetAddr, admin: Deno.NetAddr): void {
  // A wildcard listener is reached on loopback.
  const at = (addr: Deno.NetAddr) =>
    hostPort({ ...addr, hostname: addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname });
  const servers = demo.backends.map((b) => `${b.name} on 127.0.0.1:${b.port}`).join(", ");
  console.log(
    [
      `demo backends: ${servers}; config: ${demo.configFile} (the seed's config.json)`,
      "try:",
      `  curl -H 'Host: www.test1.com' http://${at(proxy)}/`,
      `  for i in $(seq 11); do curl -s -H 'Host: www.test2.com' http://${at(proxy)}/; done`,
      `  curl -s http://${at(admin)}/status`,
    ].join("\n"),
  );
}

function hostPort(addr: Deno.NetAddr): string {
  return formatHostPort(addr.hostname, addr.port);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
