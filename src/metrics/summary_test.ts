import { assertEquals } from "../../tests/_assert.ts";
import { quantile } from "./summary.ts";

Deno.test("quantiles interpolate within their bucket like histogram_quantile", () => {
  const bounds = [0.1, 1, 10];
  assertEquals(quantile(0.5, new Float64Array([0, 10, 0, 0]), bounds), 0.55);
  assertEquals(quantile(0.5, new Float64Array([10, 0, 0, 0]), bounds), 0.05);
  assertEquals(quantile(0.99, new Float64Array([99, 0, 0, 1]), bounds), 0.1);
  // Beyond the last bound: the last bound, as Prometheus answers.
  assertEquals(quantile(0.99, new Float64Array([0, 0, 0, 5]), bounds), 10);
  assertEquals(quantile(0.5, new Float64Array(4), bounds), null);
});
