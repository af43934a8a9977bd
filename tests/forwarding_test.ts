/**
 * `--trusted-proxies`, end to end: dynlb as a subprocess in front of a real backend that records
 * the forwarding headers it receives.
 */
import { assertEquals } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { get, startDynlb } from "./_dynlb.ts";

const SPOOFED = {
  "x-forwarded-for": "6.6.6.6",
  "x-forwarded-host": "evil.test",
  "x-forwarded-proto": "https",
  "x-real-ip": "6.6.6.6",
};

function forwardingSeen(headers: Headers): Record<string, string | null> {
  return Object.fromEntries(Object.keys(SPOOFED).map((name) => [name, headers.get(name)]));
}

for (const listener of ["h1", "serve"] as const) {
  const t = (name: string) => `[listener=${listener}] ${name}`;
  const listening = ["--listener", listener];

  Deno.test(
    t("forwarding headers from a client that is no trusted proxy are replaced"),
    async () => {
      await using echo = await startBackend("echo");
      const path = await configFile(configOf({ "f.test": [{ port: echo.port }] }));
      // 127.0.0.1 is the test client; trusting other ranges must not trust it.
      for (const trusted of [[], ["--trusted-proxies", "10.0.0.0/8,::1"]]) {
        await using lb = await startDynlb(["--config-file", path, ...listening, ...trusted]);
        const r = await get(lb, "f.test", "/", { headers: SPOOFED });
        assertEquals(r.status, 200);
        assertEquals(forwardingSeen(echo.seen.at(-1)!.headers), {
          "x-forwarded-for": "127.0.0.1",
          "x-forwarded-host": "f.test",
          "x-forwarded-proto": "http",
          "x-real-ip": "127.0.0.1",
        });
      }
    },
  );

  Deno.test(
    t("a trusted proxy's X-Forwarded-For is appended to and its other headers kept"),
    async () => {
      await using echo = await startBackend("echo");
      const path = await configFile(configOf({ "f.test": [{ port: echo.port }] }));
      await using lb = await startDynlb(["--config-file", path, ...listening], {
        env: { DYNLB_TRUSTED_PROXIES: "127.0.0.0/8" },
      });
      await get(lb, "f.test", "/", { headers: SPOOFED });
      assertEquals(forwardingSeen(echo.seen.at(-1)!.headers), {
        "x-forwarded-for": "6.6.6.6, 127.0.0.1",
        "x-forwarded-host": "evil.test",
        "x-forwarded-proto": "https",
        "x-real-ip": "6.6.6.6",
      });
      // A trusted proxy that sent none gets dynlb's own.
      await get(lb, "f.test");
      assertEquals(forwardingSeen(echo.seen.at(-1)!.headers), {
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-host": "f.test",
        "x-forwarded-proto": "http",
        "x-real-ip": "127.0.0.1",
      });
    },
  );
}
