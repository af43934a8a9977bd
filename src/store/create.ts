/**
 * Chooses the configuration store from the options (`--config-type`).
 *
 * @module
 */
import type { Options } from "../cli/options.ts";
import { FileStore } from "./file.ts";
import { KvStore } from "./kv.ts";
import { RedisStore } from "./redis.ts";
import type { ConfigStore } from "./store.ts";

/**
 * Builds the store `--config-type` names.
 *
 * @example
 * ```ts
 * const store = createStore(options); // FileStore for --config-type file
 * ```
 */
export function createStore(options: Options): ConfigStore {
  switch (options.configType) {
    case "file":
      return new FileStore(options.configFile);
    case "kv":
      return new KvStore({ path: options.kvPath });
    case "redis": {
      const { host, port, key, password, db, tls, url } = options.redis;
      return new RedisStore({ host, port, key, password, db, tls, url });
    }
  }
}

/**
 * Whether the store lives elsewhere (and may be unreachable): then the last good config is
 * cached locally, and served when the store cannot be reached at start-up.
 */
export function isRemote(store: ConfigStore): boolean {
  return store.kind !== "file";
}
