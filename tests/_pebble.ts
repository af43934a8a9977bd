/**
 * A real ACME CA for tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS server
 * (every name resolves to 127.0.0.1), on free loopback ports. pebble validates HTTP-01
 * challenges at `http://NAME:httpPort/`, so `httpPort` is where the proxy under test listens.
 *
 * @module
 */
import { makeCa, type TestCa } from "./_certs.ts";
import { freePort } from "./_ports.ts";

/** A running pebble. */
export interface TestPebble extends AsyncDisposable {
  /** The ACME directory URL (`https://127.0.0.1:PORT/dir`). */
  readonly directory: string;
  /** PEM file of the CA that signs pebble's own HTTPS certificate (`tls.acme.ca_cert_file`). */
  readonly caCertFile: string;
  /** The root that signs issued certificates, PEM (what clients of the proxy trust). */
  root(): Promise<string>;
  /** Log output so far (for failure messages). */
  logs(): string;
  close(): Promise<void>;
}

async function waitForPort(port: number, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what} exited during start-up`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  throw new Error(`${what} did not listen on ${port}`);
}

/**
 * Starts challtestsrv and pebble; `httpPort` is where pebble validates HTTP-01 challenges,
 * `validitySeconds` the lifetime of the certificates it issues (pebble's default: 5 years).
 *
 * @example
 * ```ts
 * await using pebble = await startPebble({ httpPort: 8080 });
 * ```
 */
export async function startPebble(
  options: { httpPort: number; validitySeconds?: number },
): Promise<TestPebble> {
  const ca: TestCa = await makeCa();
  const children: Deno.ChildProcess[] = [];
  let output = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const spawn = (command: string, args: string[], env: Record<string, string> = {}) => {
    const child = new Deno.Command(command, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    collect(child.stdout);
    collect(child.stderr);
    children.push(child);
    return child;
  };
  const close = async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
    await ca.close();
  };
  try {
    const dns = freePort({ udp: true });
    const challtestManagement = freePort({ udp: true });
    const challtest = spawn("pebble-challtestsrv", [
      "-defaultIPv4",
      "127.0.0.1",
      "-defaultIPv6",
      "",
      "-dns01",
      `127.0.0.1:${dns}`,
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `127.0.0.1:${challtestManagement}`,
    ]);
    await waitForPort(challtestManagement, challtest, "pebble-challtestsrv");

    const tlsPair = await ca.issue(["IP:127.0.0.1", "localhost"]);
    const acmePort = freePort({ udp: true });
    const managementPort = freePort({ udp: true });
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: tlsPair.certFile,
        privateKey: tlsPair.keyFile,
        httpPort: options.httpPort,
        tlsPort: freePort({ udp: true }),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    };
    const configFile = `${ca.dir}/pebble.json`;
    await Deno.writeTextFile(configFile, JSON.stringify(config));
    const pebble = spawn("pebble", ["-config", configFile, "-dnsserver", `127.0.0.1:${dns}`], {
      PEBBLE_VA_NOSLEEP: "1",
      PEBBLE_WFE_NONCEREJECT: "0",
      PEBBLE_AUTHZREUSE: "0",
    });
    await waitForPort(managementPort, pebble, "pebble");
    await waitForPort(acmePort, pebble, "pebble");
    const caClient = Deno.createHttpClient({ caCerts: [ca.cert] });
    return {
      directory: `https://127.0.0.1:${acmePort}/dir`,
      caCertFile: ca.certFile,
      async root() {
        const response = await fetch(`https://127.0.0.1:${managementPort}/roots/0`, {
          client: caClient,
        });
        return await response.text();
      },
      logs: () => output,
      async close() {
        caClient.close();
        await close();
      },
      async [Symbol.asyncDispose]() {
        caClient.close();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
