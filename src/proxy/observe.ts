/**
 * What one proxy isolate records besides proxying: request metrics into its stripe of shared
 * memory and access log lines into its own batched writer. Built from plain settings so that a
 * worker can build it from its start message.
 *
 * @module
 */
import { AccessLog } from "../access/access_log.ts";
import { type AccessEntry, type AccessLogFormat, formatEntry } from "../access/format.ts";
import { BlockLayout, HEADER } from "../metrics/layout.ts";
import { StripeRecorder } from "../metrics/recorder.ts";
import { type StripeBuffers, StripeWriter } from "../metrics/stripe.ts";
import type { UpstreamTransport } from "./transport.ts";
import { log } from "../log.ts";
import { errorText } from "../error_text.ts";

/** Observability settings of the proxy listeners (structured-cloneable). */
export interface ObserveSettings {
  /** Histogram bounds in seconds; absent or `null`: metrics off. */
  readonly metricsBuckets?: readonly number[] | null;
  /** Absent or `null`: no access log. */
  readonly accessLog?: { readonly path: string; readonly format: AccessLogFormat } | null;
  /** Request id header, lower case; absent: `x-request-id`. */
  readonly requestIdHeader?: string;
}

/** How often pool gauges are refreshed (they are read, not counted, so per request costs 0). */
const POOL_SAMPLE_MS = 1000;

/**
 * The recorder and access log of one isolate.
 *
 * @example
 * ```ts
 * const observers = await Observers.start(settings, registry.newStripe());
 * observers.watchPool(transport);
 * await observers.close();
 * ```
 */
export class Observers {
  readonly recorder: StripeRecorder | undefined;
  readonly #log: AccessLog | undefined;
  readonly #format: AccessLogFormat;
  #sampler: ReturnType<typeof setInterval> | undefined;

  private constructor(
    recorder: StripeRecorder | undefined,
    log: AccessLog | undefined,
    format: AccessLogFormat,
  ) {
    this.recorder = recorder;
    this.#log = log;
    this.#format = format;
  }

  /** Opens the access log (rejects when it cannot be opened) and binds the stripe. */
  static async start(
    settings: ObserveSettings,
    stripe: StripeBuffers | undefined,
  ): Promise<Observers> {
    let recorder: StripeRecorder | undefined;
    if (stripe !== undefined && settings.metricsBuckets) {
      const writer = new StripeWriter(stripe, new BlockLayout(settings.metricsBuckets));
      writer.resetGauges();
      recorder = new StripeRecorder(writer);
    }
    const writer = recorder?.writer;
    const target = settings.accessLog;
    let accessLog: AccessLog | undefined;
    try {
      accessLog = target
        ? await AccessLog.open(target.path, {
          onDropped: (n) => writer?.add(HEADER.accessLogDropped, n),
          onWritten: (n) => writer?.add(HEADER.accessLogWritten, n),
        })
        : undefined;
    } catch (err) {
      // Checked at start-up (see `app.ts`): this is a file that went away since.
      log("error", "cannot open access log, requests are not logged", {
        path: target!.path,
        error: errorText(err),
      });
    }
    return new Observers(recorder, accessLog, settings.accessLog?.format ?? "json");
  }

  /** The request path's access log callback, if the log is on. */
  get accessLog(): ((entry: AccessEntry) => void) | undefined {
    const log = this.#log;
    if (log === undefined) return undefined;
    const format = this.#format;
    return (entry) => log.write(formatEntry(entry, format));
  }

  /** Refreshes the pool gauges from `transport` every second. */
  watchPool(transport: UpstreamTransport): void {
    const writer = this.recorder?.writer;
    if (writer === undefined || transport.pooled === undefined) return;
    const sampler = setInterval(() => {
      const { idle, active } = transport.pooled!();
      writer.set(HEADER.poolIdle, idle);
      writer.set(HEADER.poolActive, active);
    }, POOL_SAMPLE_MS);
    Deno.unrefTimer(sampler as unknown as number);
    this.#sampler = sampler;
  }

  /** Reopens the access log file (SIGHUP). */
  async reopen(): Promise<void> {
    await this.#log?.reopen();
  }

  /** Flushes and closes the access log; stops sampling. */
  async close(): Promise<void> {
    if (this.#sampler !== undefined) clearInterval(this.#sampler);
    const writer = this.recorder?.writer;
    writer?.set(HEADER.poolIdle, 0);
    writer?.set(HEADER.poolActive, 0);
    await this.#log?.close();
  }
}
