/**
 * Automatic certificates end to end: dynlb subprocesses, Debian's pebble (a real RFC 8555 CA)
 * with pebble-challtestsrv as its DNS, HTTP-01 validated on dynlb's plain listener. Nothing here
 * reaches a public CA.
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { eventually, postConfig, startDynlb } from "./_dynlb.ts";
import { startPebble } from "./_pebble.ts";
import { startRedis } from "./_redis.ts";
import { curlHttps, handshake } from "./_tls.ts";

function portOf(url: string): number {
  return Number(url.slice(url.lastIndexOf(":") + 1));
}

interface Listing {
  names: string[];
  source: string;
  state?: string;
  issuer: string | null;
  not_after: string | null;
  last_error?: string;
}

async function certificates(lb: { admin: string }): Promise<Listing[]> {
  return (await (await fetch(lb.admin + "/certificates")).json()).certificates;
}

Deno.test("acme: a host gets a certificate from the CA, verified against its root, and renewed without a dropped request", async () => {
  await using backend = await startBackend("a");
  const routes = configOf({ "a.test": [{ port: backend.port }] });
  const dataDir = await Deno.makeTempDir({ prefix: "dynlb-acme-" });
  await using lb = await startDynlb([
    "--config-file",
    await configFile(routes),
    "--listen-tls",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
  ]);
  // pebble validates HTTP-01 on dynlb's plain listener; 24-second certificates are renewed
  // after 16 seconds (two thirds), leaving a busy machine 8 seconds to order the next one.
  await using pebble = await startPebble({ httpPort: portOf(lb.proxy), validitySeconds: 24 });
  const rootFile = `${dataDir}/pebble-root.pem`;
  await Deno.writeTextFile(rootFile, await pebble.root());
  try {
    const posted = await postConfig(lb, {
      ...routes,
      tls: {
        acme: {
          email: "ops@a.test",
          directory: pebble.directory,
          ca_cert_file: pebble.caCertFile,
          hosts: "all",
        },
      },
    });
    assertEquals(posted.status, 200, JSON.stringify(posted.body));
    await eventually(
      async () => (await certificates(lb))[0]?.state === "valid",
      45_000,
      "an ACME certificate",
    );
    const [listed] = await certificates(lb);
    assertEquals(listed.names, ["a.test"]);
    assertEquals(listed.source, "acme");
    assert(listed.issuer!.includes("Pebble"), listed.issuer!);

    const tls = portOf(lb.tls!);
    const first = await handshake(tls, "a.test", rootFile);
    assert(first.verified, first.output);
    assertEquals(first.cert.subjectAltName, "DNS:a.test");
    const response = await curlHttps(tls, "a.test", "/", rootFile);
    assertEquals([response.status, response.body], [200, "a"], response.error);
    // The account and the certificate are kept in --data-dir/certs/, readable by the owner only.
    const stored = await Deno.stat(`${dataDir}/certs/cert-a.test.json`);
    assertEquals(stored.mode! & 0o777, 0o600);

    // Renewal: requests keep succeeding (each on a new connection) while the certificate
    // changes under them.
    const statuses: number[] = [];
    let renewed = false;
    while (!renewed) {
      const r = await curlHttps(tls, "a.test", "/", rootFile);
      statuses.push(r.status);
      assertEquals(r.status, 200, `request ${statuses.length} during renewal: ${r.error}`);
      const now = await handshake(tls, "a.test", rootFile);
      renewed = now.cert.fingerprint256 !== first.cert.fingerprint256;
      assert(now.verified, now.output);
      assert(statuses.length < 2000, "no renewal");
    }
    assert(statuses.length > 3, "requests ran before the renewal");
  } catch (err) {
    console.error(pebble.logs().slice(-4000));
    console.error(lb.logs());
    throw err;
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("acme: two instances on one Redis make one order and both serve the certificate", async () => {
  await using redis = await startRedis();
  await using backend = await startBackend("a");
  const routes = configOf({ "a.test": [{ port: backend.port }] });
  const dirs = [
    await Deno.makeTempDir({ prefix: "dynlb-acme-" }),
    await Deno.makeTempDir({ prefix: "dynlb-acme-" }),
  ];
  const args = (dir: string) => [
    "--config-type",
    "redis",
    "--redis-url",
    redis.url,
    "--redis-key",
    "fleet",
    "--listen-tls",
    "127.0.0.1:0",
    "--data-dir",
    dir,
  ];
  await redis.command("SET", "fleet", JSON.stringify(routes));
  await using first = await startDynlb(args(dirs[0]));
  await using second = await startDynlb(args(dirs[1]));
  // The CA validates at the second instance only, while only the first one orders (its config
  // has tls.acme in memory): the challenge is answered through the store.
  await using pebble = await startPebble({ httpPort: portOf(second.proxy) });
  const rootFile = `${dirs[0]}/pebble-root.pem`;
  await Deno.writeTextFile(rootFile, await pebble.root());
  try {
    const withAcme = {
      ...routes,
      tls: {
        acme: { directory: pebble.directory, ca_cert_file: pebble.caCertFile, hosts: ["a.test"] },
      },
    };
    assertEquals((await postConfig(first, withAcme)).status, 200);
    await eventually(
      async () => (await certificates(first))[0]?.state === "valid",
      45_000,
      "a certificate on the first instance",
    );
    // Now the whole fleet gets tls.acme: the second instance takes the stored certificate.
    const saved = await postConfig(second, withAcme, true);
    assertEquals(saved.status, 200, JSON.stringify(saved.body));
    await eventually(
      async () => (await certificates(second))[0]?.state === "valid",
      10_000,
      "the certificate on the second instance",
    );
    const prints = [];
    for (const lb of [first, second]) {
      const shake = await handshake(portOf(lb.tls!), "a.test", rootFile);
      assert(shake.verified, shake.output);
      prints.push(shake.cert.fingerprint256);
    }
    assertEquals(prints[0], prints[1], "both serve the same certificate");
    const orders = pebble.logs().match(/Issued certificate serial/g) ?? [];
    assertEquals(orders.length, 1, "one order for the fleet");
  } catch (err) {
    console.error(pebble.logs().slice(-4000));
    console.error(first.logs(), second.logs());
    throw err;
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});
