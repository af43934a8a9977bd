/**
 * Request parsing fed through `readRequestHead` and the body readers from an in-memory byte
 * source: every valid request must decode the same at every split point; every refused one must
 * get its status at every split point; random mutations must give a request or a refusal,
 * nothing else. One case per framing rule of RFC 9112 that the listener enforces.
 */
import { assert, assertEquals } from "../../../tests/_assert.ts";
import { bodyReader } from "./body.ts";
import { EofError, Wire } from "./connection.ts";
import { DEFAULT_LIMITS, ParseError } from "./parser.ts";
import { bytesOf, mutations, Parts, splits, textOf } from "./_parts.ts";
import {
  readRequestHead,
  REQUEST_LIMITS,
  RequestError,
  type RequestLimits,
} from "./request_parser.ts";

type Outcome =
  | {
    method: string;
    target: string;
    authority: string | null;
    headers: [string, string][];
    body: string;
    keepAlive: boolean;
    expectContinue: boolean;
    upgrade: string | null;
    /** The target of a pipelined request after this one, or `null`. */
    next: string | null;
  }
  | { status: number }
  | { closed: true };

async function decode(parts: Uint8Array[], limits = REQUEST_LIMITS): Promise<Outcome> {
  const wire = new Wire(new Parts(parts), 32);
  try {
    const head = await readRequestHead(wire, limits);
    if (head === null) return { closed: true };
    let body = "";
    if (head.chunked || head.contentLength > 0) {
      const reader = bodyReader(
        wire,
        head.chunked ? "chunked" : "length",
        head.contentLength,
        DEFAULT_LIMITS,
      );
      for (let c = await reader.next(); c !== null; c = await reader.next()) body += textOf(c);
    }
    return {
      method: head.method,
      target: head.target,
      authority: head.authority,
      headers: head.headers,
      body,
      keepAlive: head.keepAlive,
      expectContinue: head.expectContinue,
      upgrade: head.upgrade,
      next: (await readRequestHead(wire, limits))?.target ?? null,
    };
  } catch (err) {
    if (err instanceof RequestError) return { status: err.status };
    if (err instanceof ParseError) return { status: 400 };
    if (err instanceof EofError) return { closed: true };
    throw err;
  }
}

const VALID: { name: string; text: string; expect: Partial<Outcome> }[] = [
  {
    name: "origin form",
    text: "GET /a/../b%2F?x=1 HTTP/1.1\r\nHost: A.test:8080\r\nAccept:  */* \r\n\r\n",
    expect: {
      method: "GET",
      target: "/a/../b%2F?x=1",
      authority: "A.test:8080",
      headers: [["host", "A.test:8080"], ["accept", "*/*"]],
      keepAlive: true,
      next: null,
    },
  },
  {
    name: "absolute form: the target's authority replaces Host",
    text: "GET http://other.test/p?q HTTP/1.1\r\nHost: a.test\r\n\r\n",
    expect: { target: "/p?q", authority: "other.test", headers: [["host", "other.test"]] },
  },
  {
    name: "absolute form without a path",
    text: "GET HTTPS://other.test:8443?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
    expect: { target: "/?q=1", authority: "other.test:8443" },
  },
  {
    name: "OPTIONS * and OPTIONS in absolute form",
    text: "OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n",
    expect: { method: "OPTIONS", target: "*", authority: "a.test" },
  },
  {
    name: "OPTIONS absolute form without a path is *",
    text: "OPTIONS http://b.test HTTP/1.1\r\nHost: a.test\r\n\r\n",
    expect: { target: "*", authority: "b.test" },
  },
  {
    name: "HTTP/1.0 without Host, closing by default",
    text: "GET / HTTP/1.0\r\n\r\n",
    expect: { authority: null, keepAlive: false },
  },
  {
    name: "HTTP/1.0 keep-alive",
    text: "GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
    expect: { keepAlive: true, headers: [["host", "a"]] },
  },
  {
    name: "Connection: close",
    text: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    expect: { keepAlive: false },
  },
  {
    name: "hop-by-hop and Connection-named fields are dropped",
    text: "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n" +
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\nTrailer: x\r\nX-Keep: 2\r\n\r\n",
    expect: { headers: [["host", "a"], ["x-keep", "2"]] },
  },
  {
    name: "Content-Length body, then a pipelined request",
    text:
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    expect: { body: "hello", next: "/2" },
  },
  {
    name: "identical Content-Length values are one",
    text: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello",
    expect: { body: "hello", headers: [["host", "a"]] },
  },
  {
    name: "chunked body with extensions and trailers, dropped",
    text: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
    expect: { body: "abcde", next: null },
  },
  {
    name: "Expect: 100-continue",
    text: "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
    expect: { expectContinue: true, body: "x", headers: [["host", "a"]] },
  },
  {
    name: "Upgrade with Connection: upgrade",
    text: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    expect: { upgrade: "websocket", headers: [["host", "a"]] },
  },
  {
    name: "Upgrade without Connection: upgrade is no upgrade",
    text: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    expect: { upgrade: null, headers: [["host", "a"]] },
  },
  {
    name: "h2c is never forwarded",
    text: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
      "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    expect: { upgrade: null, headers: [["host", "a"]] },
  },
  {
    name: "empty lines before the request line",
    text: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    expect: { method: "GET", target: "/" },
  },
  {
    name: "obs-text in a value",
    text: "GET / HTTP/1.1\r\nHost: a\r\nX-L: caf\xe9\r\n\r\n",
    expect: { headers: [["host", "a"], ["x-l", "caf\xe9"]] },
  },
];

Deno.test("valid requests decode the same at every split", async () => {
  for (const v of VALID) {
    const bytes = bytesOf(v.text);
    const whole = await decode([bytes]);
    assert("method" in whole, `${v.name}: ${JSON.stringify(whole)}`);
    for (const [key, value] of Object.entries(v.expect)) {
      assertEquals((whole as Record<string, unknown>)[key], value, `${v.name}: ${key}`);
    }
    for (const parts of splits(bytes)) {
      assertEquals(await decode(parts), whole, `${v.name} split ${parts[0].length}`);
    }
  }
});

const H = "Host: a\r\n";

/** One entry per rule: the request and the status it gets (the listener then closes). */
const REFUSED: { name: string; text: string; status: number; limits?: RequestLimits }[] = [
  // Request line.
  { name: "method not a token", text: "G(T / HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "two spaces", text: "GET  / HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "no version", text: "GET /\r\n" + H + "\r\n", status: 400 },
  { name: "lower-case version", text: "GET / http/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "space after version", text: "GET / HTTP/1.1 \r\n" + H + "\r\n", status: 400 },
  { name: "HTTP/2.0", text: "GET / HTTP/2.0\r\n" + H + "\r\n", status: 505 },
  { name: "HTTP/1.2", text: "GET / HTTP/1.2\r\n" + H + "\r\n", status: 505 },
  { name: "HTTP/0.9 style", text: "GET /\r\n\r\n", status: 400 },
  { name: "control byte in target", text: "GET /a\x01 HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "relative target", text: "GET a/b HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "* without OPTIONS", text: "GET * HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "CONNECT", text: "CONNECT a.test:443 HTTP/1.1\r\n" + H + "\r\n", status: 405 },
  { name: "ftp scheme", text: "GET ftp://a/ HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "userinfo", text: "GET http://u@a/ HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  { name: "empty authority", text: "GET http:/// HTTP/1.1\r\n" + H + "\r\n", status: 400 },
  {
    name: "target over 8 KiB",
    text: "GET /" + "a".repeat(8192) + " HTTP/1.1\r\n" + H + "\r\n",
    status: 414,
  },
  { name: "bare LF", text: "GET / HTTP/1.1\n" + H + "\n", status: 400 },
  { name: "too many empty lines", text: "\r\n".repeat(9) + "GET / HTTP/1.1\r\n\r\n", status: 400 },
  // Header fields.
  { name: "space before colon", text: "GET / HTTP/1.1\r\n" + H + "X : y\r\n\r\n", status: 400 },
  { name: "space in name", text: "GET / HTTP/1.1\r\n" + H + "X Y: y\r\n\r\n", status: 400 },
  { name: "no colon", text: "GET / HTTP/1.1\r\n" + H + "XY\r\n\r\n", status: 400 },
  { name: "empty name", text: "GET / HTTP/1.1\r\n" + H + ": y\r\n\r\n", status: 400 },
  { name: "obs-fold", text: "GET / HTTP/1.1\r\n" + H + "X: a\r\n b\r\n\r\n", status: 400 },
  { name: "bare CR in value", text: "GET / HTTP/1.1\r\n" + H + "X: a\rb\r\n\r\n", status: 400 },
  { name: "NUL in value", text: "GET / HTTP/1.1\r\n" + H + "X: a\0b\r\n\r\n", status: 400 },
  { name: "control in value", text: "GET / HTTP/1.1\r\n" + H + "X: a\x1bb\r\n\r\n", status: 400 },
  { name: "DEL in value", text: "GET / HTTP/1.1\r\n" + H + "X: a\x7fb\r\n\r\n", status: 400 },
  { name: "HTTP/1.1 without Host", text: "GET / HTTP/1.1\r\nX: y\r\n\r\n", status: 400 },
  { name: "two Hosts", text: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400 },
  { name: "two equal Hosts", text: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", status: 400 },
  { name: "Host with a path", text: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400 },
  { name: "Host with a space", text: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400 },
  // Framing.
  {
    name: "Transfer-Encoding with Content-Length",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    status: 400,
  },
  {
    name: "chunked not last",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, gzip\r\n\r\n",
    status: 400,
  },
  {
    name: "chunked twice",
    text: "POST / HTTP/1.1\r\n" + H +
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    status: 400,
  },
  {
    name: "only gzip",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip\r\n\r\n",
    status: 400,
  },
  {
    name: "unknown coding",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: foo, chunked\r\n\r\n",
    status: 501,
  },
  {
    name: "identity coding (removed from HTTP/1.1)",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: identity\r\n\r\n",
    status: 501,
  },
  {
    name: "Transfer-Encoding in HTTP/1.0",
    text: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    status: 400,
  },
  {
    name: "different Content-Length values",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    status: 400,
  },
  {
    name: "different values in one list",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length: 5, 6\r\n\r\nhello!",
    status: 400,
  },
  {
    name: "Content-Length with a sign",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length: +5\r\n\r\nhello",
    status: 400,
  },
  {
    name: "Content-Length in hex",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length: 0x5\r\n\r\nhello",
    status: 400,
  },
  {
    name: "empty Content-Length",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length:\r\n\r\n",
    status: 400,
  },
  {
    name: "huge Content-Length",
    text: "POST / HTTP/1.1\r\n" + H + "Content-Length: 99999999999999999999\r\n\r\n",
    status: 400,
  },
  {
    name: "chunk size not hex",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    status: 400,
  },
  {
    name: "chunk size with 0x",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    status: 400,
  },
  {
    name: "chunk size unbounded",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n" + "f".repeat(14) +
      "\r\n",
    status: 400,
  },
  {
    name: "chunk extension too long",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n1;" + "e".repeat(5000) +
      "\r\n",
    status: 400,
  },
  {
    name: "chunk data without CRLF",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    status: 400,
  },
  {
    name: "trailer section too large",
    text: "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n0\r\n" +
      "X: y\r\n".repeat(300) + "\r\n",
    status: 400,
  },
  // Limits.
  {
    name: "head over 64 KiB",
    text: "GET / HTTP/1.1\r\n" + H + "X: " + "a".repeat(66_000) + "\r\n\r\n",
    status: 431,
  },
  {
    name: "more than 256 fields",
    text: "GET / HTTP/1.1\r\n" + H + "X: y\r\n".repeat(256) + "\r\n",
    status: 431,
  },
  {
    name: "head over a small limit",
    text: "GET / HTTP/1.1\r\n" + H + "X: " + "a".repeat(100) + "\r\n\r\n",
    status: 431,
    limits: { maxHeadBytes: 64, maxHeaders: 10, maxTargetBytes: 32 },
  },
];

Deno.test("refused requests get their status at every split", async () => {
  for (const r of REFUSED) {
    const bytes = bytesOf(r.text);
    const whole = await decode([bytes], r.limits);
    assertEquals(whole, { status: r.status }, r.name);
    for (const parts of splits(bytes, [8200, 65_535])) {
      assertEquals(await decode(parts, r.limits), whole, `${r.name} split ${parts[0].length}`);
    }
  }
});

Deno.test("a head or body cut short is a closed connection, not a request", async () => {
  for (
    const text of [
      "",
      "GET / HTTP/1.1\r\nHost: a\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ]
  ) {
    assertEquals(await decode([bytesOf(text)]), { closed: true }, JSON.stringify(text));
  }
});

const INTERESTING = bytesOf("\r\n: ;,0123456789abcdefABCDEF\t\0\x7f\xff-HTTP/1.*?@");

Deno.test("random mutations give a request or a refusal, nothing else", async () => {
  const seeds = [...VALID.map((v) => v.text), ...REFUSED.slice(0, 50).map((r) => r.text)];
  const limits = { maxHeadBytes: 2048, maxHeaders: 16, maxTargetBytes: 256 };
  let refused = 0;
  for (const { parts } of mutations(seeds, 0x10a, 5000, INTERESTING)) {
    const outcome = await decode(parts, limits);
    if ("status" in outcome) refused++;
    else if ("method" in outcome) {
      // What reaches a server is clean: token names, no CR, LF or NUL anywhere.
      for (const [name, value] of outcome.headers) {
        assert(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name), `name ${JSON.stringify(name)}`);
        assert(!/[\r\n\0]/.test(value), `value ${JSON.stringify(value)}`);
      }
      assert(/^(\/[\x21-\x7e]*|\*)$/.test(outcome.target), `target ${outcome.target}`);
      assertEquals(
        whole(outcome.headers, "host"),
        outcome.authority === null ? 0 : 1,
        "one Host, the authority",
      );
    }
  }
  assert(refused > 0 && refused < 5000, `refused: ${refused}`);
});

function whole(headers: [string, string][], name: string): number {
  return headers.filter(([n]) => n === name).length;
}
