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
 * const store = createStore(options); // FileStore for --config-type file
 * ```
 */
export function createStore(options: Options): ConfigStore {
  switch (options.configType) {
    case "file":
      return new FileStore(options.configFile);
    default:
      throw new Error(`config type "${options.configType}" is not available yet`);
  }
}
