/**
 * ACME state in the Redis that holds the config, in keys named after the config key
 * (`balancer:acme:…`). The order lock is `SET NX PX` (it expires by itself when its holder
 * dies) and is released only by its owner, with a compare-and-delete script.
 *
 * @module
 */
import type { AccountRecord, AcmeStore, CertificateRecord } from "./store.ts";

/** What this store needs from the Redis config store: one connection, raw commands. */
export interface RedisCommands {
  readonly key: string;
  sendCommand(args: string[]): Promise<unknown>;
}

const UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then " +
  "return redis.call('DEL', KEYS[1]) else return 0 end";

/**
 * ACME records in Redis.
 *
 * @example
 * ```ts
 * const store = new RedisAcmeStore(redisStore); // the config's RedisStore
 * await store.lock("www.example.com", "instance-1", 120_000);
 * ```
 */
export class RedisAcmeStore implements AcmeStore {
  readonly kind = "redis";
  readonly #redis: RedisCommands;
  readonly #prefix: string;

  constructor(redis: RedisCommands) {
    this.#redis = redis;
    this.#prefix = `${redis.key}:acme:`;
  }

  async getAccount(): Promise<AccountRecord | null> {
    return parse<AccountRecord>(await this.#get("account"));
  }

  async putAccountIfAbsent(record: AccountRecord): Promise<AccountRecord> {
    const set = await this.#redis.sendCommand([
      "SET",
      this.#prefix + "account",
      JSON.stringify(record),
      "NX",
    ]);
    return set === "OK" ? record : (await this.getAccount())!;
  }

  async putAccount(record: AccountRecord): Promise<void> {
    await this.#redis.sendCommand(["SET", this.#prefix + "account", JSON.stringify(record)]);
  }

  async getCertificate(name: string): Promise<CertificateRecord | null> {
    return parse<CertificateRecord>(await this.#get(`cert:${name}`));
  }

  async putCertificate(name: string, record: CertificateRecord): Promise<void> {
    await this.#redis.sendCommand(["SET", `${this.#prefix}cert:${name}`, JSON.stringify(record)]);
    await this.#redis.sendCommand(["INCR", this.#prefix + "revision"]);
  }

  async revision(): Promise<string> {
    return (await this.#get("revision")) ?? "";
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await this.#redis.sendCommand([
      "SET",
      `${this.#prefix}challenge:${token}`,
      keyAuthorization,
      "PX",
      String(ttlMs),
    ]);
  }

  getChallenge(token: string): Promise<string | null> {
    return this.#get(`challenge:${token}`);
  }

  async deleteChallenge(token: string): Promise<void> {
    await this.#redis.sendCommand(["DEL", `${this.#prefix}challenge:${token}`]);
  }

  async lock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#redis.sendCommand([
      "SET",
      `${this.#prefix}lock:${name}`,
      owner,
      "NX",
      "PX",
      String(ttlMs),
    ]);
    return reply === "OK";
  }

  async unlock(name: string, owner: string): Promise<void> {
    await this.#redis.sendCommand(["EVAL", UNLOCK, "1", `${this.#prefix}lock:${name}`, owner]);
  }

  close(): Promise<void> {
    return Promise.resolve(); // The connection belongs to the config store.
  }

  async #get(suffix: string): Promise<string | null> {
    const reply = await this.#redis.sendCommand(["GET", this.#prefix + suffix]);
    return reply === null || reply === undefined ? null : String(reply);
  }
}

function parse<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}
