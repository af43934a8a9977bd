/**
 * Messages between the control plane (main isolate) and proxy workers. Only plain data crosses:
 * each worker compiles its own snapshot from the validated config.
 *
 * @module
 */
import type { Address } from "../cli/options.ts";
import type { CounterLayout } from "../balance/memory.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { MetricIds } from "../metrics/registry.ts";
import type { StripeBuffers } from "../metrics/stripe.ts";
import type { ProxySettings } from "./server.ts";
import type { UpstreamFailure } from "./transport.ts";
import type { ServedCertificate } from "../tls/certificate.ts";

/** Main → worker. */
export type ToWorker =
  | {
    readonly type: "start";
    readonly settings: ProxySettings;
    readonly logLevel: string;
    /** This worker's metrics (shared memory, summed by the admin isolate); absent: off. */
    readonly stripe?: StripeBuffers;
  }
  /** Open the listener: sent once the worker has the config in force. */
  | { readonly type: "listen"; readonly address: Address; readonly tlsAddress?: Address }
  | {
    readonly type: "config";
    /** The validated config (defaults applied) as JSON. */
    readonly json: string;
    readonly version: number;
    readonly down: readonly DownServer[];
    /** Balancer counters (round-robin positions, requests in flight), in shared memory. */
    readonly counters: CounterLayout;
    /** Metric ids of the config's backends and servers; absent: metrics off. */
    readonly ids?: MetricIds;
  }
  | {
    readonly type: "health";
    readonly backend: string;
    readonly server: string;
    readonly up: boolean;
  }
  | { readonly type: "reopen-log" }
  | { readonly type: "certificates"; readonly certificates: readonly ServedCertificate[] }
  | { readonly type: "acme-answer"; readonly id: number; readonly answer: string | null }
  /** First step of a drain: close the listeners, keep the connections. */
  | { readonly type: "stop-accepting" }
  | { readonly type: "shutdown" };

/** Worker → main. */
export type FromWorker =
  | { readonly type: "prepared" }
  | { readonly type: "listening"; readonly addr: Deno.NetAddr }
  | { readonly type: "listen-failed"; readonly message: string }
  | { readonly type: "applied"; readonly version: number }
  | {
    readonly type: "upstream-failure";
    readonly backend: string;
    readonly server: string;
    readonly failure: UpstreamFailure;
    readonly message: string;
    /** When it failed (ms since the epoch): the report may arrive late. */
    readonly at: number;
  }
  | { readonly type: "acme-challenge"; readonly id: number; readonly token: string }
  | { readonly type: "stopped-accepting" }
  | { readonly type: "stopped" };
