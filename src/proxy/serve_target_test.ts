import { assertEquals } from "../../tests/_assert.ts";
import { serveTarget } from "./serve_target.ts";

/** A request as Deno.serve builds it: `url` from the target or Host, headers as sent. */
function served(url: string, host: string | null) {
  return new Request(url, { headers: host === null ? {} : { host } });
}

function facts(url: string, host: string | null, proto: "http" | "https" = "http") {
  const t = serveTarget(served(url, host), proto);
  return "refused" in t ? t.refused : [t.authority, t.target, t.headers.get("host")];
}

Deno.test("serveTarget: origin form routes by Host, verbatim", () => {
  // (`new Request` normalises its URL; Deno.serve keeps Host verbatim: see tests/proxy_rules_test.ts.)
  assertEquals(facts("http://a.test:8080/x?y", "a.test:8080"), [
    "a.test:8080",
    "/x?y",
    "a.test:8080",
  ]);
  assertEquals(facts("http://localhost:8080/x", null), [null, "/x", null]);
});

Deno.test("serveTarget: absolute form routes by the target's authority, which replaces Host", () => {
  assertEquals(facts("http://b.test/x", "a.test"), ["b.test", "/x", "b.test"]);
  assertEquals(facts("http://b.test?q", "a.test"), ["b.test", "/?q", "b.test"]);
  assertEquals(facts("http://b.test", "a.test"), ["b.test", "/", "b.test"]);
  assertEquals(facts("http://u@b.test/", "a.test"), "invalid authority in request target");
});

Deno.test("serveTarget: HTTPS without Host (HTTP/2) routes by :authority", () => {
  assertEquals(facts("https://b.test/x", null, "https"), ["b.test", "/x", "b.test"]);
});
