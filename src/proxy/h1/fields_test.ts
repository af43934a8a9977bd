/** The shared field-line core: each rule gives its code, whatever parser turns it into an error. */
import { assertEquals } from "../../../tests/_assert.ts";
import { bytesOf } from "./_parts.ts";
import {
  type ConnectionOptions,
  connectionOptions,
  contentLength,
  FieldLines,
  forEachListToken,
  latin1,
  LENGTH_CONFLICT,
  LENGTH_INVALID,
  LINES_ASCII,
  LINES_BAD_NAME,
  LINES_BAD_VALUE,
  LINES_BARE_CR,
  LINES_BARE_CR_AT_END,
  LINES_FOLDED,
  LINES_HIGH,
  LINES_TOO_MANY,
  scanFieldLines,
} from "./fields.ts";

function scan(text: string, maxHeaders = 8): number {
  const b = bytesOf(text);
  return scanFieldLines(b, 0, b.length, maxHeaders);
}

Deno.test("scanFieldLines gives one code per rule", () => {
  assertEquals(scan("A: 1\r\nB-c: x y\r\n\r\n"), LINES_ASCII);
  assertEquals(scan("A: caf\xe9\r\n\r\n"), LINES_HIGH);
  assertEquals(scan(" A: 1\r\n\r\n"), LINES_FOLDED);
  assertEquals(scan("A : 1\r\n\r\n"), LINES_BAD_NAME);
  assertEquals(scan(": 1\r\n\r\n"), LINES_BAD_NAME);
  assertEquals(scan("A: 1\x00\r\n\r\n"), LINES_BAD_VALUE);
  assertEquals(scan("A: 1\x7f\r\n\r\n"), LINES_BAD_VALUE);
  assertEquals(scan("A: 1\rB\r\n\r\n"), LINES_BARE_CR);
  assertEquals(scan("A: 1\r\nB: 2\r\n\r\n", 1), LINES_TOO_MANY);
  assertEquals(scan("\r\r\n\r\n"), LINES_BARE_CR_AT_END);
});

Deno.test("FieldLines gives names and trimmed values", () => {
  const b = bytesOf("Host:  a.test \r\nX-Empty:\r\nY:\tv w\t\r\n\r\n");
  const line = new FieldLines(b, 0, b.length);
  const seen: string[] = [];
  const text = String.fromCharCode(...b);
  while (line.next()) {
    seen.push(
      text.substring(line.name, line.nameEnd) + "=" + text.substring(line.value, line.valueEnd),
    );
  }
  assertEquals(seen, ["Host=a.test", "X-Empty=", "Y=v w"]);
});

Deno.test("contentLength accepts a list of equal values only", () => {
  const cl = (s: string, seen = -1) => contentLength(bytesOf(s), 0, s.length, seen);
  assertEquals(cl("42"), 42);
  assertEquals(cl(" 7 , 7 "), 7);
  assertEquals(cl("7", 7), 7);
  assertEquals(cl("7", 8), LENGTH_CONFLICT);
  assertEquals(cl("7, 8"), LENGTH_CONFLICT);
  assertEquals(cl(""), LENGTH_INVALID);
  assertEquals(cl("-1"), LENGTH_INVALID);
  assertEquals(cl("1e3"), LENGTH_INVALID);
  assertEquals(cl("1".repeat(16)), LENGTH_INVALID);
});

Deno.test("connectionOptions reads close, keep-alive, upgrade and field names", () => {
  const value = "Keep-Alive, X-Drop ,close,  Upgrade";
  const opts: ConnectionOptions = { close: false, keepAlive: false, upgrade: false, named: null };
  connectionOptions(bytesOf(value), 0, value.length, value, 0, opts);
  assertEquals(opts, { close: true, keepAlive: true, upgrade: true, named: ["x-drop"] });
});

Deno.test("forEachListToken visits each element's leading token, past OWS, parameters and empty elements", () => {
  const value = " gzip;q=1 , ,\tchunked ,x-a b,";
  const seen: string[] = [];
  forEachListToken(bytesOf(value), 0, value.length, seen, (out, b, t, n) => {
    out.push(latin1(b, t, t + n, false));
  });
  assertEquals(seen, ["gzip", "chunked", "x-a"]);
});
