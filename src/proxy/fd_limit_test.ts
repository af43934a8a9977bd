import { assert, assertEquals } from "../../tests/_assert.ts";
import {
  connectionBudget,
  descriptorLimit,
  freeDescriptors,
  openFileLimit,
  PROBE_CAP,
} from "./fd_limit.ts";

Deno.test("the connection budget leaves descriptors for upstreams and the admin API", () => {
  assertEquals(connectionBudget(16384, 1024), 384);
  assertEquals(connectionBudget(16384, 65536), 16384);
  assertEquals(connectionBudget(100, 1024), 100);
  assertEquals(connectionBudget(16384, undefined), 16384);
  assertEquals(connectionBudget(16384, 100), 1);
});

Deno.test("the open-file limit is read from /proc on Linux", () => {
  const limit = openFileLimit();
  if (Deno.build.os === "linux") assert(limit === undefined || limit > 0);
});

Deno.test("free descriptors are counted up to what is asked, and given back", () => {
  assertEquals(freeDescriptors(50), 50);
  assertEquals(freeDescriptors(50), 50);
  // Enough free for 10 connections (or a readable limit): nothing to lower.
  const limit = descriptorLimit(10);
  assert(limit === undefined || limit === openFileLimit(), `limit ${limit}`);
  assert(PROBE_CAP > 4096, "the probe finds the usual 4,096 limit");
});
