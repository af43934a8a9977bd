/**
 * Automatic certificates (ACME, RFC 8555, HTTP-01) for the control plane. For every name it is
 * given it keeps a certificate in the shared store and in memory:
 *
 * - every second it reads the store's certificate revision (a few bytes) and, when it moved,
 *   loads the certificates of its names: a certificate one instance obtained is in use on the
 *   others within about a second;
 * - a name without a certificate, or whose certificate has lived two thirds of its lifetime, is
 *   ordered — by one instance at a time (a lock in the store with an expiry), the others wait
 *   for the result to appear in the store;
 * - a failed order is retried with a growing pause and logged once per change of state; the
 *   certificate in use (if any) keeps serving.
 *
 * Orders run one after the other; the HTTP-01 key authorizations go into the store, so any
 * instance behind the same name can answer the CA's request.
 *
 * @module
 */
import acme from "acme-client";
import { Agent } from "node:https";
import type { AcmeConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { CertificateError, inspectPair, type ServedCertificate } from "../tls/certificate.ts";
import type { AcmeStore } from "./store.ts";
import { errorText } from "../error_text.ts";

/** Where one name stands. */
export type AcmeState = "pending" | "ordering" | "waiting" | "valid" | "failed";

/** One name's certificate and state, as `GET /certificates` shows it. */
export interface AcmeStatus {
  readonly name: string;
  readonly state: AcmeState;
  readonly certificate?: ServedCertificate;
  readonly lastError?: string;
}

/** Tuning (tests shorten the pauses). */
export interface AcmeManagerOptions {
  readonly store: AcmeStore;
  /** Called when the set of certificates in use changed. */
  readonly onChange: () => void;
  /** Fraction of a certificate's lifetime after which it is renewed; default 2/3. */
  readonly renewAt?: number;
  /** Store poll interval, ms; default 1000. */
  readonly pollMs?: number;
  /** First retry pause after a failure, ms (doubles up to an hour); default 10 s. */
  readonly retryMs?: number;
}

interface NameState {
  state: AcmeState;
  certificate?: ServedCertificate;
  lastError?: string;
  failures: number;
  /** No order before this time (ms). */
  notBefore: number;
}

const LOCK_TTL_MS = 5 * 60_000;
const CHALLENGE_TTL_MS = 10 * 60_000;
const MAX_RETRY_MS = 60 * 60_000;
/** Pause before looking again while another instance holds a name's lock. */
const WAIT_MS = 5_000;

/**
 * Keeps certificates for a set of names.
 *
 * @example
 * ```ts
 * const acmeManager = new AcmeManager({ store, onChange: () => publish() });
 * acmeManager.configure(config.tls?.acme, ["www.example.com"]);
 * acmeManager.certificates(); // those obtained so far
 * ```
 */
export class AcmeManager {
  readonly #store: AcmeStore;
  readonly #onChange: () => void;
  readonly #renewAt: number;
  readonly #pollMs: number;
  readonly #retryMs: number;
  readonly #owner = crypto.randomUUID();
  #config: AcmeConfig | undefined;
  #names = new Map<string, NameState>();
  /** Key authorizations of this instance's own pending challenges. */
  #challenges = new Map<string, string>();
  #revision: string | undefined;
  #client: { directory: string; ca: string | undefined; client: acme.Client } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #closed = false;
  #storeFailing = false;

  constructor(options: AcmeManagerOptions) {
    this.#store = options.store;
    this.#onChange = options.onChange;
    this.#renewAt = options.renewAt ?? 2 / 3;
    this.#pollMs = options.pollMs ?? 1000;
    this.#retryMs = options.retryMs ?? 10_000;
  }

  /** Sets the ACME settings and the names to keep certificates for (none: stop ordering). */
  configure(config: AcmeConfig | undefined, names: readonly string[]): void {
    this.#config = config;
    const wanted = new Set(config === undefined ? [] : names);
    let dropped = false;
    for (const name of this.#names.keys()) {
      if (!wanted.has(name)) {
        this.#names.delete(name);
        dropped = true;
      }
    }
    for (const name of wanted) {
      if (!this.#names.has(name)) {
        this.#names.set(name, { state: "pending", failures: 0, notBefore: 0 });
      }
    }
    this.#revision = undefined; // load the new names' certificates on the next tick
    if (dropped) this.#onChange();
    if (wanted.size > 0 && !this.#running && !this.#closed) {
      this.#running = true;
      this.#timer = setTimeout(() => this.#tick(), 0);
    }
  }

  /** The certificates in use, by name. */
  certificates(): ServedCertificate[] {
    const out: ServedCertificate[] = [];
    for (const state of this.#names.values()) if (state.certificate) out.push(state.certificate);
    return out;
  }

  /** Every name with its state. */
  status(): AcmeStatus[] {
    return [...this.#names].map(([name, s]) => ({
      name,
      state: s.state,
      certificate: s.certificate,
      lastError: s.lastError,
    }));
  }

  /** The key authorization of one of this instance's own pending challenges. */
  ownChallenge(token: string): string | undefined {
    return this.#challenges.get(token);
  }

  /** Stops polling and ordering (an order in progress finishes in the background). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    try {
      if (await this.#syncFromStore()) this.#onChange();
      const due = this.#nextDue();
      if (due !== undefined) await this.#order(due);
      if (this.#storeFailing) log("info", "acme: certificate store reachable again");
      this.#storeFailing = false;
    } catch (err) {
      if (!this.#storeFailing) {
        log("warn", "acme: certificate store unreachable, serving what is loaded", {
          store: this.#store.kind,
          error: String(err),
        });
      }
      this.#storeFailing = true;
    }
    if (this.#names.size === 0) {
      this.#running = false;
      return;
    }
    if (!this.#closed) this.#timer = setTimeout(() => this.#tick(), this.#pollMs);
  }

  /** Loads the store's certificates when its revision moved; resolves whether any changed. */
  async #syncFromStore(): Promise<boolean> {
    const revision = await this.#store.revision();
    if (revision === this.#revision) return false;
    let changed = false;
    for (const [name, state] of this.#names) {
      const record = await this.#store.getCertificate(name);
      if (record === null) continue;
      const certificate = this.#accept(name, record.cert, record.key);
      if (certificate === undefined) continue;
      if (certificate.fingerprint === state.certificate?.fingerprint) continue;
      // Keep the one valid longer (a stale store must not replace a fresh renewal).
      if (state.certificate && certificate.notAfter <= state.certificate.notAfter) continue;
      state.certificate = certificate;
      this.#setState(name, state, "valid");
      changed = true;
    }
    this.#revision = revision;
    return changed;
  }

  /** The first name that needs a certificate now. */
  #nextDue(): string | undefined {
    const now = Date.now();
    for (const [name, state] of this.#names) {
      if (state.notBefore > now) continue;
      const cert = state.certificate;
      if (cert === undefined) return name;
      const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
      if (now >= cert.notBefore.getTime() + lifetime * this.#renewAt) return name;
    }
    return undefined;
  }

  async #order(name: string): Promise<void> {
    const state = this.#names.get(name)!;
    const config = this.#config!;
    if (!(await this.#store.lock(name, this.#owner, LOCK_TTL_MS))) {
      state.notBefore = Date.now() + WAIT_MS;
      if (state.certificate === undefined) this.#setState(name, state, "waiting");
      return;
    }
    try {
      this.#setState(name, state, "ordering");
      const [key, csr] = await acme.crypto.createCsr(
        { commonName: name, altNames: [name] },
        await acme.crypto.createPrivateEcdsaKey(),
      );
      const client = await this.#acmeClient(config);
      const cert = await client.auto({
        csr,
        email: config.email,
        termsOfServiceAgreed: true,
        challengePriority: ["http-01"],
        // Its own pre-check fetches http://NAME:80/, which is not where a proxy on another port,
        // or behind a load balancer, is reached; the CA's validation is the real check.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          this.#challenges.set(challenge.token, keyAuthorization);
          await this.#store.putChallenge(challenge.token, keyAuthorization, CHALLENGE_TTL_MS);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          this.#challenges.delete(challenge.token);
          await this.#store.deleteChallenge(challenge.token).catch(() => {});
        },
      });
      const keyPem = key.toString();
      const certificate = this.#accept(name, cert, keyPem);
      if (certificate === undefined) throw new Error("the CA returned an unusable certificate");
      await this.#store.putCertificate(name, { cert, key: keyPem });
      state.certificate = certificate;
      state.failures = 0;
      state.notBefore = 0;
      state.lastError = undefined;
      this.#setState(name, state, "valid");
      log("info", "acme: certificate obtained", {
        name,
        not_after: certificate.notAfter.toISOString(),
      });
      this.#onChange();
    } catch (err) {
      const error = errorText(err);
      const pause = Math.min(this.#retryMs * 2 ** state.failures, MAX_RETRY_MS);
      state.failures++;
      state.notBefore = Date.now() + pause;
      const changed = state.state !== "failed" || state.lastError !== error;
      state.lastError = error;
      state.state = "failed";
      if (changed) {
        log("warn", "acme: order failed, retrying later", {
          name,
          error,
          retry_in_s: Math.round(pause / 1000),
          serving: state.certificate ? "the previous certificate" : "the default certificate",
        });
      }
    } finally {
      await this.#store.unlock(name, this.#owner).catch(() => {});
    }
  }

  /** A stored or issued pair as a served certificate, or `undefined` when it cannot serve. */
  #accept(name: string, cert: string, key: string): ServedCertificate | undefined {
    try {
      return { ...inspectPair(cert, key), cert, key };
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      log("warn", "acme: stored certificate unusable", { name, error: err.message });
      return undefined;
    }
  }

  #setState(name: string, state: NameState, next: AcmeState): void {
    if (state.state === next) return;
    state.state = next;
    log("debug", "acme: state", { name, state: next });
  }

  /**
   * The client for the configured directory, with the fleet's account key (created once for
   * the fleet: the first instance to store one wins, the others use it).
   */
  async #acmeClient(config: AcmeConfig): Promise<acme.Client> {
    const ca = config.ca_cert_file === undefined
      ? undefined
      : await Deno.readTextFile(config.ca_cert_file);
    if (this.#client?.directory === config.directory && this.#client.ca === ca) {
      return this.#client.client;
    }
    // acme-client makes its requests with one shared axios instance.
    acme.axios.defaults.httpsAgent = ca === undefined ? undefined : new Agent({ ca });
    acme.axios.defaults.timeout = 30_000;
    let account = await this.#store.getAccount();
    if (account === null || account.directory !== config.directory) {
      // Registered before it is stored, with its URL: the other instances then use the account
      // as it is (registering an existing key again makes acme-client send an empty update,
      // which strict CAs refuse). A loser of the race uses the winner's account.
      const key = (await acme.crypto.createPrivateEcdsaKey()).toString();
      const fresh = new acme.Client({ directoryUrl: config.directory, accountKey: key });
      await fresh.createAccount({
        termsOfServiceAgreed: true,
        ...(config.email ? { contact: [`mailto:${config.email}`] } : {}),
      });
      const record = { key, url: fresh.getAccountUrl(), directory: config.directory };
      account = account === null
        ? await this.#store.putAccountIfAbsent(record)
        : (await this.#store.putAccount(record), record);
    }
    const client = new acme.Client({
      directoryUrl: config.directory,
      accountKey: account.key,
      accountUrl: account.url,
    });
    this.#client = { directory: config.directory, ca, client };
    return client;
  }
}
