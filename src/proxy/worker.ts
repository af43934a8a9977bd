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
import type { MetricIds } from "../metrics/registry.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { Observers } from "./observe.ts";
import { Router } from "./router.ts";
import { ListenError, type PreparedProxy, prepareProxy, type ProxyServer } from "./server.ts";

const router = new Router();
let proxy: PreparedProxy | undefined;
let server: ProxyServer | undefined;
let observers: Observers | undefined;
/** A config's metric ids that arrived before `start` had built the recorder. */
let pendingIds: { config: Config; ids: MetricIds } | undefined;

function send(message: FromWorker): void {
  self.postMessage(message);
}

/** ACME challenge lookups waiting for the main isolate's answer. */
const challenges = new Map<number, (answer: string | null) => void>();
let nextChallenge = 0;

/** Asks the control plane (main isolate), which knows the tokens of the whole fleet. */
function lookupChallenge(token: string): Promise<string | null> {
  const id = nextChallenge++;
  return new Promise((resolve) => {
    challenges.set(id, resolve);
    send({ type: "acme-challenge", id, token });
  });
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      setLogLevel(message.logLevel as LogLevel);
      observers = await Observers.start(message.settings, message.stripe);
      if (pendingIds !== undefined) {
        observers.recorder?.bind(router.snapshot, pendingIds.config, pendingIds.ids);
        pendingIds = undefined;
      }
      proxy = prepareProxy(
        router,
        message.settings,
        (backend, server, error) =>
          send({
            type: "upstream-failure",
            backend,
            server,
            failure: error.failure,
            message: error.message,
            at: Date.now(),
          }),
        observers,
        lookupChallenge,
      );
      send({ type: "prepared" });
      break;
    case "listen":
      // Only once the pool has seen this worker apply the config in force.
      try {
        server = proxy!.listen(message.address, true, message.tlsAddress);
        send({ type: "listening", addr: server.addr });
      } catch (err) {
        if (!(err instanceof ListenError)) throw err;
        send({ type: "listen-failed", message: err.message });
      }
      break;
    case "config": {
      const config = JSON.parse(message.json) as Config;
      await router.applyConfig(config, message.version, message.down, message.counters);
      if (message.ids !== undefined) {
        if (observers === undefined) pendingIds = { config, ids: message.ids };
        else observers.recorder?.bind(router.snapshot, config, message.ids);
      }
      send({ type: "applied", version: message.version });
      break;
    }
    case "health":
      router.setHealth(message.backend, message.server, message.up);
      break;
    case "certificates":
      proxy?.applyCertificates(message.certificates);
      break;
    case "acme-answer":
      challenges.get(message.id)?.(message.answer);
      challenges.delete(message.id);
      break;
    case "reopen-log":
      await observers?.reopen();
      break;
    case "stop-accepting":
      await server?.stopAccepting?.();
      send({ type: "stopped-accepting" });
      break;
    case "shutdown":
      await server?.shutdown();
      (server ?? proxy)?.close();
      await observers?.close();
      send({ type: "stopped" });
      self.close();
      break;
  }
};
