/**
 * ACME state in files, for the file store: `--data-dir/certs/`, one JSON file per record, mode
 * 0600. Records that must be created once (the account, a lock) are written to a temporary file
 * and hard-linked into place, which fails when the name exists: create-if-absent without a
 * window in which another process sees half a file.
 *
 * ```
 * certs/account.json        { key }
 * certs/cert-NAME.json      { cert, key }
 * certs/revision            changes with every certificate written
 * certs/challenge-TOKEN     { keyAuthorization, expires }
 * certs/lock-NAME           { owner, expires }
 * ```
 *
 * @module
 */
import { writeFileAtomic } from "../store/atomic.ts";
import type { AccountRecord, AcmeStore, CertificateRecord } from "./store.ts";

/**
 * ACME state under one directory.
 *
 * @example
 * ```ts
 * const store = new FileAcmeStore("./.data/certs");
 * await store.lock("www.example.com", "me", 60_000);
 * ```
 */
export class FileAcmeStore implements AcmeStore {
  readonly kind = "file";
  readonly dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async getAccount(): Promise<AccountRecord | null> {
    return await this.#readJson<AccountRecord>("account.json");
  }

  async putAccountIfAbsent(record: AccountRecord): Promise<AccountRecord> {
    if (await this.#createOnce("account.json", record)) return record;
    return (await this.getAccount())!;
  }

  async putAccount(record: AccountRecord): Promise<void> {
    await this.#write("account.json", JSON.stringify(record));
  }

  async getCertificate(name: string): Promise<CertificateRecord | null> {
    return await this.#readJson<CertificateRecord>(`cert-${name}.json`);
  }

  async putCertificate(name: string, record: CertificateRecord): Promise<void> {
    await this.#write(`cert-${name}.json`, JSON.stringify(record));
    await this.#write("revision", crypto.randomUUID());
  }

  async revision(): Promise<string> {
    try {
      return await Deno.readTextFile(`${this.dir}/revision`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return "";
      throw err;
    }
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await this.#write(
      `challenge-${token}`,
      JSON.stringify({ keyAuthorization, expires: Date.now() + ttlMs }),
    );
  }

  async getChallenge(token: string): Promise<string | null> {
    const record = await this.#readJson<{ keyAuthorization: string; expires: number }>(
      `challenge-${token}`,
    );
    return record !== null && record.expires > Date.now() ? record.keyAuthorization : null;
  }

  async deleteChallenge(token: string): Promise<void> {
    await Deno.remove(`${this.dir}/challenge-${token}`).catch(() => {});
  }

  async lock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const file = `lock-${name}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.#createOnce(file, { owner, expires: Date.now() + ttlMs })) return true;
      const held = await this.#readJson<{ owner: string; expires: number }>(file);
      if (held !== null && held.expires > Date.now()) return false;
      // Expired (its holder died) or unreadable: move it aside under a unique name, so of two
      // processes doing this at once only one removes the lock and both retry the create.
      const aside = `${this.dir}/.${file}.${crypto.randomUUID().slice(0, 8)}.stale`;
      await Deno.rename(`${this.dir}/${file}`, aside).then(() => Deno.remove(aside), () => {});
    }
    return false;
  }

  async unlock(name: string, owner: string): Promise<void> {
    const held = await this.#readJson<{ owner: string }>(`lock-${name}`);
    if (held?.owner === owner) await Deno.remove(`${this.dir}/lock-${name}`).catch(() => {});
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #mkdir(): Promise<void> {
    this.#ready ??= Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  /** Reads never create the directory: a lookup by an instance without ACME leaves no trace. */
  async #readJson<T>(file: string): Promise<T | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(`${this.dir}/${file}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      return null; // Damaged: treated as absent, the next write replaces it.
    }
  }

  async #write(file: string, text: string): Promise<void> {
    await this.#mkdir();
    await writeFileAtomic(`${this.dir}/${file}`, text, 0o600);
  }

  /** Creates `file` with `value` unless it exists; resolves whether this call created it. */
  async #createOnce(file: string, value: unknown): Promise<boolean> {
    await this.#mkdir();
    const temp = `${this.dir}/.${file}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await Deno.writeTextFile(temp, JSON.stringify(value), { mode: 0o600 });
    try {
      await Deno.link(temp, `${this.dir}/${file}`);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) return false;
      throw err;
    } finally {
      await Deno.remove(temp).catch(() => {});
    }
  }
}
