/**
 * Where ACME state lives: the account key, the certificates and keys obtained, the pending
 * HTTP-01 challenge tokens and the per-name order locks. It lives in the config's own store
 * (file, Deno KV or Redis), so instances sharing a store share one account and one certificate
 * per name, any of them can answer a challenge another one started, and only one orders a
 * given name at a time.
 *
 * @module
 */

/** The ACME account, shared by the fleet. */
export interface AccountRecord {
  /** The account's private key, PEM. */
  readonly key: string;
  /** The account's URL at the CA. */
  readonly url?: string;
  /** The directory it is registered with. */
  readonly directory?: string;
}

/** A certificate obtained from the CA. */
export interface CertificateRecord {
  /** Chain, PEM, leaf first. */
  readonly cert: string;
  /** Private key, PEM. */
  readonly key: string;
}

/** ACME state in a store. Every method rejects when the store cannot be reached. */
export interface AcmeStore {
  /** `file`, `kv` or `redis`. */
  readonly kind: string;
  /** The account, or `null` before the first one was made. */
  getAccount(): Promise<AccountRecord | null>;
  /** Stores `record` unless an account exists already; returns the one that is stored. */
  putAccountIfAbsent(record: AccountRecord): Promise<AccountRecord>;
  /** Replaces the account (another directory was configured). */
  putAccount(record: AccountRecord): Promise<void>;
  getCertificate(name: string): Promise<CertificateRecord | null>;
  putCertificate(name: string, record: CertificateRecord): Promise<void>;
  /** Changes whenever any certificate is put: the cheap thing other instances poll. */
  revision(): Promise<string>;
  /** Keeps a challenge's key authorization for `ttlMs`. */
  putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void>;
  getChallenge(token: string): Promise<string | null>;
  deleteChallenge(token: string): Promise<void>;
  /**
   * Takes the order lock of `name` for `ttlMs` unless someone holds it; resolves whether it was
   * taken. An expired lock (its holder died) can be taken again.
   */
  lock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `owner` still holds it. */
  unlock(name: string, owner: string): Promise<void>;
  close(): Promise<void>;
}

/** A stored challenge token: base64url, as RFC 8555 §8.1 makes them. */
export const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
