/**
 * The history routes of the admin API, mounted under `/config`:
 *
 * - `GET /config/history` — applied configs, newest first, without documents;
 * - `GET /config/history/HASH` — the document of one;
 * - `POST /config/rollback` `{"hash": "…"}` — applies it again (`x-save`, `If-Match` as for
 *   `POST /config`);
 * - `GET /config/diff?from=HASH&to=HASH` — what changes between two (`to` defaults to the
 *   running config).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { type ApplyResult, type ControlPlane, etag } from "../control/control_plane.ts";
import { parseConfig } from "../config/schema.ts";
import { redactText } from "../config/redact.ts";
import { diffConfigs, isEmptyDiff } from "../config/diff.ts";
import type { Config } from "../config/types.ts";
import { type ConfigHistory, StoreUnavailableError } from "../store/store.ts";

/** How a change is run and answered (`answerChange` of the admin app). */
type AnswerChange = (
  c: Context,
  change: (save: boolean, ifMatch: string | undefined) => Promise<ApplyResult>,
) => Promise<Response>;

const HASH = /^[0-9a-f]{64}$/;

/**
 * Builds the history routes.
 *
 * @example
 * ```ts
 * app.route("/config", historyRoutes(control, answerChange));
 * ```
 */
export function historyRoutes(control: ControlPlane, answerChange: AnswerChange): Hono {
  const app = new Hono();
  const history = (): ConfigHistory => {
    if (control.store.history === undefined) throw new NoHistoryError();
    return control.store.history;
  };
  /** The document with `hash`: the running one, or from the history. */
  const documentOf = async (hash: string): Promise<string | null> =>
    hash === control.running.hash ? control.running.text : await history().document(hash);

  app.get("/history", async (c) => c.json({ history: await history().list() }));

  app.get("/history/:hash", async (c) => {
    const hash = c.req.param("hash");
    const text = HASH.test(hash) ? await documentOf(hash) : null;
    if (text === null) return c.json({ error: `no config ${hash} in the history` }, 404);
    c.header("ETag", etag(hash));
    return c.body(redactText(text), 200, { "content-type": "application/json" });
  });

  app.post("/rollback", async (c) => {
    let hash: unknown;
    try {
      hash = (await c.req.json<{ hash?: unknown }>()).hash;
    } catch {
      hash = undefined;
    }
    if (typeof hash !== "string" || !HASH.test(hash)) {
      return c.json({ error: 'body must be {"hash": "<64 hex digits>"}' }, 400);
    }
    const text = await documentOf(hash);
    if (text === null) return c.json({ error: `no config ${hash} in the history` }, 404);
    return await answerChange(
      c,
      (save, ifMatch) => control.propose(text, { save, ifMatch, source: "rollback" }),
    );
  });

  app.get("/diff", async (c) => {
    const from = c.req.query("from") ?? "";
    const to = c.req.query("to") ?? control.running.hash;
    const configs: Config[] = [];
    for (const hash of [from, to]) {
      const text = HASH.test(hash) ? await documentOf(hash) : null;
      if (text === null) {
        return c.json({ error: `no config ${hash || "(none)"} in the history` }, 404);
      }
      const parsed = parseConfig(text);
      // A recorded config was valid when applied; one that no longer validates (an older
      // dynlb's document) cannot be compared field by field.
      if (!parsed.ok) return c.json({ error: `config ${hash} no longer validates` }, 409);
      configs.push(parsed.config);
    }
    const diff = diffConfigs(configs[0], configs[1]);
    return c.json({ from, to, same: isEmptyDiff(diff), ...diff });
  });

  app.onError((err, c) => {
    if (err instanceof NoHistoryError) return c.json({ error: err.message }, 404);
    if (err instanceof StoreUnavailableError) {
      return c.json({ error: `store unavailable: ${err.message}` }, 503);
    }
    throw err;
  });
  return app;
}

class NoHistoryError extends Error {
  override name = "NoHistoryError";
  constructor() {
    super("this store keeps no history");
  }
}
