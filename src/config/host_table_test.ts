import { assertEquals } from "../../tests/_assert.ts";
import { HostTable } from "./host_table.ts";

function table(): HostTable<string> {
  const t = new HostTable<string>();
  t.set("*.example.com", "wild");
  t.set("*.eu.example.com", "eu");
  t.set("www.example.com", "www");
  t.set("*.com", "com");
  return t;
}

Deno.test("host table: an exact name wins over every wildcard", () => {
  assertEquals(table().find("www.example.com"), "www");
});

Deno.test("host table: the longest wildcard wins among wildcards", () => {
  const t = table();
  assertEquals(t.find("a.example.com"), "wild");
  assertEquals(t.find("a.b.example.com"), "wild");
  assertEquals(t.find("x.eu.example.com"), "eu");
  assertEquals(t.find("y.x.eu.example.com"), "eu");
  assertEquals(t.find("eu.example.com"), "wild");
  assertEquals(t.find("other.com"), "com");
});

Deno.test("host table: a wildcard does not match the bare domain", () => {
  const t = new HostTable<string>();
  t.set("*.example.com", "wild");
  assertEquals(t.find("example.com"), undefined);
  assertEquals(t.find(".example.com"), undefined);
  assertEquals(t.find("notexample.com"), undefined);
  assertEquals(t.find("com"), undefined);
});

Deno.test("host table: without wildcards only exact names match", () => {
  const t = new HostTable<number>();
  t.set("a.test", 1);
  assertEquals(t.find("a.test"), 1);
  assertEquals(t.find("b.a.test"), undefined);
  assertEquals(t.exact("a.test"), 1);
  assertEquals(t.size, 1);
});

Deno.test("host table: only suffixes as long as the longest wildcard are tried", () => {
  const t = table();
  const many = "a.".repeat(10_000) + "x.eu.example.com";
  assertEquals(t.find(many), "eu");
  assertEquals(t.find("a.".repeat(10_000) + "example.com"), "wild");
  assertEquals(t.find("a.".repeat(10_000) + "org"), undefined);
  assertEquals(t.find("x.eu.example.com"), "eu");
  assertEquals(t.find("eu.example.com"), "wild");
  assertEquals(t.find("com"), undefined);
  assertEquals(t.find(".com"), undefined);
});
