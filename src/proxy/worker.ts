/**
 * Entry point of a proxy worker isolate: a router and a proxy listener sharing the port with the
 * other workers (`reusePort`), fed by the control plane's messages. The listener opens only when
 * told to (`listen`), after the worker has the config in force.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { Config } from "../config/types.ts";
import { type LogLevel, setLogLevel } from "../log.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { Router } from "./router.ts";
import { ListenError, type PreparedProxy, prepareProxy, type ProxyServer } from "./server.ts";

const router = new Router();
let proxy: PreparedProxy | undefined;
let server: ProxyServer | undefined;

function send(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      setLogLevel(message.logLevel as LogLevel);
      proxy = prepareProxy(router, message.settings, (backend, server, error) =>
        send({
          type: "upstream-failure",
          backend,
          server,
          failure: error.failure,
          message: error.message,
        }));
      send({ type: "prepared" });
      break;
    case "listen":
      // Only once the pool has seen this worker apply the config in force.
      try {
        server = proxy!.listen(message.address, true);
        send({ type: "listening", addr: server.addr });
      } catch (err) {
        if (!(err instanceof ListenError)) throw err;
        send({ type: "listen-failed", message: err.message });
      }
      break;
    case "config":
      await router.applyConfig(
        JSON.parse(message.json) as Config,
        message.version,
        message.down,
        message.counters,
      );
      send({ type: "applied", version: message.version });
      break;
    case "health":
      router.setHealth(message.backend, message.server, message.up);
      break;
    case "shutdown":
      await server?.shutdown();
      (server ?? proxy)?.close();
      send({ type: "stopped" });
      self.close();
      break;
  }
};
