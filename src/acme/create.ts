/**
 * Opens the ACME store that belongs to the config store: ACME state lives where the config
 * lives, so a fleet sharing a config store shares its account and certificates too.
 *
 * @module
 */
import type { ConfigStore } from "../store/store.ts";
import type { KvStore } from "../store/kv.ts";
import type { RedisStore } from "../store/redis.ts";
import { FileAcmeStore } from "./file_store.ts";
import type { AcmeStore } from "./store.ts";

/**
 * The ACME store beside `store`: `dataDir/certs/` for the file store, the same KV database or
 * the same Redis (keys named after the config key) otherwise.
 *
 * @example
 * ```ts
 * const acmeStore = await createAcmeStore(configStore, "./.data");
 * ```
 */
export async function createAcmeStore(store: ConfigStore, dataDir: string): Promise<AcmeStore> {
  switch (store.kind) {
    case "kv": {
      const { KvAcmeStore } = await import("./kv_store.ts");
      return new KvAcmeStore(await (store as KvStore).database());
    }
    case "redis": {
      const { RedisAcmeStore } = await import("./redis_store.ts");
      return new RedisAcmeStore(store as RedisStore);
    }
    default:
      return new FileAcmeStore(`${dataDir}/certs`);
  }
}
