/**
 * The {@link RequestContext} of one proxied request: what a balancer may read, computed only when
 * asked (most balancers ask nothing; a cookie is looked up only by sticky or cookie-hash
 * backends).
 *
 * @module
 */
import { cookieValue, type RequestContext } from "../balance/selector.ts";
import { type HeaderList, headerValue } from "./hop.ts";

/**
 * A request's context over its headers, client address and raw target.
 *
 * @example
 * ```ts
 * const context = new ExchangeContext(request.headers, "10.0.0.1", "/a?b=1");
 * context.cookie("session");
 * ```
 */
export class ExchangeContext implements RequestContext {
  readonly #headers: HeaderList;
  readonly #clientIp: string;
  readonly #target: string;
  #cookies: string | null | undefined;

  constructor(headers: HeaderList, clientIp: string, target: string) {
    this.#headers = headers;
    this.#clientIp = clientIp;
    this.#target = target;
  }

  clientIp(): string {
    return this.#clientIp;
  }

  header(name: string): string | null {
    return headerValue(this.#headers, name.toLowerCase());
  }

  cookie(name: string): string | null {
    if (this.#cookies === undefined) this.#cookies = headerValue(this.#headers, "cookie");
    return cookieValue(this.#cookies, name);
  }

  uri(): string {
    return this.#target;
  }
}
