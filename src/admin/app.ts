/**
 * The admin API (Hono), served on 127.0.0.1:9001 by default:
 *
 * - `POST /config` — replace the whole config; `x-save: 1` also writes it to the store.
 * - `GET /config` — the running config, its version and hash.
 * - `GET /status` — every backend and server with its health state.
 * - `GET /healthz` — liveness of the proxy process itself.
 * - `GET /metrics` — Prometheus text exposition.
 * - `GET /` — the dashboard; `GET /dashboard.json` — what it shows, for scripts too.
 *
 * Every answer is JSON; errors carry `error` and, for a refused config, `issues` with the JSON
 * path of each problem.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ControlPlane } from "../control/control_plane.ts";
import type { BackendStatus } from "../health/types.ts";
import { StoreUnavailableError } from "../store/store.ts";
import { log } from "../log.ts";
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
      const save = SAVE.has((c.req.header("x-save") ?? "").trim().toLowerCase());
      const text = await c.req.text();
      let result;
      try {
        result = await control.propose(text, { save });
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          log("warn", "config not saved: store unavailable", { error: err.message });
          return c.json({
            error: `store unavailable, nothing changed: ${err.message}`,
          }, 503);
        }
        throw err;
      }
      if (!result.ok) {
        return c.json({ error: "invalid config, nothing changed", issues: result.issues }, 400);
      }
      const { version, hash, saved } = result.running;
      return c.json({ version, hash, saved });
    },
  );

  app.get("/config", (c) => c.json(control.running));

  app.get("/status", (c) => {
    const { version, hash } = control.running;
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
          "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'",
      }));
  }

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    log("error", "admin request failed", { path: c.req.path, error: String(err) });
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
