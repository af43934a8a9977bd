import { assertEquals } from "../../tests/_assert.ts";
import { UpstreamPool } from "../balance/pool.ts";
import { normalizePrefix, PrefixTable } from "./prefix_table.ts";
import type { Destination } from "./route.ts";
import { forwardTarget } from "./route.ts";

const to = (name: string): Destination => ({ pool: new UpstreamPool(name, []), strip: 0 });
const matched = (table: PrefixTable, target: string) => table.match(target)?.pool.name;

Deno.test("prefix table: the longest prefix on whole segments wins", () => {
  const table = new PrefixTable([
    ["/api/", to("api")],
    ["/api/v2", to("v2")],
    ["/static", to("static")],
  ]);
  assertEquals(matched(table, "/api"), "api");
  assertEquals(matched(table, "/api/"), "api");
  assertEquals(matched(table, "/api/users?x=1"), "api");
  assertEquals(matched(table, "/api?x=/api/v2"), "api");
  assertEquals(matched(table, "/api/v2"), "v2");
  assertEquals(matched(table, "/api/v2/x/y"), "v2");
  assertEquals(matched(table, "/api/v20"), "api");
  assertEquals(matched(table, "/apis"), undefined);
  assertEquals(matched(table, "/static/a.css"), "static");
  assertEquals(matched(table, "/"), undefined);
  assertEquals(matched(table, "*"), undefined);
});

Deno.test("prefix table: the raw path is matched, not decoded nor case-folded", () => {
  const table = new PrefixTable([["/api", to("api")]]);
  assertEquals(matched(table, "/API/x"), undefined);
  assertEquals(matched(table, "/%61pi/x"), undefined);
  assertEquals(matched(table, "/api%2Fx"), undefined);
});

Deno.test("prefix table: / matches every path the others do not", () => {
  const table = new PrefixTable([["/", to("root")], ["/a", to("a")]]);
  assertEquals(matched(table, "/a/b"), "a");
  assertEquals(matched(table, "/b"), "root");
  assertEquals(matched(table, "/"), "root");
});

Deno.test("prefix table: paths longer than every prefix are cut at a slash first", () => {
  const table = new PrefixTable([["/ab", to("ab")]]);
  assertEquals(matched(table, "/ab/" + "x/".repeat(5000)), "ab");
  assertEquals(matched(table, "/abcdefgh"), undefined);
  assertEquals(matched(table, "/abc/ab"), undefined);
});

Deno.test("prefix table: normalised prefixes lose trailing slashes only", () => {
  assertEquals(normalizePrefix("/api/"), "/api");
  assertEquals(normalizePrefix("/api//"), "/api");
  assertEquals(normalizePrefix("/"), "/");
  assertEquals(normalizePrefix("/a/b"), "/a/b");
});

Deno.test("forwardTarget removes the prefix and keeps a leading slash and the query", () => {
  assertEquals(forwardTarget("/api/users?id=1", 4), "/users?id=1");
  assertEquals(forwardTarget("/api?id=1", 4), "/?id=1");
  assertEquals(forwardTarget("/api", 4), "/");
  assertEquals(forwardTarget("/api/", 4), "/");
  assertEquals(forwardTarget("/x", 0), "/x");
  assertEquals(forwardTarget("/x", 1), "/x");
});
