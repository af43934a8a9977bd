/**
 * dynlb's version, from `deno.json` (bundled into the executable by `deno compile`).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** The release version, e.g. `0.1.0`. */
export const VERSION: string = denoJson.version;
