import { assert, assertEquals } from "../../tests/_assert.ts";
import { formatIssues, parseConfig, validateConfig } from "./schema.ts";
import type { ConfigIssue, ParseResult } from "./types.ts";

/** The issues of a refused config (fails if it was accepted). */
function issuesOf(result: ParseResult): readonly ConfigIssue[] {
  assert(!result.ok, "expected the config to be refused");
  return result.issues;
}

/** The message at `path`, or undefined when no issue names that path. */
function messageAt(result: ParseResult, path: string): string | undefined {
  return issuesOf(result).find((i) => i.path === path)?.message;
}

/** A valid document with one backend of one server, to break one field at a time. */
function base(): {
  backends: Record<string, unknown>[];
  hosts: Record<string, unknown>[];
} {
  return {
    backends: [
      { backend_name: "b0", servers: [{ addr: "127.0.0.1", port: 10001 }] },
      { backend_name: "b1", servers: [{ addr: "127.0.0.1", port: 10002 }] },
    ],
    hosts: [{ host: "www.test1.com", backend_name: "b0" }],
  };
}

/** `base()` with `patch` merged into `backends[1].servers[0]`. */
function withServer(patch: Record<string, unknown>): unknown {
  const doc = base();
  doc.backends[1].servers = [{ addr: "127.0.0.1", port: 10002, ...patch }];
  return doc;
}

/** `base()` with `backends[1].health_check` set. */
function withCheck(check: Record<string, unknown>): unknown {
  const doc = base();
  doc.backends[1].health_check = check;
  return doc;
}

Deno.test("schema: the seed's example config.json is accepted as-is, defaults filled", async () => {
  const text = await Deno.readTextFile(new URL("../../config.json", import.meta.url));
  const result = parseConfig(text);
  assert(result.ok, result.ok ? "" : formatIssues(result.issues));
  const [b1, b2] = result.config.backends;
  assertEquals(b1.backend_name, "backend1");
  // weight is absent in the seed's backend1: 1.
  assertEquals(b1.servers, [{ addr: "127.0.0.1", port: 10001, weight: 1 }]);
  assertEquals(b2.servers.map((s) => s.weight), [10, 1]);
  assertEquals(b1.health_check, {
    enable: true,
    type: "tcp",
    interval: 3,
    timeout: 2,
    success: 2,
    fail: 3,
  });
  assertEquals(b2.health_check?.uri, "/ping");
  assertEquals(result.config.hosts, [
    { host: "www.test1.com", backend_name: "backend1" },
    { host: "www.test2.com", backend_name: "backend2" },
  ]);
});

Deno.test("schema: an empty health_check and passive_check get every default", () => {
  const doc = base();
  doc.backends[0].health_check = {};
  doc.backends[0].passive_check = {};
  const result = validateConfig(doc);
  assert(result.ok, result.ok ? "" : formatIssues(result.issues));
  assertEquals(result.config.backends[0].health_check, {
    enable: true,
    type: "tcp",
    interval: 3,
    timeout: 2,
    success: 2,
    fail: 3,
  });
  assertEquals(result.config.backends[0].passive_check, { max_fails: 1, fail_timeout: 10 });
  // Absent means "no active checks" (passive defaults are applied by the health checker).
  assertEquals(result.config.backends[1].health_check, undefined);
});

Deno.test("schema: an empty document shape with empty lists is valid", () => {
  assertEquals(validateConfig({ backends: [], hosts: [] }), {
    ok: true,
    config: { backends: [], hosts: [] },
    document: { backends: [], hosts: [] },
    warnings: [],
  });
  // A backend without servers is valid (its requests get 503).
  const doc = base();
  doc.backends[1].servers = [];
  assert(validateConfig(doc).ok);
});

Deno.test("schema: port must be a whole number 1-65535, at its JSON path", () => {
  for (const port of [0, 65536, -1, 80.5]) {
    const message = messageAt(validateConfig(withServer({ port })), "backends[1].servers[0].port");
    assert(message !== undefined, `port ${port} accepted`);
  }
  assertEquals(
    messageAt(validateConfig(withServer({ port: 0 })), "backends[1].servers[0].port"),
    "must be between 1 and 65535",
  );
  assertEquals(
    messageAt(validateConfig(withServer({ port: "80" })), "backends[1].servers[0].port"),
    "must be a whole number",
  );
  assert(validateConfig(withServer({ port: 1 })).ok);
  assert(validateConfig(withServer({ port: 65535 })).ok);
});

Deno.test("schema: weight must be a whole number 1-10000", () => {
  for (const weight of [0, 1.5, 10_001, -3, "2", null]) {
    const result = validateConfig(withServer({ weight }));
    assert(
      messageAt(result, "backends[1].servers[0].weight") !== undefined,
      `weight ${weight} accepted`,
    );
  }
  assertEquals(
    messageAt(validateConfig(withServer({ weight: 0 })), "backends[1].servers[0].weight"),
    "must be at least 1",
  );
  assert(validateConfig(withServer({ weight: 10_000 })).ok);
});

Deno.test("schema: addr must be a string address without scheme or port", () => {
  for (const addr of ["", "http://x", "a b", 42]) {
    const result = validateConfig(withServer({ addr }));
    assert(messageAt(result, "backends[1].servers[0].addr") !== undefined, `addr ${addr} accepted`);
  }
  for (
    const addr of ["::1", "[::1]", "fe80::1:2", "::ffff:10.0.0.1", "10.0.0.1", "backend.internal"]
  ) {
    assert(validateConfig(withServer({ addr })).ok, `addr ${addr} refused`);
  }
});

Deno.test("schema: an addr with a port or broken brackets is refused", () => {
  // Each would compile to a broken upstream origin such as http://[127.0.0.1:8080]:10002.
  for (const addr of ["127.0.0.1:8080", "[::1", "::1]", "[127.0.0.1]", "1:2", "gggg::1"]) {
    const result = validateConfig(withServer({ addr }));
    assertEquals(
      messageAt(result, "backends[1].servers[0].addr"),
      "must be an IP address or host name, without scheme or port",
      `addr ${addr}`,
    );
  }
});

Deno.test("schema: interval and timeout must be seconds > 0, thresholds at least 1", () => {
  for (const field of ["interval", "timeout"]) {
    for (const value of [0, -1, "3"]) {
      const result = validateConfig(withCheck({ [field]: value }));
      assert(
        messageAt(result, `backends[1].health_check.${field}`) !== undefined,
        `${field} ${value} accepted`,
      );
    }
  }
  assertEquals(
    messageAt(validateConfig(withCheck({ interval: 0 })), "backends[1].health_check.interval"),
    "must be greater than 0",
  );
  for (const field of ["success", "fail"]) {
    for (const value of [0, 1.5, 1001]) {
      const result = validateConfig(withCheck({ [field]: value }));
      assert(
        messageAt(result, `backends[1].health_check.${field}`) !== undefined,
        `${field} ${value} accepted`,
      );
    }
  }
  assertEquals(
    messageAt(validateConfig(withCheck({ fail: 0 })), "backends[1].health_check.fail"),
    "must be at least 1",
  );
  // Fractions of a second are allowed.
  assert(validateConfig(withCheck({ interval: 0.2, timeout: 0.1 })).ok);
});

Deno.test("schema: passive_check ranges (max_fails 0 turns it off)", () => {
  const doc = base();
  doc.backends[1].passive_check = { max_fails: 0, fail_timeout: 0.5 };
  assert(validateConfig(doc).ok);
  doc.backends[1].passive_check = { max_fails: -1, fail_timeout: 0 };
  const result = validateConfig(doc);
  assert(messageAt(result, "backends[1].passive_check.max_fails") !== undefined);
  assert(messageAt(result, "backends[1].passive_check.fail_timeout") !== undefined);
});

Deno.test("schema: type must be tcp or http, enable a boolean", () => {
  assertEquals(
    messageAt(validateConfig(withCheck({ type: "udp" })), "backends[1].health_check.type"),
    'must be "tcp" or "http"',
  );
  assertEquals(
    messageAt(validateConfig(withCheck({ enable: "yes" })), "backends[1].health_check.enable"),
    "must be true or false",
  );
});

Deno.test("schema: an http check needs a uri, reported at health_check.uri", () => {
  const result = validateConfig(withCheck({ type: "http" }));
  assertEquals(issuesOf(result), [
    { path: "backends[1].health_check.uri", message: 'is required when type is "http"' },
  ]);
  assert(validateConfig(withCheck({ type: "http", uri: "/ping" })).ok);
  assert(
    messageAt(
      validateConfig(withCheck({ type: "http", uri: "ping" })),
      "backends[1].health_check.uri",
    ) !==
      undefined,
  );
  // tcp needs none.
  assert(validateConfig(withCheck({ type: "tcp" })).ok);
});

Deno.test("schema: a missing http uri is reported along with other health_check problems", () => {
  // A wrong type or an unknown field elsewhere in the object must not hide it.
  const result = validateConfig(withCheck({ type: "http", interval: "3", intervall: 3 }));
  assertEquals(issuesOf(result).map((i) => i.path).sort(), [
    "backends[1].health_check.interval",
    "backends[1].health_check.intervall",
    "backends[1].health_check.uri",
  ]);
});

Deno.test("schema: unknown fields are refused at their path, nested too", () => {
  const doc = base() as Record<string, unknown> & ReturnType<typeof base>;
  doc.extra = 1;
  doc.backends[0].wieght = 10;
  doc.backends[1].servers = [{ addr: "127.0.0.1", port: 10002, wieght: 10 }];
  doc.backends[1].health_check = { intervall: 3 };
  doc.backends[1].passive_check = { max_fail: 3 };
  doc.hosts[0].port = 80;
  const issues = issuesOf(validateConfig(doc));
  const unknown = issues.filter((i) => i.message === "unknown field").map((i) => i.path).sort();
  assertEquals(unknown, [
    "backends[0].wieght",
    "backends[1].health_check.intervall",
    "backends[1].passive_check.max_fail",
    "backends[1].servers[0].wieght",
    "extra",
    "hosts[0].port",
  ]);
});

Deno.test("schema: missing required fields are reported as required", () => {
  assertEquals(issuesOf(validateConfig({})), [
    { path: "backends", message: "is required" },
    { path: "hosts", message: "is required" },
  ]);
  const doc = {
    backends: [{ servers: [{}] }, { backend_name: "b1" }],
    hosts: [{}],
  };
  const issues = issuesOf(validateConfig(doc));
  const required = issues.filter((i) => i.message === "is required").map((i) => i.path).sort();
  assertEquals(required, [
    "backends[0].backend_name",
    "backends[0].servers[0].addr",
    "backends[0].servers[0].port",
    "backends[1].servers",
    "hosts[0].backend_name",
    "hosts[0].host",
  ]);
});

Deno.test("schema: wrong types name the path and what was expected", () => {
  assertEquals(issuesOf(validateConfig(null)), [
    { path: "", message: "must be an object with backends and hosts" },
  ]);
  assertEquals(issuesOf(validateConfig({ backends: {}, hosts: [] })), [
    { path: "backends", message: "must be an array" },
  ]);
  const doc = base();
  doc.backends[1].servers = [7 as unknown as Record<string, unknown>];
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "backends[1].servers[0]", message: "must be an object" },
  ]);
  assertEquals(
    messageAt(
      validateConfig({ backends: [{ backend_name: 3, servers: [] }], hosts: [] }),
      "backends[0].backend_name",
    ),
    "must be a string",
  );
});

Deno.test("schema: duplicate backend_name is refused at the second one", () => {
  const doc = base();
  doc.backends[1].backend_name = "b0";
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "backends[1].backend_name", message: 'duplicate backend_name "b0" (also backends[0])' },
  ]);
});

Deno.test("schema: the same server twice in one backend is refused, across backends allowed", () => {
  const doc = base();
  doc.backends[1].servers = [
    { addr: "127.0.0.1", port: 10002 },
    { addr: "127.0.0.1", port: 10003 },
    { addr: "127.0.0.1", port: 10002, weight: 5 },
  ];
  assertEquals(issuesOf(validateConfig(doc)), [{
    path: "backends[1].servers[2]",
    message: "duplicate server 127.0.0.1:10002 in this backend (also servers[0])",
  }]);
  const shared = base();
  shared.backends[1].servers = [{ addr: "127.0.0.1", port: 10001 }];
  assert(validateConfig(shared).ok);
});

Deno.test("schema: the same IPv6 server written with and without brackets is a duplicate", () => {
  const doc = base();
  doc.backends[1].servers = [{ addr: "::1", port: 10002 }, { addr: "[::1]", port: 10002 }];
  assertEquals(
    messageAt(validateConfig(doc), "backends[1].servers[1]"),
    "duplicate server [::1]:10002 in this backend (also servers[0])",
  );
});

Deno.test("schema: hosts equal after normalisation are duplicates", () => {
  const doc = base();
  doc.hosts = [
    { host: "A.test", backend_name: "b0" },
    { host: "b.test", backend_name: "b1" },
    { host: "a.test.", backend_name: "b1" },
  ];
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "hosts[2].host", message: 'duplicate host "a.test" (also hosts[0])' },
  ]);
});

Deno.test("schema: a host naming no backend is refused at its backend_name", () => {
  const doc = base();
  doc.hosts.push({ host: "www.test2.com", backend_name: "nope" });
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "hosts[1].backend_name", message: 'no backend named "nope"' },
  ]);
});

Deno.test("schema: host names with spaces or schemes are refused", () => {
  for (const host of ["", "http://x.com", "x.com:abc", "a b.com", "x/y"]) {
    const doc = base();
    doc.hosts = [{ host, backend_name: "b0" }];
    assert(
      messageAt(validateConfig(doc), "hosts[0].host") !== undefined,
      `host "${host}" accepted`,
    );
  }
});

Deno.test("schema: invalid JSON is one issue at the document root", () => {
  const issues = issuesOf(parseConfig('{"backends": ['));
  assertEquals(issues.length, 1);
  assertEquals(issues[0].path, "");
  assert(issues[0].message.startsWith("invalid JSON"), issues[0].message);
  assertEquals(issuesOf(parseConfig("")).length, 1);
});

Deno.test("schema: every problem is reported at once", () => {
  const doc = {
    backends: [
      { backend_name: "b0", servers: [{ addr: "127.0.0.1", port: 0, weight: 0 }] },
      {
        backend_name: "b1",
        health_check: { type: "udp", interval: -1 },
        servers: [{ addr: "127.0.0.1", port: 70000, extra: true }],
      },
    ],
    hosts: [{ host: "www.test1.com" }],
  };
  const paths = issuesOf(validateConfig(doc)).map((i) => i.path).sort();
  assertEquals(paths, [
    "backends[0].servers[0].port",
    "backends[0].servers[0].weight",
    "backends[1].health_check.interval",
    "backends[1].health_check.type",
    "backends[1].servers[0].extra",
    "backends[1].servers[0].port",
    "hosts[0].backend_name",
  ]);
  // Cross-checks also report every problem, not the first.
  const cross = base();
  cross.backends[1].backend_name = "b0";
  cross.hosts = [
    { host: "x.test", backend_name: "nope" },
    { host: "X.TEST", backend_name: "b0" },
  ];
  assertEquals(issuesOf(validateConfig(cross)).map((i) => i.path), [
    "backends[1].backend_name",
    "hosts[0].backend_name",
    "hosts[1].host",
  ]);
});

Deno.test("schema: strings are trimmed, so ' b0 ' names backend b0", () => {
  const doc = base();
  doc.hosts = [{ host: " www.test1.com ", backend_name: " b0 " }];
  const result = validateConfig(doc);
  assert(result.ok);
  assertEquals(result.config.hosts, [{ host: "www.test1.com", backend_name: "b0" }]);
});

Deno.test("schema: a host may carry a port and a trailing dot, ignored when routing", () => {
  const doc = base();
  doc.hosts = [{ host: "WWW.Test1.com.:8080", backend_name: "b0" }];
  assert(validateConfig(doc).ok);
});

Deno.test("schema: formatIssues prints one line per issue, the root as (document)", () => {
  assertEquals(
    formatIssues([{ path: "", message: "invalid JSON" }, {
      path: "hosts",
      message: "is required",
    }]),
    "  (document): invalid JSON\n  hosts: is required",
  );
});

Deno.test("schema: wildcard hosts are accepted; malformed ones and duplicates are refused", () => {
  const doc = base();
  doc.hosts = [
    { host: "*.example.com", backend_name: "b0" },
    { host: "example.com", backend_name: "b1" },
    { host: "*.A.example.com", backend_name: "b1" },
  ];
  assert(validateConfig(doc).ok);
  doc.hosts.push({ host: "*.EXAMPLE.com.", backend_name: "b1" });
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "hosts[3].host", message: 'duplicate host "*.example.com" (also hosts[0])' },
  ]);
  for (
    const host of ["*", "*.", "a.*.com", "*example.com", "**.example.com", "*.*.com", "x*.com"]
  ) {
    const bad = base();
    bad.hosts = [{ host, backend_name: "b0" }];
    assert(messageAt(validateConfig(bad), "hosts[0].host") !== undefined, `"${host}" accepted`);
  }
});

Deno.test("schema: default_backend must name a backend", () => {
  const doc: Record<string, unknown> = { ...base(), default_backend: "b1" };
  const ok = validateConfig(doc);
  assert(ok.ok);
  assertEquals(ok.config.default_backend, "b1");
  doc.default_backend = "nope";
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "default_backend", message: 'no backend named "nope"' },
  ]);
  doc.default_backend = "";
  assertEquals(messageAt(validateConfig(doc), "default_backend"), "must not be empty");
});

Deno.test("schema: paths take prefixes to existing backends, strip_prefix defaults to false", () => {
  const doc = base();
  doc.hosts[0].paths = [{ prefix: "/api/", backend_name: "b1" }, {
    prefix: "/static",
    backend_name: "b0",
    strip_prefix: true,
  }];
  const ok = validateConfig(doc);
  assert(ok.ok);
  assertEquals(ok.config.hosts[0].paths, [
    { prefix: "/api/", backend_name: "b1", strip_prefix: false },
    { prefix: "/static", backend_name: "b0", strip_prefix: true },
  ]);
  doc.hosts[0].paths = [
    { prefix: "/api", backend_name: "b1" },
    { prefix: "/api/", backend_name: "b0" },
    { prefix: "/x", backend_name: "nope" },
    { prefix: "api", backend_name: "b0" },
    { prefix: "/a?b", backend_name: "b0" },
    { prefix: "/a b", backend_name: "b0" },
    { prefix: "/y", backend_name: "b0", strip_prefix: "yes" },
    { prefix: "/z", backend_name: "b0", weight: 1 },
  ];
  assertEquals(issuesOf(validateConfig(doc)), [
    { path: "hosts[0].paths[3].prefix", message: "must be a path starting with /" },
    { path: "hosts[0].paths[4].prefix", message: "must be a path without ? or #" },
    { path: "hosts[0].paths[5].prefix", message: "must not contain spaces or control characters" },
    { path: "hosts[0].paths[6].strip_prefix", message: "must be true or false" },
    { path: "hosts[0].paths[7].weight", message: "unknown field" },
  ]);
  doc.hosts[0].paths = (doc.hosts[0].paths as unknown[]).slice(0, 3);
  assertEquals(issuesOf(validateConfig(doc)), [
    {
      path: "hosts[0].paths[1].prefix",
      message: 'duplicate prefix "/api" in this host (also paths[0])',
    },
    { path: "hosts[0].paths[2].backend_name", message: 'no backend named "nope"' },
  ]);
});

Deno.test("schema: balancer, hash_on and sticky are checked with their paths", () => {
  const doc = base();
  Object.assign(doc.backends[0], { balancer: "least_conn", sticky: { cookie: "srv" } });
  Object.assign(doc.backends[1], { balancer: "hash", hash_on: "cookie:session" });
  const ok = validateConfig(doc);
  assert(ok.ok, ok.ok ? "" : formatIssues(ok.issues));
  assertEquals(ok.config.backends[0].sticky, { cookie: "srv" });
  const bad = base();
  Object.assign(bad.backends[0], {
    balancer: "random",
    sticky: { cookie: "a b", max_age: 0, path: "/" },
  });
  Object.assign(bad.backends[1], { balancer: "hash" });
  assertEquals(issuesOf(validateConfig(bad)), [
    {
      path: "backends[0].balancer",
      message: 'must be one of "round_robin", "least_conn", "ewma", "hash"',
    },
    {
      path: "backends[0].sticky.cookie",
      message: "must be a cookie name (letters, digits and !#$%&'*+.^_`|~-)",
    },
    { path: "backends[0].sticky.max_age", message: "must be at least 1" },
    { path: "backends[0].sticky.path", message: "unknown field" },
    { path: "backends[1].hash_on", message: 'is required when balancer is "hash"' },
  ]);
  const stray = base();
  Object.assign(stray.backends[0], { hash_on: "uri" });
  Object.assign(stray.backends[1], { balancer: "hash", hash_on: "query:x" });
  assertEquals(issuesOf(validateConfig(stray)), [
    { path: "backends[0].hash_on", message: 'is only for balancer "hash"' },
    {
      path: "backends[1].hash_on",
      message: 'must be "client_ip", "uri", "header:NAME" or "cookie:NAME"',
    },
  ]);
});

Deno.test("schema: length limits of names, hosts, addresses and check paths, at their paths", () => {
  const label = (n: number) => "a".repeat(n);
  // A name of 253 characters made of labels.
  const longHost = [label(63), label(63), label(63), label(61)].join(".");
  const cases: Array<[string, number, (doc: ReturnType<typeof base>, text: string) => void]> = [
    ["backends[0].backend_name", 255, (doc, text) => {
      doc.backends[0].backend_name = text;
      doc.hosts[0].backend_name = text;
    }],
    ["hosts[0].host", 253, (doc, text) => doc.hosts[0].host = text],
    ["backends[1].servers[0].addr", 253, (doc, text) => {
      doc.backends[1].servers = [{ addr: text, port: 10002 }];
    }],
    ["backends[1].health_check.uri", 2048, (doc, text) => {
      doc.backends[1].health_check = { type: "http", uri: "/" + text.slice(1) };
    }],
  ];
  for (const [path, limit, set] of cases) {
    const fitting = base();
    set(fitting, path.endsWith("host") || path.endsWith("addr") ? longHost : label(limit));
    assert(validateConfig(fitting).ok, `${path}: ${limit} characters refused`);
    const over = base();
    set(over, path.endsWith("host") || path.endsWith("addr") ? "b" + longHost : label(limit + 1));
    assertEquals(
      messageAt(validateConfig(over), path),
      `must be at most ${limit} characters`,
      path,
    );
  }
});
