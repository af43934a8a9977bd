import { assert, assertEquals, assertMatch } from "../../tests/_assert.ts";
import { helpText, OptionError, parseOptions } from "./options.ts";

/** The OptionError thrown by `fn` (fails on anything else). */
function optionError(fn: () => unknown): OptionError {
  try {
    fn();
  } catch (err) {
    assert(err instanceof OptionError, `expected an OptionError, got ${err}`);
    return err;
  }
  throw new Error("expected an OptionError");
}

Deno.test("options: defaults", () => {
  const o = parseOptions([], {});
  assertEquals(o.command, "serve");
  assertEquals(o.listen, { hostname: "0.0.0.0", port: 8080 });
  assertEquals(o.admin, { hostname: "127.0.0.1", port: 9001 });
  assertEquals(o.configType, "file");
  assertEquals(o.configFile, "./config.json");
  assertEquals(o.dataDir, "./.data");
  assertEquals(o.kvPath, "./.data/config.kv");
  assertEquals(o.redis, {
    host: "127.0.0.1",
    port: 6379,
    key: "balancer",
    password: undefined,
    db: 0,
    tls: false,
    url: undefined,
    sentinels: undefined,
    sentinelName: "mymaster",
  });
  assertEquals(o.workers, navigator.hardwareConcurrency);
  assertEquals(o.upstreamTransport, "h1");
  assertEquals(o.connectTimeoutMs, 5000);
  assertEquals(o.responseTimeoutMs, 60_000);
  assertEquals(o.retries, 2);
  assertEquals(o.shutdownTimeoutMs, 10_000);
  assertEquals(o.maxConfigBytes, 64 * 1024 * 1024);
  assertEquals(o.logLevel, "info");
  assertEquals(o.trustedProxies, []);
  assertEquals(o.proxyProtocol, false);
});

Deno.test("options: trusted proxies are CIDR lists, checked at start-up", () => {
  assertEquals(
    parseOptions(["--trusted-proxies", "10.0.0.0/8, ::1,fd00::/8,"], {}).trustedProxies,
    ["10.0.0.0/8", "::1", "fd00::/8"],
  );
  assertEquals(
    parseOptions([], { DYNLB_TRUSTED_PROXIES: "127.0.0.1" }).trustedProxies,
    ["127.0.0.1"],
  );
  assertMatch(
    optionError(() => parseOptions(["--trusted-proxies", "10.0.0.0/8,10.0.0.0/40"], {})).message,
    /--trusted-proxies: "10\.0\.0\.0\/40": the prefix length must be 0 to 32/,
  );
  assertMatch(
    optionError(() => parseOptions(["--trusted-proxies", "lb.internal"], {})).message,
    /--trusted-proxies: "lb\.internal" is not an IP address or CIDR range/,
  );
  const trusting = ["--trusted-proxies", "10.0.0.0/8"];
  assertEquals(parseOptions([...trusting, "--proxy-protocol"], {}).proxyProtocol, true);
  assertEquals(parseOptions(trusting, { DYNLB_PROXY_PROTOCOL: "1" }).proxyProtocol, true);
  assertMatch(
    optionError(() => parseOptions(["--proxy-protocol"], {})).message,
    /--proxy-protocol needs --trusted-proxies/,
  );
});

Deno.test("options: a flag beats its environment variable, which beats the default", () => {
  const env = { DYNLB_LISTEN: "127.0.0.1:7000", DYNLB_RETRIES: "5", DYNLB_REDIS_KEY: "lb" };
  const fromEnv = parseOptions([], env);
  assertEquals(fromEnv.listen, { hostname: "127.0.0.1", port: 7000 });
  assertEquals(fromEnv.retries, 5);
  assertEquals(fromEnv.redis.key, "lb");
  const fromFlag = parseOptions(["--listen", "127.0.0.1:7001", "--retries=0"], env);
  assertEquals(fromFlag.listen, { hostname: "127.0.0.1", port: 7001 });
  assertEquals(fromFlag.retries, 0);
  assertEquals(fromFlag.redis.key, "lb");
});

Deno.test("options: data dir moves the KV path unless it is given", () => {
  assertEquals(
    parseOptions(["--data-dir", "/var/lib/dynlb"], {}).kvPath,
    "/var/lib/dynlb/config.kv",
  );
  assertEquals(
    parseOptions(["--data-dir", "/d"], { DYNLB_KV_PATH: "/k.kv" }).kvPath,
    "/k.kv",
  );
});

Deno.test("options: addresses, IPv6 in brackets, port 0, empty host", () => {
  assertEquals(parseOptions(["--listen", "[::1]:0"], {}).listen, { hostname: "::1", port: 0 });
  assertEquals(parseOptions(["--admin", ":9100"], {}).admin, { hostname: "0.0.0.0", port: 9100 });
  assertEquals(parseOptions(["--listen", "localhost:65535"], {}).listen, {
    hostname: "localhost",
    port: 65535,
  });
});

Deno.test("options: seconds accept fractions, booleans and enums parse", () => {
  const o = parseOptions([
    "--connect-timeout",
    "0.25",
    "--redis-tls",
    "--upstream-transport",
    "fetch",
    "--config-type",
    "redis",
    "--workers",
    "3",
    "--log-level",
    "warn",
  ], {});
  assertEquals(o.connectTimeoutMs, 250);
  assertEquals(parseOptions(["--response-timeout", "86400"], {}).responseTimeoutMs, 86_400_000);
  assertEquals(o.redis.tls, true);
  assertEquals(o.upstreamTransport, "fetch");
  assertEquals(o.configType, "redis");
  assertEquals(o.workers, 3);
  assertEquals(o.logLevel, "warn");
  assertEquals(parseOptions([], { DYNLB_REDIS_TLS: "yes" }).redis.tls, true);
  assertEquals(parseOptions([], { DYNLB_REDIS_TLS: "0" }).redis.tls, false);
});

Deno.test("options: bad values give an OptionError naming the flag", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--listen", "8080"], {}, /--listen must be HOST:PORT/],
    [["--listen", "127.0.0.1:65536"], {}, /--listen must be a whole number/],
    [["--admin", "127.0.0.1:x"], {}, /--admin/],
    [["--config-type", "etcd"], {}, /--config-type must be one of file, kv, redis/],
    [["--upstream-transport", "h2"], {}, /--upstream-transport/],
    [["--workers", "0"], {}, /--workers/],
    [["--retries", "-1"], {}, /--retries/],
    [["--retries", "1.5"], {}, /--retries/],
    [["--connect-timeout", "0"], {}, /--connect-timeout must be a number of seconds/],
    [["--response-timeout", "soon"], {}, /--response-timeout/],
    [["--redis-port", "0"], {}, /--redis-port/],
    [["--max-config-bytes", "10"], {}, /--max-config-bytes/],
    [["--log-level", "trace"], {}, /--log-level/],
    [[], { DYNLB_SHUTDOWN_TIMEOUT: "-2" }, /--shutdown-timeout/],
  ];
  for (const [args, env, pattern] of cases) {
    assertMatch(optionError(() => parseOptions(args, env)).message, pattern);
  }
});

Deno.test("options: timeouts a timer cannot hold are refused", () => {
  // Past 2^31-1 ms a timer fires at once: every request would time out.
  assertMatch(
    optionError(() => parseOptions(["--response-timeout", "3000000"], {})).message,
    /--response-timeout/,
  );
  // Rounds to a 0 ms timeout.
  assertMatch(
    optionError(() => parseOptions(["--connect-timeout", "0.0001"], {})).message,
    /--connect-timeout/,
  );
});

Deno.test("options: an unknown flag is an OptionError pointing at --help", () => {
  const err = optionError(() => parseOptions(["--lisen", "x"], {}));
  assertMatch(err.message, /lisen/);
  assertMatch(err.message, /--help/);
});

Deno.test("options: check, help and version commands", () => {
  assertEquals(parseOptions(["check", "--config-file", "x.json"], {}).command, "check");
  assertEquals(parseOptions(["check", "--config-file", "x.json"], {}).configFile, "x.json");
  assertEquals(parseOptions(["help"], {}).command, "help");
  assertEquals(parseOptions(["--help"], {}).command, "help");
  assertEquals(parseOptions(["-h"], {}).command, "help");
  assertEquals(parseOptions(["version"], {}).command, "version");
  assertEquals(parseOptions(["--version"], {}).command, "version");
  assertEquals(parseOptions(["-V"], {}).command, "version");
});

Deno.test("options: an unknown command is an OptionError listing the commands", () => {
  const err = optionError(() => parseOptions(["serve-please"], {}));
  assertMatch(err.message, /unknown command "serve-please"/);
  assertMatch(err.message, /check, diff, schema, demo, help, version/);
});

Deno.test("options: admin token flags, history, demo ports, diff arguments", () => {
  const o = parseOptions([], {});
  assertEquals([o.adminToken, o.adminTokenFile, o.adminInsecure], [undefined, undefined, false]);
  assertEquals([o.history, o.demoPorts], [20, [10001, 10002]]);
  const env = { DYNLB_ADMIN_TOKEN: "from-env", DYNLB_ADMIN_INSECURE: "yes", DYNLB_HISTORY: "5" };
  const e = parseOptions(["--demo-ports", "2000, 2001"], env);
  assertEquals([e.adminToken, e.adminInsecure, e.history, e.demoPorts], [
    "from-env",
    true,
    5,
    [2000, 2001],
  ]);
  assertMatch(
    optionError(() => parseOptions(["--admin-token", "a", "--admin-token-file", "f"], {})).message,
    /exclude each other/,
  );
  assertEquals(parseOptions(["diff", "a.json", "b.json"], {}).args, ["a.json", "b.json"]);
  assertMatch(optionError(() => parseOptions(["diff", "a.json"], {})).message, /two files/);
  assertMatch(optionError(() => parseOptions(["check", "x"], {})).message, /unexpected argument/);
  assertMatch(optionError(() => parseOptions(["--demo-ports", "1"], {})).message, /two ports/);
});

Deno.test("options: help lists every flag with its variable and default", () => {
  const text = helpText();
  assertMatch(text, /--listen VALUE .*\[default 0\.0\.0\.0:8080\].*\(DYNLB_LISTEN\)/);
  assertMatch(text, /--redis-tls .*\(DYNLB_REDIS_TLS\)/);
  assertMatch(text, /dynlb check/);
});
