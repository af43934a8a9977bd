/**
 * Opens the admin API's listener. During an upgrade on one machine (`--reuse-port`) the process
 * being replaced still holds the admin address: the new one then serves the proxy at once and
 * takes the admin address as soon as the old one lets go, saying so in the log.
 *
 * @module
 */
import type { Address } from "../cli/options.ts";
import { log } from "../log.ts";
import { listen, ListenError } from "../proxy/server.ts";
import { formatHostPort } from "../address.ts";

/** How often a busy admin address is tried again. */
const RETRY_MS = 200;

/** The admin listener, open or waiting for its address. */
export interface AdminListener {
  /** The address it listens on, or will once free. */
  readonly addr: Deno.NetAddr;
  /** Stops waiting, or stops the server and waits for requests in flight. */
  shutdown(): Promise<void>;
}

/**
 * Listens on `address`; when `wait` is set and the address is in use, retries in the background
 * until it is free (instead of failing start-up).
 *
 * @example
 * ```ts
 * const admin = openAdmin({ hostname: "127.0.0.1", port: 9001 }, app.fetch, true);
 * await admin.shutdown();
 * ```
 */
export function openAdmin(
  address: Address,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  wait: boolean,
): AdminListener {
  try {
    const server = listen("admin", address, handler);
    return { addr: server.addr, shutdown: () => server.shutdown() };
  } catch (err) {
    if (!wait || !(err instanceof ListenError && err.cause instanceof Deno.errors.AddrInUse)) {
      throw err;
    }
  }
  const where = formatHostPort(address.hostname, address.port);
  log(
    "warn",
    "admin address in use (by the dynlb being replaced?): proxy serving, admin API waits",
    {
      admin: where,
    },
  );
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = () => {
    timer = undefined;
    if (stopped) return;
    try {
      server = listen("admin", address, handler);
      log("info", "admin API listening", { admin: where });
    } catch (err) {
      if (!(err instanceof ListenError && err.cause instanceof Deno.errors.AddrInUse)) {
        log("error", "admin API cannot listen", { admin: where, error: (err as Error).message });
        return;
      }
      timer = setTimeout(attempt, RETRY_MS);
    }
  };
  timer = setTimeout(attempt, RETRY_MS);
  return {
    addr: { transport: "tcp", hostname: address.hostname, port: address.port },
    shutdown() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      return server?.shutdown() ?? Promise.resolve();
    },
  };
}
