/**
 * A config must not point a server at dynlb itself: at its proxy listener a request would loop
 * until the connection limits give out, and at its admin listener the proxy would hand the
 * admin API to anyone who can reach the proxy (Contour's CVE-2021-32783). The check needs the
 * addresses dynlb really listens on, so the control plane runs it, not the schema.
 *
 * Host names other than `localhost` are not resolved: a name that happens to point back at this
 * machine is not caught.
 *
 * @module
 */
import type { Config, ConfigIssue } from "./types.ts";
import { formatHostPort } from "../address.ts";
import { localAddresses, reachesListener } from "../net/address.ts";

/** One of dynlb's own listeners. */
export interface OwnListener {
  /** What it serves, for the message: `proxy`, `admin`. */
  readonly role: string;
  readonly hostname: string;
  readonly port: number;
}

const WHY: Record<string, string> = {
  proxy: "requests would loop back into the proxy",
  admin: "the proxy would expose the admin API",
};

/**
 * An issue for every server that is one of `listeners`.
 *
 * @example
 * ```ts
 * selfReferences(config, [{ role: "proxy", hostname: "0.0.0.0", port: 8080 }]);
 * // [{ path: "backends[0].servers[1]", message: "is dynlb's own proxy listener …" }]
 * ```
 */
export function selfReferences(
  config: Config,
  listeners: readonly OwnListener[],
  interfaces: readonly string[] = localAddresses(),
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (listeners.length === 0) return issues;
  config.backends.forEach((backend, i) => {
    backend.servers.forEach((server, j) => {
      const own = listeners.find((l) =>
        l.port === server.port && reachesListener(server.addr, l.hostname, interfaces)
      );
      if (own === undefined) return;
      issues.push({
        path: `backends[${i}].servers[${j}]`,
        message: `is dynlb's own ${own.role} listener (${
          formatHostPort(own.hostname, own.port)
        }): ${WHY[own.role] ?? "a loop"}`,
      });
    });
  });
  return issues;
}
