import { assertEquals } from "../../tests/_assert.ts";
import { type AccessEntry, formatEntry } from "./format.ts";

const entry: AccessEntry = {
  time: Date.UTC(2026, 11, 1, 9, 5, 7, 123),
  requestId: "r-1",
  client: "10.0.0.7",
  method: "GET",
  host: "a.test",
  target: '/x?q="1"',
  protocol: "HTTP/1.1",
  status: 200,
  bytesIn: 0,
  bytesOut: 512,
  seconds: 0.01234,
  backend: "api",
  server: "127.0.0.1:9001",
  upstreamStatus: 200,
  upstreamSeconds: 0.0104,
  retries: 1,
  error: null,
  referer: null,
  userAgent: "curl/8\x01",
};

Deno.test("json lines carry every field the issue lists", () => {
  const line = formatEntry(entry, "json");
  assertEquals(line.endsWith("\n"), true);
  assertEquals(JSON.parse(line), {
    time: "2026-12-01T09:05:07.123Z",
    request_id: "r-1",
    client: "10.0.0.7",
    method: "GET",
    host: "a.test",
    target: '/x?q="1"',
    protocol: "HTTP/1.1",
    status: 200,
    bytes_in: 0,
    bytes_out: 512,
    duration: 0.012,
    backend: "api",
    server: "127.0.0.1:9001",
    upstream_status: 200,
    upstream_time: 0.01,
    retries: 1,
    error: null,
  });
});

Deno.test("combined is nginx's format, escaped as nginx does, plus request id and upstream time", () => {
  assertEquals(
    formatEntry(entry, "combined"),
    '10.0.0.7 - - [01/Dec/2026:09:05:07 +0000] "GET /x?q=\\x221\\x22 HTTP/1.1" 200 512 "-" ' +
      '"curl/8\\x01" r-1 0.01\n',
  );
});
