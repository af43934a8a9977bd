/**
 * The admin API (Hono), served on 127.0.0.1:9001 by default:
 *
 * - `POST /config` — replace the whole config; `x-save: 1` also writes it to the store;
 *   `If-Match` makes it conditional (412).
 * - `GET /config` — the running config, its version and hash (inline private keys redacted);
 *   `ETag: "HASH"`.
 * - `GET /config/history`, `GET /config/history/HASH`, `POST /config/rollback`,
 *   `GET /config/diff` — see `history.ts`.
 * - `GET /certificates` — every certificate served over HTTPS: names, issuer, expiry, source.
 * - `GET /status` — every backend and server with its health state.
 * - `GET /healthz` — liveness of the proxy process itself.
 * - `GET /metrics` — Prometheus text exposition.
 * - `GET /` — the dashboard; `GET /dashboard.json` — what it shows, for scripts too.
 *
 * Every answer is JSON; errors carry `error` and, for a refused config, `issues` with the JSON
 * path of each problem. `guard.ts` comes first: token, `Host` and `Origin` checks.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  type ApplyResult,
  ConfigConflictError,
  type ControlPlane,
  etag,
} from "../control/control_plane.ts";
import type { BackendStatus } from "../health/types.ts";
import { StoreConflictError, StoreUnavailableError } from "../store/store.ts";
import { historyRoutes } from "./history.ts";
import { log } from "../log.ts";
import type { CertificateListing } from "../tls/manager.ts";
import { adminGuard } from "./guard.ts";
import { METRICS_CONTENT_TYPE, type MetricsSources, renderMetrics } from "../metrics/exposition.ts";
import type { HealthEvents } from "../metrics/events.ts";
import { Summary } from "../metrics/summary.ts";
import { DASHBOARD_HTML } from "./dashboard_page.ts";

/** What the admin API serves from. */
export interface AdminOptions {
  readonly control: ControlPlane;
  /** Health of every backend's servers, for `GET /status`. */
  readonly status: () => readonly BackendStatus[];
  /** Every certificate served, for `GET /certificates`. */
  readonly certificates?: () => readonly CertificateListing[];
  /** Largest accepted `POST /config` body in bytes. */
  readonly maxBodyBytes: number;
  /** Bearer token every route but `GET /healthz` requires; none: no authentication. */
  readonly token?: string;
  /**
   * Where the admin API listens, for the `Host` check; read per request. Without it (tests
   * calling `app.request`) any `Host` is accepted.
   */
  readonly address?: () => { readonly hostname: string; readonly port: number };
  /** What `/metrics` and the dashboard read; absent: metrics off (both answer 404). */
  readonly metrics?: MetricsSources;
  /** Recent health changes, for the dashboard. */
  readonly healthEvents?: HealthEvents;
}

/**
 * Runs a config change with the request's `x-save` and `If-Match`, and answers as `POST /config`
 * does: 200 with version, hash and saved; 400 with the issues; 412 when `If-Match` fails; 503
 * when the store cannot be written.
 *
 * @example
 * ```ts
 * return await answerChange(c, (save, ifMatch) => control.propose(text, { save, ifMatch }));
 * ```
 */
export async function answerChange(
  c: Context,
  change: (save: boolean, ifMatch: string | undefined) => Promise<ApplyResult>,
): Promise<Response> {
  const save = SAVE.has((c.req.header("x-save") ?? "").trim().toLowerCase());
  const ifMatch = c.req.header("if-match");
  let result;
  try {
    result = await change(save, ifMatch);
  } catch (err) {
    if (err instanceof StoreUnavailableError) {
      log("warn", "config not saved: store unavailable", { error: err.message });
      return c.json({ error: `store unavailable, nothing changed: ${err.message}` }, 503);
    }
    if (err instanceof ConfigConflictError || err instanceof StoreConflictError) {
      return c.json({ error: `If-Match failed, nothing changed: ${err.message}` }, 412);
    }
    throw err;
  }
  if (!result.ok) {
    return c.json({ error: "invalid config, nothing changed", issues: result.issues }, 400);
  }
  const { version, hash, saved } = result.running;
  const { warnings } = result;
  c.header("ETag", etag(hash));
  return c.json({ version, hash, saved, ...(warnings.length > 0 ? { warnings } : {}) });
}

/** `x-save` values that mean "persist". */
const SAVE = new Set(["1", "true", "yes", "on"]);

/**
 * Builds the admin application.
 *
 * @example
 * ```ts
 * const app = createAdminApp({ control, status: () => [], maxBodyBytes: 64 << 20 });
 * Deno.serve({ hostname: "127.0.0.1", port: 9001 }, app.fetch);
 * ```
 */
export function createAdminApp(options: AdminOptions): Hono {
  const { control, address } = options;
  const app = new Hono();
  app.use(adminGuard({ token: options.token, address }));

  app.post(
    "/config",
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) =>
        c.json({
          error: `config body larger than ${options.maxBodyBytes} bytes`,
        }, 413),
    }),
    async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
        return c.json({
          error: `Content-Type must be application/json (got ${type ? `"${type}"` : "none"})`,
        }, 415);
      }
      const text = await c.req.text();
      return await answerChange(c, (save, ifMatch) => control.propose(text, { save, ifMatch }));
    },
  );

  // Never older than what the data plane routes by, even mid-change (see `settled`).
  app.get("/config", async (c) => {
    const running = await control.settled();
    c.header("ETag", etag(running.hash));
    return c.json(running);
  });

  app.route("/config", historyRoutes(control, answerChange));

  app.get("/certificates", (c) => c.json({ certificates: options.certificates?.() ?? [] }));

  app.get("/status", async (c) => {
    const { version, hash } = await control.settled();
    return c.json({ version, hash, backends: options.status() });
  });

  app.get("/healthz", (c) => c.json({ ok: true }));

  const metrics = options.metrics;
  if (metrics !== undefined) {
    const summary = new Summary({
      registry: metrics.registry,
      status: options.status,
      running: () => control.running,
      reloads: () => metrics.reloads.recent(),
      healthEvents: () => options.healthEvents?.recent() ?? [],
    });
    app.get(
      "/metrics",
      (c) => c.body(renderMetrics(metrics), 200, { "content-type": METRICS_CONTENT_TYPE }),
    );
    app.get("/dashboard.json", (c) => c.json(summary.read()));
    app.get("/", (c) =>
      c.html(DASHBOARD_HTML, 200, {
        "cache-control": "no-store",
        // Everything is inline and from here: nothing else may load or run.
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
          "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
      }));
  }

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    log("error", "admin request failed", { path: c.req.path, error: String(err) });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
