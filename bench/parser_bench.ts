/**
 * Micro-benchmark of the h1 head parsers (no network): `deno bench bench/parser_bench.ts`.
 * A typical browser-like request head and a typical response head, 8 fields each.
 *
 * @module
 */
import { DEFAULT_LIMITS, parseHead } from "../src/proxy/h1/parser.ts";
import { parseRequestHead, REQUEST_LIMITS } from "../src/proxy/h1/request_parser.ts";

const enc = new TextEncoder();
const request = enc.encode(
  "GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n" +
    "Host: shop.example.test\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n" +
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
    "Accept-Language: en-US,en;q=0.9\r\n" +
    "Accept-Encoding: gzip, deflate, br\r\n" +
    "Connection: keep-alive\r\n" +
    "Cookie: session=0123456789abcdef; theme=dark\r\n" +
    "Cache-Control: max-age=0\r\n\r\n",
);
const response = enc.encode(
  "HTTP/1.1 200 OK\r\n" +
    "Date: Tue, 01 Dec 2026 22:00:00 GMT\r\n" +
    "Server: backend\r\n" +
    "Content-Type: application/json; charset=utf-8\r\n" +
    "Content-Length: 1234\r\n" +
    "Cache-Control: no-cache\r\n" +
    "Connection: keep-alive\r\n" +
    "Keep-Alive: timeout=5\r\n" +
    "Vary: Accept-Encoding\r\n\r\n",
);

Deno.bench("parseRequestHead, 8 fields", () => {
  parseRequestHead(request, 0, request.length, REQUEST_LIMITS);
});

Deno.bench("parseHead (response), 8 fields", () => {
  parseHead(response, 0, response.length, DEFAULT_LIMITS);
});
