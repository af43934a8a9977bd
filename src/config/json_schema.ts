/**
 * The JSON Schema of the configuration document (`dynlb schema`), generated from the valibot
 * schema so the two never drift. Editors use it to validate and complete `config.json` (point
 * `"$schema"` at the file). It covers structure, types, ranges and unknown fields; what a JSON
 * Schema cannot say — unique names, hosts pointing at existing backends, the shape of addresses
 * and host names — `dynlb check` and the admin API still check.
 *
 * @module
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { ConfigSchema } from "./schema.ts";

/**
 * The schema as a JSON value (draft-07).
 *
 * @example
 * ```ts
 * console.log(JSON.stringify(configJsonSchema(), null, 2));
 * ```
 */
export function configJsonSchema(): Record<string, unknown> {
  // `ignore`: custom checks (v.check) have no JSON Schema form; they stay dynlb's own.
  const generated = toJsonSchema(ConfigSchema, { errorMode: "ignore" }) as Record<string, unknown>;
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "dynlb configuration",
    description: "Backends, their servers and health checks, and the hosts routed to them.",
    ...generated,
  };
}
