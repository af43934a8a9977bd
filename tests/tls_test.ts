/**
 * HTTPS end to end: dynlb as a subprocess with `--listen-tls`, certificates made by a test CA
 * with openssl, clients that check the chain (openssl s_client, curl --cacert).
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { makeCa, type TestPair } from "./_certs.ts";
import { eventually, get, postConfig, startDynlb } from "./_dynlb.ts";
import { curlHttps, handshake, NoCertificateError } from "./_tls.ts";

function tlsPort(lb: { tls?: string }): number {
  assert(lb.tls !== undefined, "dynlb did not report an https listener");
  return Number(lb.tls.slice(lb.tls.lastIndexOf(":") + 1));
}

function withCertificates(
  config: { backends: unknown[]; hosts: unknown[] },
  certificates: unknown[],
): unknown {
  return { ...config, tls: { certificates } };
}

const files = (p: TestPair) => ({ cert_file: p.certFile, key_file: p.keyFile });

Deno.test("https: requests are proxied with X-Forwarded-Proto https; keys never shown", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test"]);
  await using backend = await startBackend("a");
  const config = withCertificates(configOf({ "a.test": [{ port: backend.port }] }), [
    { cert: a.cert, key: a.key },
  ]);
  await using lb = await startDynlb([
    "--config-file",
    await configFile(config),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  const response = await curlHttps(port, "a.test", "/x", ca.certFile);
  assertEquals([response.status, response.body], [200, "a"], response.error);
  const seen = backend.seen.at(-1)!;
  assertEquals(seen.headers.get("x-forwarded-proto"), "https");
  assertEquals(seen.headers.get("host"), `a.test:${port}`);
  // Plain HTTP still says http.
  assertEquals((await get(lb, "a.test")).status, 200);
  assertEquals(backend.seen.at(-1)!.headers.get("x-forwarded-proto"), "http");

  const shown = await (await fetch(lb.admin + "/config")).json();
  assertEquals(shown.config.tls.certificates[0].key, "<redacted>");
  assertEquals(shown.config.tls.certificates[0].cert, a.cert);
  assert(!JSON.stringify(shown).includes("PRIVATE KEY"));
  assert(!lb.logs().includes("PRIVATE KEY"), "a key reached the log");
  const history = await (await fetch(lb.admin + "/config/history")).json();
  const recorded = await fetch(`${lb.admin}/config/history/${history.history[0].hash}`);
  const recordedText = await recorded.text();
  assertEquals(recorded.status, 200, recordedText);
  assertEquals(JSON.parse(recordedText).tls.certificates[0].key, "<redacted>");
  assert(!recordedText.includes("PRIVATE KEY"), "the history shows a key");

  const listing = await (await fetch(lb.admin + "/certificates")).json();
  assertEquals(listing.certificates.length, 1);
  const [entry] = listing.certificates;
  assertEquals(entry.names, ["a.test"]);
  assertEquals(entry.source, "inline");
  assertEquals(entry.issuer, "CN=dynlb test CA");
  const { cert } = await handshake(port, "a.test", ca.certFile);
  assertEquals(entry.not_after, new Date(cert.validTo).toISOString());
});

Deno.test("https: an invalid certificate is refused with its JSON path and changes nothing", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test"]);
  const b = await ca.issue(["b.test"]);
  await using backend = await startBackend("a");
  const routes = configOf({ "a.test": [{ port: backend.port }] });
  await using lb = await startDynlb([
    "--config-file",
    await configFile(withCertificates(routes, [files(a)])),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const before = await (await fetch(lb.admin + "/config")).json();
  const refused = await postConfig(lb, withCertificates(routes, [{ cert: a.cert, key: b.key }]));
  assertEquals(refused.status, 400);
  assertEquals(refused.body.issues, [{
    path: "tls.certificates[0].key",
    message: "the private key does not belong to the certificate",
  }]);
  const missing = await postConfig(
    lb,
    withCertificates(routes, [{ cert_file: `${ca.dir}/nope.pem`, key_file: a.keyFile }]),
  );
  assertEquals(missing.status, 400);
  assertEquals(
    (missing.body.issues as { path: string }[])[0].path,
    "tls.certificates[0].cert_file",
  );
  const after = await (await fetch(lb.admin + "/config")).json();
  assertEquals(after.version, before.version);
  const { cert } = await handshake(tlsPort(lb), "a.test", ca.certFile);
  assertEquals(cert.subjectAltName, "DNS:a.test");
});

Deno.test("https: a certificate file replaced on disk is served on the next handshake", async () => {
  await using ca = await makeCa();
  const file = `${ca.dir}/live.pem`;
  const first = await ca.issue(["a.test"], { file });
  await using backend = await startBackend("a");
  await using lb = await startDynlb([
    "--config-file",
    await configFile(
      withCertificates(configOf({ "a.test": [{ port: backend.port }] }), [files(first)]),
    ),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  const before = await handshake(port, "a.test", ca.certFile);
  assert(before.verified, before.output);
  assertEquals(before.cert.fingerprint256, await fingerprintOf(first));
  // A renewal: a new pair written over the same files (key first, as certbot's symlinks switch
  // both at once, a mismatch in between is logged and skipped).
  const second = await ca.issue(["a.test", "www.a.test"], { file: `${ca.dir}/next.pem` });
  await Deno.writeTextFile(`${ca.dir}/live.pem.tmp`, second.cert);
  await Deno.writeTextFile(`${ca.dir}/live.pem.key.tmp`, second.key);
  await Deno.rename(`${ca.dir}/live.pem.key.tmp`, first.keyFile);
  await Deno.rename(`${ca.dir}/live.pem.tmp`, first.certFile);
  const secondPrint = await fingerprintOf(second);
  await eventually(
    async () => {
      try {
        return (await handshake(port, "a.test", ca.certFile)).cert.fingerprint256 === secondPrint;
      } catch (err) {
        // The switch re-opens the TLS port: a connection still queued on the old listener when
        // it closes is reset by the kernel (README, TLS limits). Only while waiting for it.
        if (err instanceof NoCertificateError) return false;
        throw err;
      }
    },
    10_000,
    "the new certificate",
  );
  const www = await handshake(port, "www.a.test", ca.certFile);
  assert(www.verified, "the new certificate covers its new name");
  const response = await curlHttps(port, "a.test", "/", ca.certFile);
  assertEquals(response.status, 200, response.error);
});

async function fingerprintOf(pair: TestPair): Promise<string> {
  const { X509Certificate } = await import("node:crypto");
  return new X509Certificate(pair.cert).fingerprint256;
}

Deno.test("redirect_https: plain HTTP gets a 308 to https, the ACME challenge path does not", async () => {
  await using ca = await makeCa();
  const a = await ca.issue(["a.test"]);
  await using backend = await startBackend("a");
  const routes = configOf({
    "a.test": [{ port: backend.port }],
    "b.test": [{ port: backend.port }],
  });
  (routes.hosts[0] as Record<string, unknown>).redirect_https = true;
  await using lb = await startDynlb([
    "--config-file",
    await configFile(withCertificates(routes, [{ cert: a.cert, key: a.key }])),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  const redirected = await get(lb, "A.test:8080", "/p?q=1", { redirect: "manual" });
  assertEquals(redirected.status, 308);
  assertEquals(redirected.headers.get("location"), `https://a.test:${port}/p?q=1`);
  assertEquals((await get(lb, "b.test", "/p")).status, 200, "other hosts are not redirected");
  // An unknown token goes on to routing (a backend's own ACME client), never to the redirect.
  const challenge = await get(lb, "a.test", "/.well-known/acme-challenge/abcdefghijklmnopqrstuv");
  assertEquals([challenge.status, challenge.body], [200, "a"]);
  assertEquals(
    backend.seen.at(-1)!.url.endsWith("/.well-known/acme-challenge/abcdefghijklmnopqrstuv"),
    true,
  );
  const followed = await curlHttps(port, "a.test", "/p", ca.certFile);
  assertEquals(followed.status, 200);
});

Deno.test("https: SNI picks the exact name, then a wildcard, then the first certificate", async () => {
  await using ca = await makeCa();
  const first = await ca.issue(["first.test"]);
  const wildcard = await ca.issue(["*.w.test"]);
  const exact = await ca.issue(["a.w.test", "a.test"]);
  await using backend = await startBackend("a");
  const routes = configOf({
    "a.test": [{ port: backend.port }],
    "b.w.test": [{ port: backend.port }],
  });
  await using lb = await startDynlb([
    "--config-file",
    await configFile(withCertificates(routes, [files(first), files(wildcard), files(exact)])),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  const served = async (name: string | null) => {
    const { cert, verified, output } = await handshake(port, name, ca.certFile);
    // Names no certificate has get the default one, which does not verify for them.
    if (name !== null && !/unknown|c\.d\./.test(name)) assert(verified, `${name}: ${output}`);
    return cert.fingerprint256;
  };
  const print = async (pair: TestPair) => await fingerprintOf(pair);
  assertEquals(await served("a.w.test"), await print(exact), "exact beats wildcard");
  assertEquals(await served("A.TEST"), await print(exact), "names are case-insensitive");
  assertEquals(await served("b.w.test"), await print(wildcard));
  assertEquals(await served(null), await print(first), "no SNI: the first certificate");
  assertEquals(await served("c.d.w.test"), await print(first), "a wildcard covers one label");
  assertEquals(await served("unknown.test"), await print(first));
  for (const name of ["a.test", "b.w.test"]) {
    const response = await curlHttps(port, name, "/", ca.certFile);
    assertEquals([response.status, response.body], [200, "a"], response.error);
  }
});

Deno.test("https: a new config's certificates serve new handshakes, open connections stay", async () => {
  await using ca = await makeCa();
  const one = await ca.issue(["a.test"]);
  const two = await ca.issue(["a.test", "b.test"]);
  await using backend = await startBackend("a");
  const routes = configOf({ "a.test": [{ port: backend.port }] });
  await using lb = await startDynlb([
    "--config-file",
    await configFile(withCertificates(routes, [files(one)])),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  // A keep-alive connection opened before the change.
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = await Deno.startTls(tcp, { hostname: "a.test", caCerts: [ca.cert] });
  const ask = async () => {
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  };
  assert((await ask()).startsWith("HTTP/1.1 200"));
  assertEquals((await postConfig(lb, withCertificates(routes, [files(two)]))).status, 200);
  const twoPrint = await fingerprintOf(two);
  await eventually(
    async () => (await handshake(port, "a.test", ca.certFile)).cert.fingerprint256 === twoPrint,
    5_000,
    "the new certificate",
  );
  assert((await ask()).startsWith("HTTP/1.1 200"), "the open connection still works");
  conn.close();
});

Deno.test("https on the serve listener: the first certificate for every name, HTTP/2 by ALPN", async () => {
  await using ca = await makeCa();
  const first = await ca.issue(["a.test"]);
  const other = await ca.issue(["b.test"]);
  await using backend = await startBackend("a");
  const routes = configOf({ "a.test": [{ port: backend.port }] });
  await using lb = await startDynlb([
    "--listener",
    "serve",
    "--config-file",
    await configFile(withCertificates(routes, [files(first), files(other)])),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  const port = tlsPort(lb);
  const firstPrint = await fingerprintOf(first);
  assertEquals((await handshake(port, "b.test", ca.certFile)).cert.fingerprint256, firstPrint);
  const h2 = await curlHttps(port, "a.test", "/", ca.certFile, ["--http2"]);
  assertEquals([h2.status, h2.version, h2.body], [200, "2", "a"], h2.error);
  assertEquals(backend.seen.at(-1)!.headers.get("host"), `a.test:${port}`);
  assertEquals(backend.seen.at(-1)!.headers.get("x-forwarded-proto"), "https");
});

Deno.test("https: a stored config whose certificate expired still starts; a POST of it is refused", async () => {
  await using ca = await makeCa();
  const valid = await ca.issue(["a.test"]);
  const expired = await ca.issue(["old.test"], { days: -1 });
  await using backend = await startBackend("a");
  const config = withCertificates(configOf({ "a.test": [{ port: backend.port }] }), [
    files(valid),
    files(expired),
  ]);
  // Expired after it was saved (certbot failed): a restart must not take every host down.
  await using lb = await startDynlb([
    "--config-file",
    await configFile(config),
    "--listen-tls",
    "127.0.0.1:0",
  ]);
  await lb.waitForLog("certificate expired");
  const response = await curlHttps(tlsPort(lb), "a.test", "/", ca.certFile);
  assertEquals(response.status, 200, response.error);
  const refused = await postConfig(lb, config);
  assertEquals(refused.status, 400);
  const issues = refused.body.issues as { path: string; message: string }[];
  assertEquals(issues[0].path, "tls.certificates[1].cert_file");
  assert(issues[0].message.startsWith("the certificate expired on "), issues[0].message);
});
