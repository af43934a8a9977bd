/**
 * Config churn under load: 20 config changes a second for 10 s — weights changed, servers added
 * and removed, hosts moved between backends, backends renamed — while clients send requests on
 * keep-alive connections. Not one request may fail.
 */
import { assert, assertEquals } from "./_assert.ts";
import { type Backend, configFile, startBackend } from "./_backend.ts";
import { modeName, MODES, postConfig, startDynlb } from "./_dynlb.ts";

const HOSTS = ["a.test", "b.test", "c.test"];
const SECONDS = 10;
const CHANGES_PER_SECOND = 20;
const CLIENTS = 8;

/**
 * The `step`-th config: every host always routed to a backend with at least one server, but
 * which backend, under which name, with which servers and weights changes every step.
 */
function configAt(step: number, servers: readonly Backend[]): unknown {
  const pick = (i: number) => servers[(step + i) % servers.length];
  // Renamed every 3rd step; 2 or 3 backends; a backend has 1 to 3 servers.
  const generation = Math.floor(step / 3);
  const count = 2 + (step % 2);
  const backends = Array.from({ length: count }, (_, b) => ({
    backend_name: `pool-${b}-gen${generation}`,
    servers: Array.from({ length: 1 + ((step + b) % 3) }, (_, s) => ({
      addr: "127.0.0.1",
      port: pick(b + s).port,
      weight: 1 + ((step * 7 + s) % 5),
    })),
  }));
  // Hosts move: host h goes to backend (h + step) % count.
  const hosts = HOSTS.map((host, h) => ({
    host,
    backend_name: backends[(h + step) % count].backend_name,
  }));
  return { backends, hosts };
}

for (const mode of MODES.slice(0, 2)) {
  Deno.test(`[${modeName(mode)}] 20 config changes a second for 10 s under load: no request fails`, async () => {
    const servers: Backend[] = [];
    for (const name of ["s0", "s1", "s2", "s3", "s4"]) {
      // Each answer takes a moment, so servers leave the config with requests in flight.
      servers.push(
        await startBackend(name, async () => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return new Response(name);
        }),
      );
    }
    const names = new Set(servers.map((s) => s.name));
    try {
      const path = await configFile(configAt(0, servers));
      await using lb = await startDynlb(["--config-file", path], { mode });

      let running = true;
      const failures: string[] = [];
      let ok = 0;
      const client = async (index: number) => {
        const http = Deno.createHttpClient({ allowHost: true, http2: false });
        try {
          for (let i = 0; running; i++) {
            const host = HOSTS[(index + i) % HOSTS.length];
            try {
              const response = await fetch(`${lb.proxy}/`, { client: http, headers: { host } });
              const body = await response.text();
              if (response.status === 200 && names.has(body)) ok++;
              else failures.push(`${host}: ${response.status} ${body}`);
            } catch (err) {
              failures.push(`${host}: ${(err as Error).message}`);
            }
          }
        } finally {
          http.close();
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));

      let changes = 0;
      const started = performance.now();
      for (let step = 1; step <= SECONDS * CHANGES_PER_SECOND; step++) {
        const posted = await postConfig(lb, configAt(step, servers));
        assertEquals(posted.status, 200, JSON.stringify(posted.body));
        changes++;
        // Paced at 20 a second: the pause is the load's shape, not a wait for a condition.
        const due = started + (step * 1000) / CHANGES_PER_SECOND;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      running = false;
      await Promise.all(clients);
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `${changes} config changes in ${seconds.toFixed(1)} s, ${ok} requests answered, ` +
          `${failures.length} failed`,
      );
      assertEquals(failures.slice(0, 20), []);
      assert(ok > 1000, `${ok} requests answered`);
    } finally {
      for (const s of servers) await s.close();
    }
  });
}
