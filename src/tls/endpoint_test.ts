import { assert, assertEquals } from "../../tests/_assert.ts";
import { makeCa, type TestPair } from "../../tests/_certs.ts";
import { handshake } from "../../tests/_tls.ts";
import { inspectPair, type ServedCertificate } from "./certificate.ts";
import { listenTlsWithSni, TlsEndpoint, type TlsServing } from "./endpoint.ts";

function served(pair: TestPair): ServedCertificate {
  return { ...inspectPair(pair.cert, pair.key), cert: pair.cert, key: pair.key };
}

/** Accepts TLS connections and answers each line with "ok\n" until the peer closes. */
function echoServing(listener: Deno.TlsListener, open: Set<Deno.Conn>): TlsServing {
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      (async () => {
        const buf = new Uint8Array(1024);
        try {
          while ((await conn.read(buf)) !== null) {
            await conn.write(new TextEncoder().encode("ok\n"));
          }
        } catch {
          // Handshake refused or peer gone.
        } finally {
          open.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })();
    }
  })().catch(() => {});
  return {
    addr: listener.addr,
    stopAccepting: () => listener.close(),
    shutdown: async () => {
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
    },
  };
}

Deno.test("tls endpoint: a new certificate set serves new handshakes; open connections stay", async () => {
  await using ca = await makeCa();
  const one = await ca.issue(["a.test"]);
  const two = await ca.issue(["a.test"]);
  const open = new Set<Deno.Conn>();
  const endpoint = new TlsEndpoint(
    { hostname: "127.0.0.1", port: 0 },
    (index, address) => echoServing(listenTlsWithSni(index, address), open),
  );
  const port = endpoint.addr.port;
  try {
    endpoint.update([served(one)]);
    const before = await handshake(port, "a.test", ca.certFile);
    assertEquals(before.cert.fingerprint256, served(one).fingerprint);

    const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
    const kept = await Deno.startTls(tcp, { hostname: "a.test", caCerts: [ca.cert] });
    const ask = async () => {
      await kept.write(new TextEncoder().encode("hi\n"));
      const buf = new Uint8Array(16);
      return new TextDecoder().decode(buf.subarray(0, (await kept.read(buf)) ?? 0));
    };
    assertEquals(await ask(), "ok\n");

    // The listener asks for a name's certificate once for its life: only a new listener on the
    // same port serves the new one.
    endpoint.update([served(two)]);
    const after = await handshake(port, "a.test", ca.certFile);
    assertEquals(after.cert.fingerprint256, served(two).fingerprint);
    assertEquals(await ask(), "ok\n", "the connection accepted before the change still works");
    kept.close();

    // The same set again changes nothing; an empty set holds the port and refuses handshakes.
    endpoint.update([served(two)]);
    endpoint.update([]);
    const refused = await handshake(port, "a.test", ca.certFile).catch((err) => err);
    assert(refused instanceof Error, "no certificate: no handshake");
  } finally {
    await endpoint.shutdown();
    for (const conn of open) conn.close();
  }
});
