import { assert, assertEquals } from "../../tests/_assert.ts";
import { CidrError, CidrSet, parseCidr, parseIp } from "./cidr.ts";

function hex(bytes: Uint8Array | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("parseIp: IPv4 is held IPv4-mapped", () => {
  assertEquals(hex(parseIp("127.0.0.1")), "00000000000000000000ffff7f000001");
  assertEquals(hex(parseIp("::ffff:127.0.0.1")), "00000000000000000000ffff7f000001");
  assertEquals(hex(parseIp("::ffff:7f00:1")), "00000000000000000000ffff7f000001");
  assertEquals(hex(parseIp("0.0.0.0")), "00000000000000000000ffff00000000");
  assertEquals(hex(parseIp("255.255.255.255")), "00000000000000000000ffffffffffff");
});

Deno.test("parseIp: IPv6 forms", () => {
  assertEquals(hex(parseIp("::")), "0".repeat(32));
  assertEquals(hex(parseIp("::1")), "0".repeat(31) + "1");
  assertEquals(hex(parseIp("1::")), "0001" + "0".repeat(28));
  assertEquals(hex(parseIp("2001:db8::8:800:200c:417a")), "20010db80000000000080800200c417a");
  assertEquals(
    hex(parseIp("2001:DB8:0:0:8:800:200C:417A")),
    "20010db8000000000008080020" + "0c417a",
  );
  assertEquals(hex(parseIp("fe80::1%eth0")), "fe80" + "0".repeat(27) + "1");
  assertEquals(hex(parseIp("64:ff9b::192.0.2.33")), "0064ff9b0000000000000000c0000221");
});

Deno.test("parseIp: not addresses", () => {
  for (
    const bad of [
      "",
      "localhost",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.-4",
      " 1.2.3.4",
      "1.2.3.4 ",
      "[::1]",
      ":::",
      "1:::2",
      "1::2::3",
      ":1",
      "1:",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7::8",
      "12345::",
      "g::",
      "::1.2.3",
      "1.2.3.4::",
      "::1.2.3.4:5",
    ]
  ) {
    assertEquals(parseIp(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("parseCidr: prefixes count over 128 bits; bad ranges are named", () => {
  assertEquals(parseCidr("10.0.0.0/8").prefix, 104);
  assertEquals(parseCidr("10.0.0.1").prefix, 128);
  assertEquals(parseCidr("::/0").prefix, 0);
  assertEquals(parseCidr("fd00::/8").prefix, 8);
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "a.b.c.d/8", "/8"]) {
    let error: unknown;
    try {
      parseCidr(bad);
    } catch (err) {
      error = err;
    }
    assert(error instanceof CidrError, bad);
    assert((error as Error).message.includes(bad), (error as Error).message);
  }
});

Deno.test("CidrSet matches IPv4, IPv6 and IPv4-mapped peers", () => {
  const set = new CidrSet(["10.0.0.0/8", "192.168.1.128/25", "2001:db8::/32", "127.0.0.1"]);
  assert(set.has("10.0.0.0"));
  assert(set.has("10.255.255.255"));
  assert(set.has("::ffff:10.20.30.40"), "IPv4-mapped peer");
  assert(!set.has("11.0.0.0"));
  assert(!set.has("9.255.255.255"));
  assert(set.has("192.168.1.128"));
  assert(set.has("192.168.1.255"));
  assert(!set.has("192.168.1.127"), "outside the /25 by one bit");
  assert(set.has("2001:db8:ffff::1"));
  assert(!set.has("2001:db9::1"));
  assert(set.has("127.0.0.1"));
  assert(!set.has("127.0.0.2"));
  assert(!set.has("::1"), "IPv6 loopback is not IPv4 loopback");
  assert(!set.has("not an address"));
  // An IPv4 range does not match IPv6 addresses that share its low bits.
  assert(!set.has("::a00:1"));
  assert(new CidrSet(["::/0"]).has("8.8.8.8"), "::/0 covers IPv4-mapped addresses too");
  assert(new CidrSet(["0.0.0.0/0"]).has("8.8.8.8"));
  assert(!new CidrSet(["0.0.0.0/0"]).has("::1"));
  assert(new CidrSet(["::ffff:0:0/96"]).has("1.2.3.4"));
  assert(new CidrSet(["10.1.2.3/8"]).has("10.9.9.9"), "host bits are ignored");
});

Deno.test("an empty CidrSet trusts nobody", () => {
  const none = new CidrSet([]);
  assert(none.empty);
  assert(!none.has("127.0.0.1"));
  assert(!new CidrSet(["::1"]).empty);
});

Deno.test("CidrSet agrees with a bit-by-bit reference on random addresses", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 2000; i++) {
    const a = Array.from({ length: 4 }, () => Math.floor(random() * 256));
    const b = a.map((x) => random() < 0.7 ? x : Math.floor(random() * 256));
    const prefix = Math.floor(random() * 33);
    const bitsOf = (q: number[]) => q.map((x) => x.toString(2).padStart(8, "0")).join("");
    const expected = bitsOf(a).slice(0, prefix) === bitsOf(b).slice(0, prefix);
    assertEquals(
      new CidrSet([`${a.join(".")}/${prefix}`]).has(b.join(".")),
      expected,
      `${a.join(".")}/${prefix} vs ${b.join(".")}`,
    );
  }
});
