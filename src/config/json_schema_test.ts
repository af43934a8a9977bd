import { Ajv } from "ajv";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { configOf } from "../../tests/_backend.ts";
import { configJsonSchema } from "./json_schema.ts";
import { validateConfig } from "./schema.ts";

const validate = new Ajv({ allErrors: true, strict: false }).compile(configJsonSchema());
const seed = JSON.parse(await Deno.readTextFile(new URL("../../config.json", import.meta.url)));

/** Documents dynlb accepts: the seed, the tests' shapes, and every optional field in use. */
const VALID: Record<string, unknown> = {
  seed: seed,
  "seed with $schema": { $schema: "./config.schema.json", ...seed },
  empty: { backends: [], hosts: [] },
  "tests' configOf": configOf({ "a.test": [{ port: 1 }, { port: 2, weight: 3 }], "b.test": [] }),
  "every field": {
    backends: [{
      backend_name: "api",
      health_check: { enable: true, type: "http", uri: "/ping", interval: 0.5, timeout: 1 },
      passive_check: { max_fails: 0, fail_timeout: 30 },
      balancer: "hash",
      hash_on: "header:x-user",
      servers: [{ addr: "::1", port: 8080, weight: 10_000 }, { addr: "app.internal", port: 1 }],
    }, {
      backend_name: "web",
      balancer: "least_conn",
      sticky: { cookie: "lb", max_age: 3600 },
      health_check: {},
      passive_check: {},
      servers: [{ addr: "[::1]", port: 65535 }],
    }],
    hosts: [
      { host: "*.example.com", backend_name: "web" },
      {
        host: "api.example.com:8080",
        backend_name: "web",
        paths: [{ prefix: "/v1/", backend_name: "api", strip_prefix: true }],
      },
    ],
    default_backend: "web",
  },
  tls: {
    backends: [{ backend_name: "web", servers: [{ addr: "127.0.0.1", port: 8080 }] }],
    hosts: [{ host: "www.example.com", backend_name: "web" }],
    tls: {
      // Certificates must exist to validate; their structure is covered by the invalid cases.
      certificates: [],
      acme: { email: "ops@example.com", hosts: ["www.example.com"] },
    },
  },
  "acme for every host": {
    backends: [],
    hosts: [],
    tls: { acme: { hosts: "all", directory: "https://acme.example/dir" } },
  },
};

/** Documents with structural faults both must refuse. */
const INVALID: Record<string, unknown> = {
  "not an object": [],
  "no hosts": { backends: [] },
  "unknown top-level field": { backends: [], hosts: [], extra: 1 },
  "misspelt weight": {
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 1, wieght: 2 }] }],
    hosts: [],
  },
  "port out of range": {
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 70000 }] }],
    hosts: [],
  },
  "fractional weight": {
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 1, weight: 1.5 }] }],
    hosts: [],
  },
  "port as text": {
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: "80" }] }],
    hosts: [],
  },
  "unknown check type": {
    backends: [{ backend_name: "b", health_check: { type: "udp" }, servers: [] }],
    hosts: [],
  },
  "zero interval": {
    backends: [{ backend_name: "b", health_check: { interval: 0 }, servers: [] }],
    hosts: [],
  },
  "host without backend_name": { backends: [], hosts: [{ host: "x.test" }] },
  "unknown balancer": {
    backends: [{ backend_name: "b", balancer: "random", servers: [] }],
    hosts: [],
  },
  "$schema not a string": { $schema: 1, backends: [], hosts: [] },
  "unknown tls field": { backends: [], hosts: [], tls: { certs: [] } },
  "certificate without key": {
    backends: [],
    hosts: [],
    tls: { certificates: [{ cert_file: "/a.pem", kee_file: "/a.key" }] },
  },
  "acme hosts neither a list nor all": {
    backends: [],
    hosts: [],
    tls: { acme: { hosts: "some" } },
  },
};

Deno.test("json schema: every config dynlb accepts passes it, $schema included", () => {
  for (const [name, doc] of Object.entries(VALID)) {
    assert(
      validateConfig(doc).ok,
      `dynlb refuses "${name}": ${JSON.stringify(validateConfig(doc))}`,
    );
    assert(validate(doc), `schema refuses "${name}": ${JSON.stringify(validate.errors)}`);
  }
});

Deno.test("json schema: structural faults fail it as they fail dynlb", () => {
  for (const [name, doc] of Object.entries(INVALID)) {
    assertEquals(validateConfig(doc).ok, false, `dynlb accepts "${name}"`);
    assertEquals(validate(doc), false, `schema accepts "${name}"`);
  }
});

Deno.test("json schema: draft-07, closed objects, defaults documented", () => {
  // deno-lint-ignore no-explicit-any
  const schema = configJsonSchema() as Record<string, any>;
  assertEquals(schema.$schema, "http://json-schema.org/draft-07/schema#");
  assertEquals(schema.additionalProperties, false);
  assertEquals(schema.required, ["backends", "hosts"]);
  const server = schema.properties.backends.items.properties.servers.items;
  assertEquals(server.properties.weight.default, 1);
  assertEquals(server.required, ["addr", "port"]);
});
