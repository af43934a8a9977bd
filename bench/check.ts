/**
 * Correctness check of a proxy before it is measured: right status and body for each route,
 * routing by Host, both weighted servers used.
 *
 * @module
 */
import { bigBody, HOSTS, OTHER_BODY, PATHS, SHORT_BODY } from "./peers.ts";

/** What the check saw of the 10:1 pair. */
export interface CheckResult {
  /** Responses served by the weight-10 and the weight-1 server, out of 55 requests. */
  readonly a: number;
  readonly b: number;
}

/**
 * Throws with a reason when the proxy at `url` answers anything unexpected.
 *
 * @example
 * ```ts
 * const { a, b } = await checkProxy("http://127.0.0.1:8080"); // a ≈ 50, b ≈ 5
 * ```
 */
export async function checkProxy(url: string): Promise<CheckResult> {
  // Plain fetch replaces `Host` with the URL's; this client sends the one given.
  using client = Deno.createHttpClient({ allowHost: true, http2: false });
  const get = async (host: string, path: string, init: RequestInit = {}) => {
    const response = await fetch(url + path, { ...init, client, headers: { host } });
    const body = new Uint8Array(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, body };
  };
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const expect = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${url}: ${what}`);
  };

  let a = 0, b = 0;
  for (let i = 0; i < 55; i++) {
    const r = await get(HOSTS.main, PATHS.short);
    expect(r.status === 200, `GET ${PATHS.short} (${HOSTS.main}) status ${r.status}`);
    expect(text(r.body) === SHORT_BODY, `GET ${PATHS.short} body ${JSON.stringify(text(r.body))}`);
    const server = r.headers.get("x-backend");
    if (server === "a") a++;
    else if (server === "b") b++;
    else expect(false, `GET ${PATHS.short} served by ${server}`);
  }
  expect(b > 0 && a > b, `weights 10:1 not followed (a ${a}, b ${b})`);

  const big = await get(HOSTS.main, PATHS.big);
  const want = bigBody();
  expect(big.status === 200, `GET ${PATHS.big} status ${big.status}`);
  expect(
    big.body.length === want.length && big.body.every((x, i) => x === want[i]),
    `GET ${PATHS.big} body differs (${big.body.length} bytes)`,
  );

  const other = await get(HOSTS.other, PATHS.short);
  expect(
    other.status === 200 && text(other.body) === OTHER_BODY,
    `Host ${HOSTS.other} not routed to its server (${other.status} ${text(other.body)})`,
  );

  const upload = await get(HOSTS.sink, PATHS.upload, { method: "POST", body: "12345" });
  expect(
    upload.status === 200 && text(upload.body) === "5\n",
    `POST ${PATHS.upload} (${HOSTS.sink}) answered ${upload.status} ${text(upload.body)}`,
  );
  return { a, b };
}
