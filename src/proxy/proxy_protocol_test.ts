/**
 * PROXY protocol parsing: valid headers give the same answer at every split point (fed as a
 * growing prefix, as a listener reads them), malformed ones fail with `ProxyProtocolError`, and
 * random mutations never raise anything else nor change their mind as more bytes arrive.
 */
import { assert, assertEquals } from "../../tests/_assert.ts";
import {
  ipv6,
  parseProxyHeader,
  type ProxyHeader,
  proxyOpening,
  ProxyProtocolError,
  V1_MAX_BYTES,
  V2_MAX_BYTES,
} from "./proxy_protocol.ts";
import {
  ascii,
  be16,
  concat,
  proxyV2 as v2,
  V2_SIGNATURE as SIGNATURE,
} from "../../tests/_proxy_header.ts";

type Outcome = ProxyHeader | null | { error: string };

function outcome(bytes: Uint8Array): Outcome {
  try {
    return parseProxyHeader(bytes);
  } catch (err) {
    if (err instanceof ProxyProtocolError) return { error: err.message };
    throw err;
  }
}

/** Every prefix shorter than the header is "need more"; every longer input gives `expected`. */
function assertAtEverySplit(bytes: Uint8Array, expected: ProxyHeader) {
  for (let k = 0; k < expected.length; k++) {
    assertEquals(outcome(bytes.subarray(0, k)), null, `prefix of ${k} bytes`);
  }
  for (let k = expected.length; k <= bytes.length; k++) {
    assertEquals(outcome(bytes.subarray(0, k)), expected, `prefix of ${k} bytes`);
  }
}

const TAIL = ascii("GET / HTTP/1.1\r\n");

Deno.test("proxy protocol v1: TCP4, TCP6 and UNKNOWN at every split", () => {
  const tcp4 = ascii("PROXY TCP4 192.0.2.1 198.51.100.22 51000 443\r\n");
  assertAtEverySplit(concat(tcp4, TAIL), {
    version: 1,
    length: tcp4.length,
    source: { hostname: "192.0.2.1", port: 51000 },
    destination: { hostname: "198.51.100.22", port: 443 },
  });
  const tcp6 = ascii("PROXY TCP6 2001:DB8::1 ::ffff:10.0.0.1 0 65535\r\n");
  assertAtEverySplit(concat(tcp6, TAIL), {
    version: 1,
    length: tcp6.length,
    source: { hostname: "2001:db8::1", port: 0 },
    destination: { hostname: "::ffff:10.0.0.1", port: 65535 },
  });
  for (const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"]) {
    assertAtEverySplit(concat(ascii(line), TAIL), { version: 1, length: line.length });
  }
});

Deno.test("proxy protocol v1: the longest header (107 bytes) is accepted, one more is not", () => {
  const v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  // The specification's worst case: UNKNOWN followed by two full IPv6 addresses and ports.
  const longest = ascii(`PROXY UNKNOWN ${v6} ${v6} 65535 65535\r\n`);
  assertEquals(longest.length, V1_MAX_BYTES);
  assertEquals(parseProxyHeader(longest)?.length, V1_MAX_BYTES);
  assertEquals(parseProxyHeader(ascii(`PROXY TCP6 ${v6} ${v6} 65535 65535\r\n`))?.length, 104);
  const unknown = ascii(`PROXY UNKNOWN ${"x".repeat(V1_MAX_BYTES - 16)}\r\n`);
  assertEquals(unknown.length, V1_MAX_BYTES);
  assertEquals(parseProxyHeader(unknown)?.length, V1_MAX_BYTES);
  const tooLong = ascii(`PROXY UNKNOWN ${"x".repeat(V1_MAX_BYTES - 15)}\r\n`);
  assert("error" in (outcome(tooLong) as object));
  // Without a CRLF the parser gives up once 107 bytes cannot hold a header.
  const endless = ascii(`PROXY UNKNOWN ${"x".repeat(200)}`);
  assertEquals(outcome(endless.subarray(0, V1_MAX_BYTES - 2)), null);
  assert("error" in (outcome(endless.subarray(0, V1_MAX_BYTES - 1)) as object));
});

Deno.test("proxy protocol v1: malformed lines are refused", () => {
  for (
    const line of [
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000 443\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000 443\r\r\n",
      "PROXY TCP4 192.0.2.1  198.51.100.22 51000 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000 443 \r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000\r\n",
      "PROXY TCP4 2001:db8::1 198.51.100.22 51000 443\r\n",
      "PROXY TCP6 192.0.2.1 2001:db8::2 51000 443\r\n",
      "PROXY TCP6 fe80::1%eth0 2001:db8::2 51000 443\r\n",
      "PROXY TCP4 192.0.2.256 198.51.100.22 51000 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 65536 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 051000 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 -1 443\r\n",
      "PROXY TCP4 localhost 198.51.100.22 1 443\r\n",
      "PROXY UDP4 192.0.2.1 198.51.100.22 51000 443\r\n",
      "PROXY tcp4 192.0.2.1 198.51.100.22 51000 443\r\n",
      "PROXY \r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000 44\u00e93\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.22 51000 4\x0043\r\n",
      "PROXY  TCP4 192.0.2.1 198.51.100.22 51000 443\r\n",
      "proxy TCP4 192.0.2.1 198.51.100.22 51000 443\r\n",
      "GET / HTTP/1.1\r\n",
    ]
  ) {
    const result = outcome(ascii(line));
    assert(result !== null && "error" in result, `${JSON.stringify(line)} gave ${result}`);
  }
});

Deno.test("proxy protocol v2: TCP over IPv4 and IPv6, with TLVs, at every split", () => {
  const v4 = v2(0x21, 0x11, [192, 0, 2, 1, 198, 51, 100, 22, ...be16(51000), ...be16(443)]);
  assertAtEverySplit(concat(v4, TAIL), {
    version: 2,
    length: 28,
    source: { hostname: "192.0.2.1", port: 51000 },
    destination: { hostname: "198.51.100.22", port: 443 },
  });
  const source6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const destination6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];
  // An ALPN TLV and a NOOP TLV after the addresses (skipped).
  const tlvs = [0x01, 0, 2, 0x68, 0x32, 0x04, 0, 3, 0, 0, 0];
  const v6 = v2(0x21, 0x21, [...source6, ...destination6, ...be16(1), ...be16(8080), ...tlvs]);
  assertAtEverySplit(concat(v6, TAIL), {
    version: 2,
    length: v6.length,
    source: { hostname: "2001:db8::1", port: 1 },
    destination: { hostname: "::ffff:10.0.0.1", port: 8080 },
  });
  // UDP families are accepted as the specification lists them.
  assertEquals(
    parseProxyHeader(v2(0x21, 0x12, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]))?.source,
    { hostname: "1.2.3.4", port: 1 },
  );
});

Deno.test("proxy protocol v2: LOCAL, UNSPEC and UNIX keep the real peer", () => {
  // LOCAL: whatever the family byte says, the addresses are ignored (a balancer's health check).
  for (const family of [0x00, 0x11, 0xff]) {
    const local = v2(0x20, family, [1, 2, 3]);
    assertAtEverySplit(concat(local, TAIL), { version: 2, length: 19 });
  }
  assertEquals(parseProxyHeader(v2(0x21, 0x00, [])), { version: 2, length: 16 });
  const unix = v2(0x21, 0x31, new Uint8Array(216).fill(0x61));
  assertEquals(parseProxyHeader(unix), { version: 2, length: 232 });
});

Deno.test("proxy protocol v2: malformed headers are refused as soon as the fixed part shows it", () => {
  const body = [192, 0, 2, 1, 198, 51, 100, 22, 0, 1, 0, 2];
  for (
    const [what, bytes] of [
      ["version 1 in the binary format", v2(0x11, 0x11, body)],
      ["version 3", v2(0x31, 0x11, body)],
      ["command 2", v2(0x22, 0x11, body)],
      ["family 4", v2(0x21, 0x41, body)],
      ["protocol 3", v2(0x21, 0x13, body)],
      ["IPv4 with an unspecified protocol", v2(0x21, 0x10, body)],
      ["IPv4 addresses cut short", v2(0x21, 0x11, body.slice(0, 11))],
      ["IPv6 with IPv4-sized addresses", v2(0x21, 0x21, body)],
      ["UNIX addresses cut short", v2(0x21, 0x31, new Uint8Array(100))],
    ] as const
  ) {
    const fixed = outcome(bytes.subarray(0, 16));
    assert(fixed !== null && "error" in fixed, `${what}: ${JSON.stringify(fixed)}`);
  }
  const huge = concat(SIGNATURE, [0x21, 0x11, ...be16(V2_MAX_BYTES)]);
  assert("error" in (outcome(huge) as object), "a header over the bound");
  const largest = v2(0x21, 0x11, [...body, ...new Uint8Array(V2_MAX_BYTES - 28)]);
  assertEquals(parseProxyHeader(largest)?.length, V2_MAX_BYTES);
});

Deno.test("proxyOpening tells HTTP from a PROXY header with as few bytes as possible", () => {
  assertEquals(proxyOpening(new Uint8Array()), "partial");
  assertEquals(proxyOpening(ascii("PROXY")), "partial");
  assertEquals(proxyOpening(ascii("PROXY ")), "proxy");
  assertEquals(proxyOpening(ascii("POST / HTTP/1.1")), "other");
  assertEquals(proxyOpening(ascii("\r\n\r\n")), "partial");
  assertEquals(proxyOpening(ascii("\r\nGET")), "other");
  assertEquals(proxyOpening(Uint8Array.from(SIGNATURE)), "proxy");
  assertEquals(proxyOpening(Uint8Array.from(SIGNATURE.slice(0, 11))), "partial");
});

Deno.test("ipv6 text is RFC 5952's", () => {
  const text = (groups: number[]) =>
    ipv6(Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff])), 0);
  assertEquals(text([0, 0, 0, 0, 0, 0, 0, 0]), "::");
  assertEquals(text([0, 0, 0, 0, 0, 0, 0, 1]), "::1");
  assertEquals(text([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1");
  assertEquals(text([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]), "2001:db8:0:1:1:1:1:1");
  assertEquals(text([0x2001, 0, 0, 1, 0, 0, 0, 1]), "2001:0:0:1::1");
  assertEquals(text([1, 0, 0, 0, 0, 0, 0, 0]), "1::");
  assertEquals(text([0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0]), "fe80::abcd:0:0:0");
  assertEquals(text([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]), "::ffff:192.0.2.1");
});

Deno.test("proxy protocol: random mutations fail cleanly and never change their mind", () => {
  let seed = 11;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const seeds = [
    ascii("PROXY TCP4 192.0.2.1 198.51.100.22 51000 443\r\nGET / HTTP/1.1\r\n"),
    ascii("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\nGET / HTTP/1.1\r\n"),
    ascii("PROXY UNKNOWN\r\nGET / HTTP/1.1\r\n"),
    concat(v2(0x21, 0x11, [192, 0, 2, 1, 198, 51, 100, 22, 0, 1, 0, 2]), TAIL),
    concat(v2(0x21, 0x21, new Uint8Array(40).fill(7)), TAIL),
    concat(v2(0x20, 0x00, []), TAIL),
  ];
  const interesting = [0x00, 0x0a, 0x0d, 0x20, 0x2e, 0x30, 0x3a, 0x39, 0x7f, 0xff, 0x21, 0x11];
  let parsed = 0;
  let refused = 0;
  for (let round = 0; round < 3000; round++) {
    const bytes = Uint8Array.from(seeds[random(seeds.length)]);
    const edits = 1 + random(3);
    for (let e = 0; e < edits; e++) {
      const at = random(bytes.length);
      bytes[at] = random(2) ? interesting[random(interesting.length)] : random(256);
    }
    // Feed growing prefixes as a listener would: once an answer is given, it stays.
    let settled: Outcome = null;
    for (let k = 0; k <= bytes.length; k++) {
      const result = outcome(bytes.subarray(0, k));
      if (settled !== null) {
        assertEquals(result, settled, `prefix ${k} of ${[...bytes]}`);
        continue;
      }
      settled = result;
      if (result !== null && !("error" in result)) {
        assert(result.length <= k, "a header never claims bytes it has not seen");
        if (result.source) {
          assert(result.source.port >= 0 && result.source.port <= 65535);
        }
      }
    }
    if (settled === null) continue;
    if ("error" in settled) refused++;
    else parsed++;
  }
  assert(parsed > 100 && refused > 100, `parsed ${parsed}, refused ${refused}`);
});
