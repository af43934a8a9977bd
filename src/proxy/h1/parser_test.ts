/**
 * Response parsing fed through the real connection code from an in-memory byte source: every
 * valid response must decode the same at every split point; malformed ones must fail with the
 * parser's errors; random mutations must never raise anything else.
 */
import { assert, assertEquals } from "../../../tests/_assert.ts";
import { bodyReader, framingOf } from "./body.ts";
import { EofError, readResponseHead, Wire } from "./connection.ts";
import { bytesOf, mutations, Parts, splits, textOf } from "./_parts.ts";
import { DEFAULT_LIMITS, type HeadLimits, ParseError } from "./parser.ts";

type Outcome =
  | {
    status: number;
    reason: string;
    headers: [string, string][];
    body: string;
    keepAlive: boolean;
    complete: boolean;
    rest: number;
  }
  | { error: string };

async function decode(
  parts: Uint8Array[],
  method = "GET",
  limits: HeadLimits = DEFAULT_LIMITS,
): Promise<Outcome> {
  // A tiny initial buffer makes the wire grow and compact.
  const wire = new Wire(new Parts(parts), 32);
  try {
    const head = await readResponseHead(wire, limits);
    const body = bodyReader(wire, framingOf(head, method), head.contentLength, limits);
    let text = "";
    for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) {
      text += textOf(chunk);
    }
    return {
      status: head.status,
      reason: head.reason,
      headers: [...new Headers(head.headers)],
      body: text,
      keepAlive: head.keepAlive,
      complete: body.complete,
      rest: wire.buffered,
    };
  } catch (err) {
    if (err instanceof ParseError || err instanceof EofError) return { error: err.name };
    throw err;
  }
}

const VALID: { name: string; method?: string; text: string; expect: Partial<Outcome> }[] = [
  {
    name: "content-length",
    text: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b c \r\n\r\nhello",
    expect: {
      status: 200,
      reason: "OK",
      body: "hello",
      keepAlive: true,
      complete: true,
      headers: [["content-length", "5"], ["x-a", "b c"]],
    },
  },
  {
    name: "chunked with extensions and trailers",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
      '5;name=val\r\nhello\r\nA ; x="y"\r\n0123456789\r\n0\r\nX-T: t\r\nY: z\r\n\r\n',
    expect: { body: "hello0123456789", complete: true, keepAlive: true, headers: [] },
  },
  {
    name: "chunked, upper-case hex, coding list",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n" +
      "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\n\r\n",
    expect: { body: "abcdefghijklmnopqrstuvwxyz", complete: true },
  },
  {
    name: "204",
    text: "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
    expect: { status: 204, body: "", complete: true, keepAlive: true },
  },
  {
    name: "304 with content-length",
    text: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n',
    expect: { status: 304, body: "", complete: true },
  },
  {
    name: "HEAD",
    method: "HEAD",
    text: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    expect: { body: "", complete: true, headers: [["content-length", "1234"]] },
  },
  {
    name: "interim responses then final",
    text: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    expect: { status: 201, reason: "Created", body: "ok", complete: true },
  },
  {
    name: "connection close with named fields",
    text: "HTTP/1.1 200 OK\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\n" +
      "Content-Length: 3\r\nX-Keep: 2\r\n\r\nabc",
    expect: {
      keepAlive: false,
      body: "abc",
      headers: [["content-length", "3"], ["x-keep", "2"]],
    },
  },
  {
    name: "until close",
    text: "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end\r\n\r\nof the stream",
    expect: { keepAlive: false, body: "until the end\r\n\r\nof the stream", complete: false },
  },
  {
    name: "HTTP/1.0 keep-alive",
    text: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
    expect: { keepAlive: true, body: "x" },
  },
  {
    name: "equal content-length list and duplicate",
    text: "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
    expect: { body: "abc", complete: true },
  },
  {
    name: "obs-text value, empty reason, empty value, set-cookie",
    text: "HTTP/1.1 200\r\nX-L: caf\xe9\r\nX-E:\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
      "Content-Length: 0\r\n\r\n",
    expect: {
      reason: "",
      headers: [
        ["content-length", "0"],
        ["set-cookie", "a=1"],
        ["set-cookie", "b=2"],
        ["x-e", ""],
        ["x-l", "caf\xe9"],
      ],
    },
  },
  {
    name: "transfer-encoding not chunked: until close",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw",
    expect: { body: "raw", complete: false },
  },
];

Deno.test("valid responses decode identically at every split", async () => {
  for (const v of VALID) {
    const bytes = bytesOf(v.text);
    const whole = await decode([bytes], v.method);
    assert(!("error" in whole), `${v.name}: ${JSON.stringify(whole)}`);
    for (const [key, value] of Object.entries(v.expect)) {
      assertEquals((whole as Record<string, unknown>)[key], value, `${v.name}: ${key}`);
    }
    for (const parts of splits(bytes)) {
      assertEquals(await decode(parts, v.method), whole, `${v.name} split ${parts[0].length}`);
    }
  }
});

const MALFORMED: { name: string; text: string; method?: string; limits?: HeadLimits }[] = [
  { name: "4-digit status", text: "HTTP/1.1 2000 OK\r\n\r\n" },
  { name: "HTTP/2 status line", text: "HTTP/2 200 OK\r\n\r\n" },
  { name: "lower-case protocol", text: "http/1.1 200 OK\r\n\r\n" },
  { name: "two spaces", text: "HTTP/1.1  200 OK\r\n\r\n" },
  { name: "status 099", text: "HTTP/1.1 099 X\r\n\r\n" },
  { name: "status 600", text: "HTTP/1.1 600 X\r\n\r\n" },
  { name: "HTTP/1.2", text: "HTTP/1.2 200 OK\r\n\r\n" },
  { name: "garbage", text: "hello world\r\n\r\n" },
  { name: "leading blank line", text: "\r\nHTTP/1.1 200 OK\r\n\r\n" },
  { name: "space in header name", text: "HTTP/1.1 200 OK\r\nX Y: z\r\n\r\n" },
  { name: "space before colon", text: "HTTP/1.1 200 OK\r\nX : z\r\n\r\n" },
  { name: "empty header name", text: "HTTP/1.1 200 OK\r\n: z\r\n\r\n" },
  { name: "no colon", text: "HTTP/1.1 200 OK\r\nXYZ\r\n\r\n" },
  { name: "non-token name", text: "HTTP/1.1 200 OK\r\nX(Y): z\r\n\r\n" },
  { name: "obs-fold", text: "HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n" },
  { name: "bare LF", text: "HTTP/1.1 200 OK\nContent-Length: 0\n\n" },
  { name: "bare CR in value", text: "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n" },
  { name: "NUL in value", text: "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n" },
  { name: "negative content-length", text: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" },
  { name: "non-numeric content-length", text: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n" },
  { name: "empty content-length", text: "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n" },
  {
    name: "conflicting content-length",
    text: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
  },
  { name: "conflicting list", text: "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!" },
  {
    name: "huge content-length",
    text: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
  },
  {
    name: "transfer-encoding and content-length",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
  },
  {
    name: "chunked not last",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
  },
  {
    name: "transfer-encoding in HTTP/1.0",
    text: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  },
  { name: "101", text: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" },
  { name: "bad chunk size", text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" },
  { name: "empty chunk size", text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n" },
  {
    name: "negative chunk size",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
  },
  {
    name: "chunk size overflow",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000000000000\r\n",
  },
  {
    name: "chunk data without CRLF",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
  },
  {
    name: "folded trailer",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
  },
  {
    name: "truncated chunked body",
    text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
  },
  { name: "truncated length body", text: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel" },
  { name: "truncated head", text: "HTTP/1.1 200 OK\r\nContent-Len" },
  { name: "empty input", text: "" },
  {
    name: "oversized head",
    text: "HTTP/1.1 200 OK\r\nX: " + "a".repeat(70_000) + "\r\n\r\n",
  },
  {
    name: "oversized head (small limit)",
    text: "HTTP/1.1 200 OK\r\nX: " + "a".repeat(100) + "\r\n\r\n",
    limits: { maxHeadBytes: 64, maxHeaders: 10 },
  },
  {
    name: "too many headers",
    text: "HTTP/1.1 200 OK\r\n" + "X: y\r\n".repeat(300) + "\r\n",
  },
];

Deno.test("malformed responses fail with a parse error at every split", async () => {
  for (const m of MALFORMED) {
    const bytes = bytesOf(m.text);
    const whole = await decode([bytes], m.method, m.limits);
    assert("error" in whole, `${m.name}: ${JSON.stringify(whole)}`);
    for (const parts of splits(bytes, [65_535, 65_537])) {
      assertEquals(await decode(parts, m.method, m.limits), whole, `${m.name} split`);
    }
  }
});

const INTERESTING = bytesOf("\r\n: ;,0123456789abcdefABCDEF\t\0\x7f\xff-HTTP/1.");

Deno.test("random mutations give a result or a parse error, nothing else", async () => {
  const seeds = [...VALID.map((v) => v.text), ...MALFORMED.slice(0, 36).map((m) => m.text)];
  const limits = { maxHeadBytes: 2048, maxHeaders: 16 };
  let errors = 0;
  for (const { parts, rand } of mutations(seeds, 0x5eed, 4000, INTERESTING)) {
    const outcome = await decode(parts, rand() < 0.1 ? "HEAD" : "GET", limits);
    if ("error" in outcome) errors++;
    else assert(outcome.status >= 200 && outcome.status <= 599, JSON.stringify(outcome));
  }
  assert(errors > 0 && errors < 4000, `errors: ${errors}`);
});
