/**
 * The control plane's handle on the data plane. In one isolate it is the router itself; with
 * workers it posts messages to each. Either way the control plane only ever hands over a
 * validated config (compiled into a snapshot on the other side) and health changes.
 *
 * @module
 */
import type { Config } from "../config/types.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { ServedCertificate } from "../tls/certificate.ts";

/** Where the control plane sends what the request path needs. */
export interface DataPlane {
  /**
   * Replaces the routing snapshot. Resolves once the new snapshot is in force everywhere
   * (every worker, when there are workers).
   */
  applyConfig(config: Config, version: number, down: readonly DownServer[]): Promise<void>;
  /** Marks a server of a backend up or down. */
  setHealth(backend: string, server: string, up: boolean): void;
  /** Puts a new certificate set in force on the HTTPS listener (absent: no HTTPS listener). */
  applyCertificates?(certificates: readonly ServedCertificate[]): void;
}
