/**
 * ACME state in the Deno KV database that holds the config, under the key prefix `acme`. The
 * order lock is a KV atomic check: set only if the key's versionstamp is still the one read
 * (absent, or an expired lock).
 *
 * @module
 */
import { whenUnlocked } from "../store/kv.ts";
import type { AccountRecord, AcmeStore, CertificateRecord } from "./store.ts";

interface Lock {
  owner: string;
  expires: number;
}

/**
 * ACME records in a Deno KV database.
 *
 * @example
 * ```ts
 * const store = new KvAcmeStore(await Deno.openKv(":memory:"));
 * await store.putChallenge("t0k3n-t0k3n-t0k3n", "t0k3n.thumb", 60_000);
 * ```
 */
export class KvAcmeStore implements AcmeStore {
  readonly kind = "kv";
  readonly #kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async getAccount(): Promise<AccountRecord | null> {
    return (await whenUnlocked(() => this.#kv.get<AccountRecord>(["acme", "account"]))).value;
  }

  async putAccountIfAbsent(record: AccountRecord): Promise<AccountRecord> {
    const key = ["acme", "account"];
    const done = await whenUnlocked(() =>
      this.#kv.atomic().check({ key, versionstamp: null }).set(key, record).commit()
    );
    return done.ok ? record : (await this.getAccount())!;
  }

  async putAccount(record: AccountRecord): Promise<void> {
    await whenUnlocked(() => this.#kv.set(["acme", "account"], record));
  }

  async getCertificate(name: string): Promise<CertificateRecord | null> {
    return (await whenUnlocked(() => this.#kv.get<CertificateRecord>(["acme", "cert", name])))
      .value;
  }

  async putCertificate(name: string, record: CertificateRecord): Promise<void> {
    await whenUnlocked(() =>
      this.#kv.atomic()
        .set(["acme", "cert", name], record)
        .set(["acme", "revision"], crypto.randomUUID())
        .commit()
    );
  }

  async revision(): Promise<string> {
    return (await whenUnlocked(() => this.#kv.get<string>(["acme", "revision"]))).value ?? "";
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await whenUnlocked(() =>
      this.#kv.set(
        ["acme", "challenge", token],
        { keyAuthorization, expires: Date.now() + ttlMs },
        {
          expireIn: ttlMs,
        },
      )
    );
  }

  async getChallenge(token: string): Promise<string | null> {
    const entry = await whenUnlocked(() =>
      this.#kv.get<{ keyAuthorization: string; expires: number }>(["acme", "challenge", token])
    );
    const value = entry.value;
    return value !== null && value.expires > Date.now() ? value.keyAuthorization : null;
  }

  async deleteChallenge(token: string): Promise<void> {
    await whenUnlocked(() => this.#kv.delete(["acme", "challenge", token]));
  }

  async lock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = ["acme", "lock", name];
    return await whenUnlocked(async () => {
      const held = await this.#kv.get<Lock>(key);
      // Expired locks are ignored: KV deletes expired keys lazily.
      if (held.value !== null && held.value.expires > Date.now()) return false;
      const result = await this.#kv.atomic()
        .check(held)
        .set(key, { owner, expires: Date.now() + ttlMs }, { expireIn: ttlMs })
        .commit();
      return result.ok;
    });
  }

  async unlock(name: string, owner: string): Promise<void> {
    const key = ["acme", "lock", name];
    await whenUnlocked(async () => {
      const held = await this.#kv.get<Lock>(key);
      if (held.value?.owner === owner) await this.#kv.atomic().check(held).delete(key).commit();
    });
  }

  close(): Promise<void> {
    return Promise.resolve(); // The KV database belongs to the config store.
  }
}
