import { assertEquals } from "../../tests/_assert.ts";
import { CidrSet } from "./cidr.ts";
import { forwardingOf } from "./forwarding.ts";

const SPOOFED = new Headers({
  "x-forwarded-for": "6.6.6.6",
  "x-forwarded-host": "evil.test",
  "x-forwarded-proto": "https",
  "x-real-ip": "6.6.6.6",
});

Deno.test("forwarding: an untrusted client's headers are replaced", () => {
  const trusted = new CidrSet(["10.0.0.0/8"]);
  for (const set of [trusted, new CidrSet([])]) {
    assertEquals(
      forwardingOf(SPOOFED, "a.test", { address: "192.0.2.1", proto: "http" }, set),
      { for: "192.0.2.1", host: "a.test", proto: "http", realIp: "192.0.2.1" },
    );
  }
});

Deno.test("forwarding: a trusted proxy's X-Forwarded-For is appended to, the rest kept", () => {
  const trusted = new CidrSet(["10.0.0.0/8", "::1"]);
  assertEquals(
    forwardingOf(SPOOFED, "a.test", { address: "10.1.1.1", proto: "http" }, trusted),
    { for: "6.6.6.6, 10.1.1.1", host: "evil.test", proto: "https", realIp: "6.6.6.6" },
  );
  assertEquals(
    forwardingOf(new Headers(), "a.test", { address: "::1", proto: "https" }, trusted),
    { for: "::1", host: "a.test", proto: "https", realIp: "::1" },
  );
  assertEquals(
    forwardingOf(
      new Headers({ "x-forwarded-for": " " }),
      "a.test",
      { address: "::ffff:10.0.0.2", proto: "http" },
      trusted,
    ).for,
    "::ffff:10.0.0.2",
  );
});
