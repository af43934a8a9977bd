/**
 * Wires the program together: store → control plane → data plane (router + transport) → proxy
 * listener, with the admin API beside it. `main.ts` adds the command line and signals.
 *
 * @module
 */
import { createAdminApp } from "./admin/app.ts";
import type { Address, Options } from "./cli/options.ts";
import { ControlPlane } from "./control/control_plane.ts";
import { log } from "./log.ts";
import { createProxyHandler } from "./proxy/handler.ts";
import { Router } from "./proxy/router.ts";
import { FetchTransport } from "./proxy/fetch_transport.ts";
import type { UpstreamTransport } from "./proxy/transport.ts";
import { createStore } from "./store/create.ts";
import { proxyError } from "./proxy/errors.ts";

/** A running instance. */
export interface Running {
  /** Where the proxy listens (the real port when 0 was asked for). */
  readonly proxy: Deno.NetAddr;
  /** Where the admin API listens. */
  readonly admin: Deno.NetAddr;
  readonly control: ControlPlane;
  /**
   * Stops accepting, lets requests in flight finish for at most `timeoutMs`, then closes
   * everything. Resolves `true` when every request finished in time.
   */
  shutdown(timeoutMs: number): Promise<boolean>;
}

/** Start-up failed in a way the user must fix (busy port, invalid config): exit 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Starts dynlb with the given options.
 *
 * @example
 * ```ts
 * const running = await start(parseOptions(Deno.args, Deno.env.toObject()));
 * console.log(running.proxy.port);
 * ```
 */
export async function start(options: Options): Promise<Running> {
  const store = createStore(options);
  const router = new Router();
  const control = new ControlPlane({ store, dataPlane: router });
  try {
    await control.start();
  } catch (err) {
    await store.close();
    throw new StartupError(err instanceof Error ? err.message : String(err));
  }

  const transport = createTransport(options);
  const handler = createProxyHandler({ router, transport, retries: options.retries });

  const proxy = listen("proxy", options.listen, (request, info) => handler(request, info));
  let admin: Deno.HttpServer<Deno.NetAddr>;
  try {
    const app = createAdminApp({
      control,
      status: () => [],
      maxBodyBytes: options.maxConfigBytes,
    });
    admin = listen("admin", options.admin, (request) => app.fetch(request));
  } catch (err) {
    await proxy.shutdown();
    await store.close();
    throw err;
  }
  control.watch();

  return {
    proxy: proxy.addr,
    admin: admin.addr,
    control,
    async shutdown(timeoutMs) {
      control.stop();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const drained = await Promise.race([
        Promise.all([proxy.shutdown(), admin.shutdown()]).then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
      ]);
      clearTimeout(timer);
      transport.close();
      await store.close();
      return drained;
    },
  };
}

function createTransport(options: Options): UpstreamTransport {
  const timeouts = {
    connectMs: options.connectTimeoutMs,
    responseMs: options.responseTimeoutMs,
  };
  return new FetchTransport(timeouts);
}

function listen(
  what: string,
  address: Address,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({
      hostname: address.hostname,
      port: address.port,
      onListen: () => {},
      onError: (err) => {
        log("error", `${what} request failed`, { error: String(err) });
        return proxyError("internal", "internal error");
      },
    }, handler);
  } catch (err) {
    const where = `${address.hostname}:${address.port}`;
    if (err instanceof Deno.errors.AddrInUse) {
      throw new StartupError(`cannot listen on ${where} (${what}): address already in use`);
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new StartupError(`cannot listen on ${where} (${what}): permission denied`);
    }
    throw new StartupError(`cannot listen on ${where} (${what}): ${(err as Error).message}`);
  }
}
