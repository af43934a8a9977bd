import { assert, assertEquals } from "../../tests/_assert.ts";
import { makeCa } from "../../tests/_certs.ts";
import { validateConfig } from "../config/schema.ts";
import type { ParseResult } from "../config/types.ts";
import { CertificateIndex } from "./index.ts";
import { loadCertificates } from "./material.ts";

function withTls(tls: unknown): unknown {
  return {
    backends: [{ backend_name: "b", servers: [] }],
    hosts: [{ host: "a.test", backend_name: "b" }],
    tls,
  };
}

function issues(result: ParseResult): Record<string, string> {
  assert(!result.ok, "expected the config to be refused");
  return Object.fromEntries(result.issues.map((i) => [i.path, i.message]));
}

Deno.test("tls config: files and inline pairs load; the seed document stays valid", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test", "www.a.test"]);
  const b = await ca.issue(["CN=b.test"]);
  const result = validateConfig(withTls({
    certificates: [
      { cert_file: a.certFile, key_file: a.keyFile },
      { cert: b.cert, key: b.key },
    ],
  }));
  assert(result.ok, JSON.stringify(!result.ok && result.issues));
  assertEquals(result.warnings, []);
  const loaded = loadCertificates(result.config.tls!.certificates);
  assertEquals(loaded.certificates.map((c) => [c.source, c.names]), [
    ["file", ["a.test", "www.a.test"]],
    ["inline", ["b.test"]],
  ]);
  assert(validateConfig({ backends: [], hosts: [] }).ok);
});

Deno.test("tls config: every bad certificate is refused with its JSON path", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test"]);
  const b = await ca.issue(["b.test"]);
  const expired = await ca.issue(["old.test"], { days: -1 });
  await Deno.writeTextFile(`${ca.dir}/garbage.pem`, "-----BEGIN CERTIFICATE-----\nnope\n");
  const found = issues(validateConfig(withTls({
    certificates: [
      { cert_file: `${ca.dir}/missing.pem`, key_file: a.keyFile },
      { cert_file: `${ca.dir}/garbage.pem`, key_file: a.keyFile },
      { cert: a.cert, key: b.key },
      { cert: expired.cert, key: expired.key },
      { cert: a.cert, key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" },
    ],
  })));
  assertEquals(
    found["tls.certificates[0].cert_file"],
    `cannot read ${ca.dir}/missing.pem: no such file`,
  );
  assertEquals(found["tls.certificates[1].cert_file"], "is not a PEM certificate");
  assertEquals(
    found["tls.certificates[2].key"],
    "the private key does not belong to the certificate",
  );
  assert(found["tls.certificates[3].cert"].startsWith("the certificate expired on "));
  assertEquals(found["tls.certificates[4].key"], "is not a PEM private key");
  assertEquals(Object.keys(found).length, 5);
});

Deno.test("tls config: structure problems are reported with their paths", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test"]);
  const found = issues(validateConfig(withTls({
    certificates: [
      { cert: a.cert },
      { cert: a.cert, key: a.key, key_file: a.keyFile },
      { cert: "not pem", key: a.key },
    ],
    acme: { hosts: ["*.a.test"], directory: "http://ca.test/dir", email: "nobody" },
  })));
  const both = "must have either cert_file and key_file, or cert and key";
  assertEquals(found["tls.certificates[0]"], both);
  assertEquals(found["tls.certificates[1]"], both);
  assertEquals(found["tls.certificates[2].cert"], "must be PEM text (a certificate)");
  assertEquals(found["tls.acme.hosts[0]"], "must not be a wildcard (HTTP-01 cannot prove one)");
  assertEquals(found["tls.acme.directory"], "must be an https:// URL");
  assertEquals(found["tls.acme.email"], "must be an e-mail address");
});

Deno.test("tls config: the ACME CA file must be readable; redirect_https must be a boolean", () => {
  const found = issues(validateConfig({
    backends: [{ backend_name: "b", servers: [] }],
    hosts: [{ host: "a.test", backend_name: "b", redirect_https: "yes" }],
  }));
  assertEquals(found["hosts[0].redirect_https"], "must be true or false");
  const missingCa = issues(validateConfig(withTls({
    acme: { hosts: "all", ca_cert_file: "/nonexistent/ca.pem" },
  })));
  assertEquals(missingCa["tls.acme.ca_cert_file"], "cannot read /nonexistent/ca.pem: no such file");
});

Deno.test("tls config: a certificate expiring within 7 days is a warning, not an error", async () => {
  await using ca = await makeCa();
  const soon = await ca.issue(["soon.test"], { days: 2 });
  const result = validateConfig(withTls({ certificates: [{ cert: soon.cert, key: soon.key }] }));
  assert(result.ok);
  assertEquals(result.warnings.length, 1);
  assertEquals(result.warnings[0].path, "tls.certificates[0]");
  assert(result.warnings[0].message.includes("soon.test"));
});

Deno.test("certificate index: exact, then wildcard, then longest valid; default first", async () => {
  await using ca = await makeCa();
  const first = await ca.issue(["first.test"]);
  const wild = await ca.issue(["*.a.test"]);
  const exact = await ca.issue(["www.a.test"]);
  const shortLived = await ca.issue(["b.test"], { days: 3 });
  const longLived = await ca.issue(["b.test"], { days: 20 });
  const loaded = loadCertificates(
    [first, wild, exact, shortLived, longLived].map((p) => ({ cert: p.cert, key: p.key })),
  );
  assertEquals(loaded.issues, []);
  const [c0, c1, c2, , c4] = loaded.certificates;
  const index = new CertificateIndex(loaded.certificates);
  assertEquals(index.resolve("www.a.test"), c2);
  assertEquals(index.resolve("WWW.A.TEST."), c2);
  assertEquals(index.resolve("api.a.test"), c1);
  assertEquals(index.resolve("x.api.a.test"), c0, "a wildcard covers one label only");
  assertEquals(index.resolve("a.test"), c0);
  assertEquals(index.resolve("b.test"), c4);
  assertEquals(index.resolve(""), c0);
  assertEquals(index.resolve("unknown.test"), c0);
  assert(index.covers("api.a.test"));
  assert(!index.covers("unknown.test"));
});
