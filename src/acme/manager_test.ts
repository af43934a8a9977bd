import { assert, assertEquals } from "../../tests/_assert.ts";
import { eventually } from "../../tests/_dynlb.ts";
import { startPebble } from "../../tests/_pebble.ts";
import { startRedis } from "../../tests/_redis.ts";
import { RedisStore } from "../store/redis.ts";
import { FileAcmeStore } from "./file_store.ts";
import { KvAcmeStore } from "./kv_store.ts";
import { AcmeManager } from "./manager.ts";
import { RedisAcmeStore } from "./redis_store.ts";
import type { AcmeStore } from "./store.ts";

/** A plain HTTP listener answering HTTP-01 challenges with `answer`. */
function challengeServer(answer: (token: string) => Promise<string | null>) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    const prefix = "/.well-known/acme-challenge/";
    if (!path.startsWith(prefix)) return new Response("no", { status: 404 });
    const body = await answer(path.slice(prefix.length));
    return body === null ? new Response("unknown", { status: 404 }) : new Response(body);
  });
}

async function storeContract(store: AcmeStore): Promise<void> {
  assertEquals(await store.getAccount(), null);
  assertEquals(await store.putAccountIfAbsent({ key: "first" }), { key: "first" });
  assertEquals(await store.putAccountIfAbsent({ key: "second" }), { key: "first" });
  const before = await store.revision();
  await store.putCertificate("a.test", { cert: "C", key: "K" });
  assert((await store.revision()) !== before, "revision moves with a certificate");
  assertEquals(await store.getCertificate("a.test"), { cert: "C", key: "K" });
  assertEquals(await store.getCertificate("b.test"), null);
  const token = "abcdefghijklmnop_-0123";
  await store.putChallenge(token, `${token}.thumb`, 60_000);
  assertEquals(await store.getChallenge(token), `${token}.thumb`);
  await store.deleteChallenge(token);
  assertEquals(await store.getChallenge(token), null);
  await store.putChallenge(token, "short", 1);
  await new Promise((resolve) => setTimeout(resolve, 10)); // let a 1 ms record expire
  assertEquals(await store.getChallenge(token), null, "an expired challenge is gone");
  assert(await store.lock("a.test", "one", 60_000));
  assert(!(await store.lock("a.test", "two", 60_000)), "a held lock cannot be taken");
  await store.unlock("a.test", "two");
  assert(!(await store.lock("a.test", "two", 60_000)), "only the owner unlocks");
  await store.unlock("a.test", "one");
  assert(await store.lock("a.test", "two", 1));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert(await store.lock("a.test", "three", 60_000), "an expired lock can be taken");
}

Deno.test("acme stores: file, KV and Redis keep the same contract", async (t) => {
  await t.step("file", async () => {
    const dir = await Deno.makeTempDir({ prefix: "dynlb-acme-" });
    try {
      await storeContract(new FileAcmeStore(`${dir}/certs`));
      const mode = (await Deno.stat(`${dir}/certs/cert-a.test.json`)).mode! & 0o777;
      assertEquals(mode, 0o600, "keys are readable by their owner only");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("kv", async () => {
    const kv = await Deno.openKv(":memory:");
    try {
      await storeContract(new KvAcmeStore(kv));
    } finally {
      kv.close();
    }
  });
  await t.step("redis", async () => {
    await using redis = await startRedis();
    const config = new RedisStore({ url: redis.url, key: "lb" });
    try {
      await storeContract(new RedisAcmeStore(config));
    } finally {
      await config.close();
    }
  });
});

Deno.test("acme: two managers on one store make one order; both get the certificate; renewal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-acme-" });
  const store = new FileAcmeStore(`${dir}/certs`);
  const managers: AcmeManager[] = [];
  // Only the second manager's instance is reachable: the first one's orders are answered
  // through the store.
  const server = challengeServer(async (token) =>
    managers[1].ownChallenge(token) ?? await store.getChallenge(token)
  );
  const httpPort = server.addr.port;
  await using pebble = await startPebble({ httpPort, validitySeconds: 12 });
  try {
    const changes = [0, 0];
    for (const i of [0, 1]) {
      managers.push(
        new AcmeManager({
          store: new FileAcmeStore(`${dir}/certs`),
          onChange: () => changes[i]++,
          pollMs: 200,
          retryMs: 500,
          renewAt: 0.5,
        }),
      );
    }
    const config = {
      directory: pebble.directory,
      ca_cert_file: pebble.caCertFile,
      hosts: ["a.test"],
    };
    managers[0].configure(config, ["a.test"]);
    managers[1].configure(config, ["a.test"]);
    await eventually(
      () => managers.every((m) => m.certificates().length === 1),
      20_000,
      "a certificate on both",
    );
    const first = managers[0].certificates()[0];
    assertEquals(managers[1].certificates()[0].fingerprint, first.fingerprint, "one order");
    assertEquals(first.names, ["a.test"]);
    assert(first.issuer.includes("Pebble"), first.issuer);
    // Half of 12 s later one of them renews; both move to the new certificate.
    await eventually(
      () => managers.every((m) => m.certificates()[0]?.fingerprint !== first.fingerprint),
      20_000,
      "renewal",
    );
    assertEquals(
      managers[0].certificates()[0].fingerprint,
      managers[1].certificates()[0].fingerprint,
    );
    assertEquals(managers[0].status()[0].state, "valid");
  } catch (err) {
    console.error(pebble.logs());
    throw err;
  } finally {
    for (const m of managers) m.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
