/**
 * The request path in process, with a fake transport: routing, the retry rules, error answers
 * and the forwarding headers it hands to the transport.
 */
import { assert, assertEquals } from "../../tests/_assert.ts";
import type { Upstream } from "../balance/upstream.ts";
import { validateConfig } from "../config/schema.ts";
import type { Config } from "../config/types.ts";
import { CidrSet } from "./cidr.ts";
import { type ProxyRequest, RequestPath } from "./request_path.ts";
import { Router } from "./router.ts";
import {
  UpstreamError,
  type UpstreamError as UpstreamErrorType,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "./transport.ts";

/** Answers from a script per server key; records every attempt. */
class FakeTransport implements UpstreamTransport {
  readonly name = "fake";
  readonly attempts: { server: string; request: UpstreamRequest }[] = [];
  readonly #script: Record<string, UpstreamErrorType | "ok">;

  constructor(script: Record<string, UpstreamErrorType | "ok">) {
    this.#script = script;
  }

  exchange(request: UpstreamRequest, upstream: Upstream): Promise<UpstreamReply> {
    this.attempts.push({ server: upstream.key, request });
    const outcome = this.#script[upstream.key] ?? "ok";
    if (outcome !== "ok") return Promise.reject(outcome);
    const body = new TextEncoder().encode(upstream.key);
    return Promise.resolve({
      status: 200,
      reason: "OK",
      headers: [],
      contentLength: body.length,
      body,
    });
  }

  close(): void {}
}

async function pathWith(
  script: Record<string, UpstreamErrorType | "ok">,
  retries = 2,
  trusted: string[] = [],
) {
  const router = new Router();
  const result = validateConfig({
    backends: [
      {
        backend_name: "b",
        servers: [1, 2, 3].map((i) => ({ addr: `127.0.0.${i}`, port: 80 })),
      },
      { backend_name: "empty", servers: [] },
    ],
    hosts: [{ host: "a.test", backend_name: "b" }, { host: "e.test", backend_name: "empty" }],
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  await router.applyConfig(result.config as Config, 1, []);
  const transport = new FakeTransport(script);
  const failures: string[] = [];
  const path = new RequestPath({
    router,
    transport,
    retries,
    onUpstreamFailure: (_backend, server, error) => failures.push(`${server} ${error.failure}`),
    trustedProxies: new CidrSet(trusted),
  });
  return { path, transport, failures };
}

function request(method: string, init: Partial<ProxyRequest> = {}): ProxyRequest {
  return {
    method,
    target: "/",
    authority: "a.test",
    headers: [["host", "a.test"]],
    body: null,
    bodyLength: -1,
    client: { address: "10.1.1.1", proto: "http" },
    signal: new AbortController().signal,
    ...init,
  };
}

const text = (reply: UpstreamReply) => new TextDecoder().decode(reply.body as Uint8Array);
const refused = () => new UpstreamError("connect", "refused", false);
const broken = (consumed = false) => new UpstreamError("broken", "reset", consumed);

Deno.test("routing: unknown host 404, no Host 404, no server 503", async () => {
  const { path } = await pathWith({});
  const unknown = await path.handle(request("GET", { authority: "x.test" }));
  assertEquals([unknown.status, text(unknown)], [404, 'dynlb: no backend for host "x.test"\n']);
  assertEquals((await path.handle(request("GET", { authority: null }))).status, 404);
  const empty = await path.handle(request("GET", { authority: "e.test" }));
  assertEquals(empty.status, 503);
  assertEquals(empty.headers.find(([n]) => n === "x-dynlb-error")?.[1], "no-server");
});

Deno.test("retries: a connect failure is retried for any method", async () => {
  const first = "127.0.0.1:80";
  const { path, transport, failures } = await pathWith({ [first]: refused() });
  const reply = await path.handle(request("POST"));
  assertEquals(reply.status, 200);
  assertEquals(transport.attempts.map((a) => a.server), [first, "127.0.0.2:80"]);
  assertEquals(failures, [`${first} connect`]);
});

Deno.test("retries: a broken exchange is retried for idempotent methods only", async () => {
  const script = { "127.0.0.1:80": broken() };
  const get = await pathWith(script);
  assertEquals((await get.path.handle(request("GET"))).status, 200);
  assertEquals(get.transport.attempts.length, 2);
  const post = await pathWith(script);
  const reply = await post.path.handle(request("POST"));
  assertEquals([reply.status, post.transport.attempts.length], [502, 1]);
});

Deno.test("retries: never after the body was consumed, and at most --retries more", async () => {
  const consumed = await pathWith({ "127.0.0.1:80": broken(true) });
  assertEquals((await consumed.path.handle(request("PUT"))).status, 502);
  assertEquals(consumed.transport.attempts.length, 1);
  const all = await pathWith({
    "127.0.0.1:80": refused(),
    "127.0.0.2:80": refused(),
    "127.0.0.3:80": refused(),
  }, 1);
  const reply = await all.path.handle(request("GET"));
  assertEquals([reply.status, all.transport.attempts.length], [502, 2]);
  const timeout = await pathWith({
    "127.0.0.1:80": new UpstreamError("timeout", "slow", false),
  }, 0);
  assertEquals((await timeout.path.handle(request("GET"))).status, 504);
});

Deno.test("a small body is read whole first and replayed on the next server", async () => {
  const { path, transport } = await pathWith({ "127.0.0.1:80": refused() });
  let reads = 0;
  const body = {
    chunks: [new TextEncoder().encode("he"), new TextEncoder().encode("llo")],
    next() {
      reads++;
      return Promise.resolve(this.chunks.shift() ?? null);
    },
    cancel() {},
  };
  await path.handle(request("POST", { body, bodyLength: 5 }));
  assertEquals(transport.attempts.length, 2);
  for (const { request } of transport.attempts) {
    assertEquals(new TextDecoder().decode(request.body as Uint8Array), "hello");
  }
  assert(reads <= 3);
});

Deno.test("forwarding headers: replaced for clients, appended for trusted proxies", async () => {
  const headers: [string, string][] = [["host", "a.test"], ["x-forwarded-for", "6.6.6.6"]];
  const edge = await pathWith({});
  await edge.path.handle(request("GET", { headers }));
  const { requestId: _, ...forwarded } = edge.transport.attempts[0].request.forwarded!;
  assertEquals(forwarded, { for: "10.1.1.1", host: "a.test", proto: "http", realIp: "10.1.1.1" });
  const behind = await pathWith({}, 2, ["10.0.0.0/8"]);
  await behind.path.handle(request("GET", { headers }));
  assertEquals(behind.transport.attempts[0].request.forwarded?.for, "6.6.6.6, 10.1.1.1");
});
