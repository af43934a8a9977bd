/**
 * Chooses the configuration store from the options (`--config-type`).
 *
 * @module
 */
import type { Options } from "../cli/options.ts";
import { FileStore } from "./file.ts";
import type { ConfigStore } from "./store.ts";

/**
 * Builds the store `--config-type` names.
 *
 * @example
 * ```ts
 * const store = await createStore(options); // FileStore for --config-type file
 * ```
 */
export async function createStore(options: Options): Promise<ConfigStore> {
  // Remote stores are imported on demand: the Redis client is a large npm package that users of
  // the file store should not load.
  switch (options.configType) {
    case "file":
      return new FileStore(options.configFile, { historyDir: `${options.dataDir}/history` });
    case "kv": {
      const { KvStore } = await import("./kv.ts");
      return new KvStore({ path: options.kvPath });
    }
    case "redis": {
      const { RedisStore } = await import("./redis.ts");
      const { host, port, key, password, db, tls, url, sentinels, sentinelName } = options.redis;
      return new RedisStore({ host, port, key, password, db, tls, url, sentinels, sentinelName });
    }
  }
}

/**
 * Whether the store lives elsewhere (and may be unreachable): then the last good config is
 * cached locally, and served when the store cannot be reached at start-up. A local KV database
 * that cannot be opened is a start-up error instead (a mistyped path must not start a proxy with
 * no routes).
 *
 * @example
 * ```ts
 * isRemote(new FileStore("./config.json"), options); // false
 * ```
 */
export function isRemote(store: ConfigStore, options: Options): boolean {
  if (store.kind === "redis") return true;
  return store.kind === "kv" && /^https?:\/\//.test(options.kvPath);
}
