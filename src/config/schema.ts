/**
 * Validation of the configuration document with valibot, plus the cross-checks a schema cannot
 * express (unique names, unique hosts, hosts pointing at existing backends).
 *
 * Unknown fields are refused: a misspelt `wieght` silently ignored would route traffic in a way
 * nobody asked for, which is worse than a refused POST.
 *
 * @module
 */
import { formatHostPort } from "../address.ts";
import * as v from "valibot";
import type { Config, ConfigIssue, ParseResult } from "./types.ts";
import { BALANCERS, isToken } from "../balance/selector.ts";
import { parseHashOn } from "../balance/hash.ts";
import { normalizeHost } from "./host.ts";
import { normalizePrefix } from "./prefix_table.ts";
import { type ExpiredCertificates, loadCertificates, readConfigFile } from "../tls/material.ts";
import { describeCertificate } from "../tls/certificate.ts";

/** Defaults applied to an `health_check` object's absent fields. */
export const HEALTH_CHECK_DEFAULTS = {
  enable: true,
  type: "tcp",
  interval: 3,
  timeout: 2,
  success: 2,
  fail: 3,
} as const;

/** Defaults of passive detection when `passive_check` is absent (nginx's max_fails/fail_timeout). */
export const PASSIVE_CHECK_DEFAULTS = { max_fails: 1, fail_timeout: 10 } as const;

const positiveSeconds = v.pipe(
  v.number("must be a number of seconds"),
  v.finite("must be a finite number"),
  v.gtValue(0, "must be greater than 0"),
  v.maxValue(86_400, "must be at most 86400 seconds"),
);
const threshold = v.pipe(
  v.number("must be a whole number"),
  v.integer("must be a whole number"),
  v.minValue(1, "must be at least 1"),
  v.maxValue(1000, "must be at most 1000"),
);
const nonEmptyName = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.minLength(1, "must not be empty"),
  v.maxLength(255, "must be at most 255 characters"),
);

const HOST_NAME = /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/;
const HOST_PORT = /^[^:]*(:\d{1,5})?$/;
/** A host name, or `*.` and a host name (a wildcard: every name under it). */
function isHostPattern(h: string): boolean {
  // Only a numeric port may follow a colon: normalizeHost would turn `http://x.com` into `http`.
  if (!HOST_PORT.test(h)) return false;
  const name = normalizeHost(h);
  return HOST_NAME.test(name.startsWith("*.") ? name.slice(2) : name);
}
const hostName = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.minLength(1, "must not be empty"),
  v.maxLength(253, "must be at most 253 characters"),
  v.check(
    isHostPattern,
    "must be a host name like www.example.com, or *.example.com for every name under one, " +
      "without port, scheme or spaces",
  ),
);

const ADDR_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const IPV6 = /^\[?([0-9a-fA-F:.]+)\]?$/;

/**
 * A host name, an IPv4 address or a whole IPv6 address (brackets optional). A colon only ever
 * belongs to IPv6: `127.0.0.1:8080` (a port in addr) or `[::1` would compile to a broken origin.
 */
function isAddr(text: string): boolean {
  if (!text.includes(":") && !text.includes("[")) return ADDR_NAME.test(text);
  const match = IPV6.exec(text);
  if (match === null || text.startsWith("[") !== text.endsWith("]")) return false;
  try {
    new URL(`http://[${match[1]}]/`); // The WHATWG parser checks the IPv6 grammar.
    return true;
  } catch {
    return false;
  }
}
const addr = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.minLength(1, "must not be empty"),
  v.maxLength(253, "must be at most 253 characters"),
  v.check(isAddr, "must be an IP address or host name, without scheme or port"),
);

/** A path (and maybe query) of printable ASCII, at most `max` characters. */
const pathOf = (max: number) =>
  v.pipe(
    v.string("must be a string"),
    v.startsWith("/", "must be a path starting with /"),
    v.maxLength(max, `must be at most ${max} characters`),
    v.regex(/^[\x21-\x7e]+$/, "must not contain spaces or control characters"),
  );
const uri = pathOf(2048);

const healthCheck = v.pipe(
  v.strictObject({
    enable: v.optional(v.boolean("must be true or false"), HEALTH_CHECK_DEFAULTS.enable),
    type: v.optional(
      v.picklist(["tcp", "http"], 'must be "tcp" or "http"'),
      HEALTH_CHECK_DEFAULTS.type,
    ),
    uri: v.optional(uri),
    interval: v.optional(positiveSeconds, HEALTH_CHECK_DEFAULTS.interval),
    timeout: v.optional(positiveSeconds, HEALTH_CHECK_DEFAULTS.timeout),
    success: v.optional(threshold, HEALTH_CHECK_DEFAULTS.success),
    fail: v.optional(threshold, HEALTH_CHECK_DEFAULTS.fail),
  }, "must be an object"),
  // partialCheck, not check: it also runs when other fields of the object are invalid, so a
  // missing uri is reported with them rather than on the next attempt.
  v.forward(
    v.partialCheck(
      [["type"], ["uri"]],
      (hc) => hc.type !== "http" || hc.uri !== undefined,
      'is required when type is "http"',
    ),
    ["uri"],
  ),
);

const passiveCheck = v.strictObject({
  max_fails: v.optional(
    v.pipe(
      v.number("must be a whole number"),
      v.integer("must be a whole number"),
      v.minValue(0, "must be 0 (off) or more"),
      v.maxValue(1000, "must be at most 1000"),
    ),
    PASSIVE_CHECK_DEFAULTS.max_fails,
  ),
  fail_timeout: v.optional(positiveSeconds, PASSIVE_CHECK_DEFAULTS.fail_timeout),
}, "must be an object");

const server = v.strictObject({
  addr,
  port: v.pipe(
    v.number("must be a whole number"),
    v.integer("must be a whole number"),
    v.minValue(1, "must be between 1 and 65535"),
    v.maxValue(65535, "must be between 1 and 65535"),
  ),
  weight: v.optional(
    v.pipe(
      v.number("must be a whole number"),
      v.integer("must be a whole number"),
      v.minValue(1, "must be at least 1"),
      v.maxValue(10_000, "must be at most 10000"),
    ),
    1,
  ),
}, "must be an object");

const sticky = v.strictObject({
  cookie: v.pipe(
    v.string("must be a string"),
    v.minLength(1, "must not be empty"),
    v.maxLength(128, "must be at most 128 characters"),
    // RFC 6265 cookie names are RFC 9110 `token`s.
    v.check(isToken, "must be a cookie name (letters, digits and !#$%&'*+.^_`|~-)"),
  ),
  max_age: v.optional(v.pipe(
    v.number("must be a whole number of seconds"),
    v.integer("must be a whole number of seconds"),
    v.minValue(1, "must be at least 1"),
    v.maxValue(400 * 86_400, "must be at most 34560000 (400 days)"),
  )),
}, "must be an object");

const backend = v.pipe(
  v.strictObject({
    backend_name: nonEmptyName,
    health_check: v.optional(healthCheck),
    passive_check: v.optional(passiveCheck),
    servers: v.array(server, "must be an array"),
    balancer: v.optional(
      v.picklist(BALANCERS, `must be one of ${BALANCERS.map((b) => `"${b}"`).join(", ")}`),
    ),
    hash_on: v.optional(v.pipe(
      v.string("must be a string"),
      v.check(
        (text) => parseHashOn(text) !== undefined,
        'must be "client_ip", "uri", "header:NAME" or "cookie:NAME"',
      ),
    )),
    sticky: v.optional(sticky),
  }, "must be an object"),
  v.forward(
    v.partialCheck(
      [["balancer"], ["hash_on"]],
      (b) => b.balancer !== "hash" || b.hash_on !== undefined,
      'is required when balancer is "hash"',
    ),
    ["hash_on"],
  ),
  v.forward(
    v.partialCheck(
      [["balancer"], ["hash_on"]],
      (b) => b.balancer === "hash" || b.hash_on === undefined,
      'is only for balancer "hash"',
    ),
    ["hash_on"],
  ),
);

const pathRoute = v.strictObject({
  prefix: v.pipe(
    pathOf(1024),
    v.check((p) => !p.includes("?") && !p.includes("#"), "must be a path without ? or #"),
  ),
  backend_name: nonEmptyName,
  strip_prefix: v.optional(v.boolean("must be true or false"), false),
}, "must be an object");

const host = v.strictObject({
  host: hostName,
  backend_name: nonEmptyName,
  paths: v.optional(v.array(pathRoute, "must be an array")),
  redirect_https: v.optional(v.boolean("must be true or false")),
}, "must be an object");

/** Let's Encrypt's production directory, the default of `tls.acme.directory`. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

const filePath = v.pipe(
  v.string("must be a file path"),
  v.minLength(1, "must not be empty"),
  v.maxLength(4096, "must be at most 4096 characters"),
);
const pem = (what: string) =>
  v.pipe(
    v.string(`must be PEM text (${what})`),
    v.maxLength(1 << 20, "must be at most 1 MiB"),
    v.includes("-----BEGIN ", `must be PEM text (${what})`),
  );

const certificate = v.pipe(
  v.strictObject({
    cert_file: v.optional(filePath),
    key_file: v.optional(filePath),
    cert: v.optional(pem("a certificate")),
    key: v.optional(pem("a private key")),
  }, "must be an object"),
  v.check(
    (c) => {
      const files = c.cert_file !== undefined && c.key_file !== undefined;
      const inline = c.cert !== undefined && c.key !== undefined;
      const any = [c.cert_file, c.key_file, c.cert, c.key].filter((x) => x !== undefined).length;
      return (files || inline) && any === 2;
    },
    "must have either cert_file and key_file, or cert and key",
  ),
);

const acmeHost = v.pipe(
  hostName,
  v.check((h) => !h.includes("*"), "must not be a wildcard (HTTP-01 cannot prove one)"),
);

const acme = v.strictObject({
  email: v.optional(
    v.pipe(
      v.string("must be an e-mail address"),
      v.maxLength(254, "must be at most 254 characters"),
      v.regex(/^[^\s@]+@[^\s@]+$/, "must be an e-mail address"),
    ),
  ),
  directory: v.optional(
    v.pipe(
      v.string("must be a URL"),
      v.check((u) => URL.canParse(u) && u.startsWith("https://"), "must be an https:// URL"),
    ),
    LETS_ENCRYPT_DIRECTORY,
  ),
  ca_cert_file: v.optional(filePath),
  hosts: v.union(
    [v.literal("all"), v.array(acmeHost, 'must be an array of host names or "all"')],
    'must be an array of host names or "all"',
  ),
}, "must be an object");

const tls = v.strictObject({
  certificates: v.optional(v.array(certificate, "must be an array"), []),
  acme: v.optional(acme),
}, "must be an object");

/** The valibot schema of the whole document (structure, types and ranges). */
export const ConfigSchema = v.strictObject({
  /** Editors' pointer to the JSON Schema (`dynlb schema`): accepted and ignored. */
  $schema: v.optional(v.string("must be a string")),
  backends: v.array(backend, "must be an array"),
  hosts: v.array(host, "must be an array"),
  default_backend: v.optional(nonEmptyName),
  tls: v.optional(tls),
}, "must be an object with backends and hosts");

/**
 * Validates an already-parsed JSON value as a configuration document.
 *
 * Every problem is reported, each with its JSON path; the returned config has defaults applied
 * and strings trimmed.
 *
 * @example
 * ```ts
 * const result = validateConfig({ backends: [], hosts: [] });
 * if (!result.ok) console.error(result.issues);
 * ```
 */
export function validateConfig(
  input: unknown,
  options: { expired?: ExpiredCertificates } = {},
): ParseResult {
  const parsed = v.safeParse(ConfigSchema, input, { abortEarly: false });
  if (!parsed.success) {
    return { ok: false, issues: parsed.issues.map(toConfigIssue) };
  }
  const config = parsed.output as Config;
  const issues = crossCheck(config);
  const warnings: ConfigIssue[] = [];
  if (config.tls !== undefined) checkTls(config, issues, warnings, options.expired ?? "refuse");
  return issues.length > 0
    ? { ok: false, issues }
    : { ok: true, config, document: input, warnings };
}

/**
 * Parses JSON text and validates it; a syntax error is one issue at the document's root.
 *
 * @example
 * ```ts
 * const result = parseConfig(await Deno.readTextFile("config.json"));
 * ```
 */
export function parseConfig(
  text: string,
  options: { expired?: ExpiredCertificates } = {},
): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      issues: [{ path: "", message: `invalid JSON: ${(err as Error).message}` }],
    };
  }
  return validateConfig(json, options);
}

/**
 * Formats issues one per line, as the CLI and the logs print them.
 *
 * @example
 * ```ts
 * formatIssues([{ path: "hosts[0].host", message: "must not be empty" }]);
 * // "  hosts[0].host: must not be empty"
 * ```
 */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `  ${i.path || "(document)"}: ${i.message}`).join("\n");
}

function crossCheck(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const backendIndex = new Map<string, number>();
  config.backends.forEach((b, i) => {
    const first = backendIndex.get(b.backend_name);
    if (first !== undefined) {
      issues.push({
        path: `backends[${i}].backend_name`,
        message: `duplicate backend_name "${b.backend_name}" (also backends[${first}])`,
      });
    } else {
      backendIndex.set(b.backend_name, i);
    }
    const seen = new Map<string, number>();
    b.servers.forEach((s, j) => {
      // `::1` and `[::1]` (or `Api` and `api`) are one server: compare what is connected to.
      const addr = s.addr.toLowerCase().replace(/^\[(.*)\]$/, "$1");
      const key = formatHostPort(addr, s.port);
      const firstServer = seen.get(key);
      if (firstServer !== undefined) {
        issues.push({
          path: `backends[${i}].servers[${j}]`,
          message: `duplicate server ${key} in this backend (also servers[${firstServer}])`,
        });
      } else {
        seen.set(key, j);
      }
    });
  });
  const hostIndex = new Map<string, number>();
  config.hosts.forEach((h, i) => {
    const name = normalizeHost(h.host);
    const first = hostIndex.get(name);
    if (first !== undefined) {
      issues.push({
        path: `hosts[${i}].host`,
        message: `duplicate host "${name}" (also hosts[${first}])`,
      });
    } else {
      hostIndex.set(name, i);
    }
    if (!backendIndex.has(h.backend_name)) {
      issues.push({
        path: `hosts[${i}].backend_name`,
        message: `no backend named "${h.backend_name}"`,
      });
    }
    const prefixIndex = new Map<string, number>();
    h.paths?.forEach((p, j) => {
      const prefix = normalizePrefix(p.prefix);
      const firstPrefix = prefixIndex.get(prefix);
      if (firstPrefix !== undefined) {
        issues.push({
          path: `hosts[${i}].paths[${j}].prefix`,
          message: `duplicate prefix "${prefix}" in this host (also paths[${firstPrefix}])`,
        });
      } else {
        prefixIndex.set(prefix, j);
      }
      if (!backendIndex.has(p.backend_name)) {
        issues.push({
          path: `hosts[${i}].paths[${j}].backend_name`,
          message: `no backend named "${p.backend_name}"`,
        });
      }
    });
  });
  if (config.default_backend !== undefined && !backendIndex.has(config.default_backend)) {
    issues.push({
      path: "default_backend",
      message: `no backend named "${config.default_backend}"`,
    });
  }
  return issues;
}

/** Certificates must load (files readable, PEM valid, key matching, not expired). */
function checkTls(
  config: Config,
  issues: ConfigIssue[],
  warnings: ConfigIssue[],
  expired: ExpiredCertificates,
): void {
  const loaded = loadCertificates(config.tls!.certificates, undefined, undefined, expired);
  issues.push(...loaded.issues);
  warnings.push(...loaded.warnings);
  const caFile = config.tls!.acme?.ca_cert_file;
  if (caFile !== undefined) {
    const path = "tls.acme.ca_cert_file";
    const text = readConfigFile(caFile, path, issues);
    if (text !== undefined) {
      try {
        describeCertificate(text);
      } catch {
        issues.push({ path, message: `${caFile} is not a PEM certificate` });
      }
    }
  }
}

function toConfigIssue(issue: v.BaseIssue<unknown>): ConfigIssue {
  let path = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    path += typeof key === "number" ? `[${key}]` : path === "" ? String(key) : `.${String(key)}`;
  }
  // strictObject reports an unknown key as a value expected to be `never`.
  if (issue.expected === "never" && issue.type === "strict_object") {
    return { path, message: "unknown field" };
  }
  if (issue.received === "undefined" && issue.kind === "schema") {
    return { path, message: "is required" };
  }
  return { path, message: issue.message };
}
