/**
 * Entry point of a proxy worker isolate: a router and a proxy listener sharing the port with the
 * other workers (`reusePort`), fed by the control plane's messages.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { Config } from "../config/types.ts";
import { type LogLevel, setLogLevel } from "../log.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { Observers } from "./observe.ts";
import type { MetricIds } from "../metrics/registry.ts";
import { Router } from "./router.ts";
import { ListenError, type ProxyServer, serveProxy } from "./server.ts";

const router = new Router();
let server: ProxyServer | undefined;
let observers: Observers | undefined;
/** The last config's metric ids: a replacement worker gets its config before `start`. */
let lastIds: { config: Config; ids: MetricIds } | undefined;

function send(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      setLogLevel(message.logLevel as LogLevel);
      try {
        observers = await Observers.start(message.settings, message.stripe);
        if (lastIds !== undefined) {
          observers.recorder?.bind(router.snapshot, lastIds.config, lastIds.ids);
          lastIds = undefined;
        }
        server = serveProxy(router, message.settings, (backend, server, error) =>
          send({
            type: "upstream-failure",
            backend,
            server,
            failure: error.failure,
            message: error.message,
          }), observers);
        send({ type: "listening", addr: server.addr });
      } catch (err) {
        if (err instanceof ListenError) send({ type: "listen-failed", message: err.message });
        else if (
          err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied
        ) {
          send({ type: "listen-failed", message: `cannot open access log: ${err.message}` });
        } else throw err;
      }
      break;
    case "config": {
      const config = JSON.parse(message.json) as Config;
      await router.applyConfig(config, message.version, message.down, message.cursors);
      if (message.ids !== undefined) {
        if (observers === undefined) lastIds = { config, ids: message.ids };
        else observers.recorder?.bind(router.snapshot, config, message.ids);
      }
      send({ type: "applied", version: message.version });
      break;
    }
    case "health":
      router.setHealth(message.backend, message.server, message.up);
      break;
    case "reopen-log":
      await observers?.reopen();
      break;
    case "shutdown":
      await server?.shutdown();
      server?.close();
      await observers?.close();
      send({ type: "stopped" });
      self.close();
      break;
  }
};
