/**
 * The control plane's side of TLS: which certificates the HTTPS listeners serve. It follows the
 * config (`tls.certificates`, `tls.acme`), polls configured certificate files every second (a
 * renewal by certbot and friends is served on the next handshake), keeps ACME certificates
 * through {@link AcmeManager}, and hands the whole set to the data plane as data whenever it
 * changes. A file that changes into something unusable is logged once and the certificate
 * loaded before keeps serving.
 *
 * @module
 */
import { normalizeHost } from "../config/host.ts";
import type { Config, TlsCertificateConfig } from "../config/types.ts";
import { log } from "../log.ts";
import type { AcmeManager, AcmeManagerOptions, AcmeState } from "../acme/manager.ts";
import { type AcmeStore, TOKEN } from "../acme/store.ts";
import { expiresSoon, type ServedCertificate } from "./certificate.ts";
import { CertificateIndex } from "./index.ts";
import { type ExpiredCertificates, loadCertificates, type LoadedCertificate } from "./material.ts";

/** One certificate as `GET /certificates` shows it. */
export interface CertificateListing {
  readonly names: readonly string[];
  /** The issuer's distinguished name; `null` for an ACME name still without a certificate. */
  readonly issuer: string | null;
  /** ISO time; `null` when there is no certificate yet. */
  readonly not_after: string | null;
  readonly source: "file" | "inline" | "acme";
  readonly cert_file?: string;
  /** ACME only: `pending`, `ordering`, `waiting` (another instance orders), `valid`, `failed`. */
  readonly state?: AcmeState;
  /** ACME only: the last order's error, until an order succeeds. */
  readonly last_error?: string;
}

/** What the manager needs. */
export interface TlsManagerOptions {
  /** Receives the certificate set (configured ones first, in order, then ACME ones). */
  readonly publish: (certificates: readonly ServedCertificate[]) => void;
  /** Opens the ACME store (the config's store), the first time `tls.acme` is configured. */
  readonly acmeStore: () => Promise<AcmeStore>;
  /** Poll interval of certificate files, ms; default 1000. */
  readonly pollMs?: number;
  /** ACME tuning (tests). */
  readonly acme?: Omit<AcmeManagerOptions, "store" | "onChange">;
}

interface Configured {
  readonly entry: TlsCertificateConfig;
  /** The loaded pair; `undefined` when the files could not be loaded at all. */
  loaded: LoadedCertificate | undefined;
  /** Files' identities (mtime, size, inode) when last read. */
  identity: string;
  /** The error logged for the current identity, so it is logged once. */
  reported?: string;
}

/**
 * Keeps the HTTPS listeners' certificate set.
 *
 * @example
 * ```ts
 * const tls = new TlsManager({ publish: (c) => dataPlane.applyCertificates?.(c), acmeStore });
 * tls.apply(config);
 * tls.listing();
 * ```
 */
export class TlsManager {
  readonly #publish: TlsManagerOptions["publish"];
  readonly #openAcmeStore: () => Promise<AcmeStore>;
  readonly #pollMs: number;
  readonly #acmeOptions: TlsManagerOptions["acme"];
  #configured: Configured[] = [];
  #acme: Promise<AcmeManager> | undefined;
  #acmeStore: Promise<AcmeStore> | undefined;
  #acmeManager: AcmeManager | undefined;
  #published: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: TlsManagerOptions) {
    this.#publish = options.publish;
    this.#openAcmeStore = options.acmeStore;
    this.#pollMs = options.pollMs ?? 1000;
    this.#acmeOptions = options.acme;
  }

  /** Follows a newly applied config. */
  apply(config: Config): void {
    if (this.#closed) return;
    const entries = config.tls?.certificates ?? [];
    this.#configured = entries.map((entry, i) => {
      const configured: Configured = { entry, loaded: undefined, identity: identityOf(entry) };
      // Accepted already (a stored config may name an expired one: it serves its names anyway).
      this.#load(configured, `tls.certificates[${i}]`, "warn");
      return configured;
    });
    for (const c of this.#configured) {
      if (c.loaded && expiresSoon(c.loaded)) {
        const expired = c.loaded.notAfter.getTime() <= Date.now();
        log("warn", expired ? "certificate expired" : "certificate expires soon", {
          names: c.loaded.names.join(","),
          not_after: c.loaded.notAfter.toISOString(),
        });
      }
    }
    clearTimeout(this.#timer);
    if (this.#configured.some((c) => c.entry.cert_file !== undefined)) {
      this.#timer = setTimeout(() => this.#poll(), this.#pollMs);
    }
    const acme = config.tls?.acme;
    if (acme !== undefined || this.#acme !== undefined) {
      const names = acme === undefined ? [] : this.#acmeNames(config);
      this.#acmeReady().then(
        (manager) => manager.configure(acme, names),
        (err) => log("error", "acme: cannot open the certificate store", { error: String(err) }),
      );
    }
    this.#publishIfChanged();
  }

  /** Every certificate, configured and ACME, for `GET /certificates`. */
  listing(): CertificateListing[] {
    const out: CertificateListing[] = [];
    for (const c of this.#configured) {
      const loaded = c.loaded;
      if (loaded === undefined) continue;
      out.push({
        names: loaded.names,
        issuer: oneLine(loaded.issuer),
        not_after: loaded.notAfter.toISOString(),
        source: loaded.source,
        ...(c.entry.cert_file !== undefined ? { cert_file: c.entry.cert_file } : {}),
      });
    }
    for (const status of this.#acmeManager?.status() ?? []) {
      const cert = status.certificate;
      out.push({
        names: [status.name],
        issuer: cert ? oneLine(cert.issuer) : null,
        not_after: cert ? cert.notAfter.toISOString() : null,
        source: "acme",
        state: status.state,
        ...(status.lastError !== undefined ? { last_error: status.lastError } : {}),
      });
    }
    return out;
  }

  /**
   * The key authorization of an HTTP-01 token; `null` when unknown. Tokens are looked up in the
   * store even while this instance's own config has no `tls.acme` (yet): an order another
   * instance of the fleet started may be validated here.
   */
  async answerChallenge(token: string): Promise<string | null> {
    if (!TOKEN.test(token)) return null;
    const own = this.#acmeManager?.ownChallenge(token);
    if (own !== undefined) return own;
    try {
      return await (await this.#openStore()).getChallenge(token);
    } catch {
      return null;
    }
  }

  #openStore(): Promise<AcmeStore> {
    this.#acmeStore ??= this.#openAcmeStore();
    this.#acmeStore.catch(() => (this.#acmeStore = undefined));
    return this.#acmeStore;
  }

  /** Stops polling files and ordering certificates. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#acmeManager?.close();
  }

  #acmeReady(): Promise<AcmeManager> {
    // acme-client (and the Node compatibility it pulls in) costs ~30 MB of memory: it is loaded
    // only by a config that uses ACME.
    this.#acme ??= Promise.all([this.#openStore(), import("../acme/manager.ts")]).then((
      [store, { AcmeManager }],
    ) => {
      const manager = new AcmeManager({
        ...this.#acmeOptions,
        store,
        onChange: () => this.#publishIfChanged(),
      });
      if (this.#closed) manager.close();
      this.#acmeManager = manager;
      return manager;
    });
    this.#acme.catch(() => (this.#acme = undefined));
    return this.#acme;
  }

  /** The names ACME keeps certificates for: those listed, or every plain host for `"all"`. */
  #acmeNames(config: Config): string[] {
    const acme = config.tls!.acme!;
    const candidates = acme.hosts === "all"
      ? config.hosts.map((h) => normalizeHost(h.host))
        .filter((name) => !name.includes("*") && !isIpAddress(name))
      : acme.hosts.map((name) => normalizeHost(name));
    const configured = new CertificateIndex(
      this.#configured.flatMap((c) => c.loaded ? [c.loaded] : []),
    );
    return [...new Set(candidates)].filter((name) => !configured.covers(name));
  }

  #load(configured: Configured, path: string, expired: ExpiredCertificates = "refuse"): void {
    const result = loadCertificates([configured.entry], path, undefined, expired);
    if (result.certificates.length === 1) {
      configured.loaded = result.certificates[0];
      configured.reported = undefined;
      return;
    }
    const problem = result.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    if (configured.reported !== problem) {
      log("error", "certificate cannot be loaded, keeping the one loaded before", {
        problem,
        serving: configured.loaded ? "the previous certificate" : "nothing for these names",
      });
    }
    configured.reported = problem;
  }

  #poll(): void {
    if (this.#closed) return;
    let changed = false;
    this.#configured.forEach((c, i) => {
      if (c.entry.cert_file === undefined) return;
      const identity = identityOf(c.entry);
      if (identity === c.identity) return;
      c.identity = identity;
      const before = c.loaded?.fingerprint;
      this.#load(c, `tls.certificates[${i}]`);
      if (c.loaded && c.loaded.fingerprint !== before) {
        log("info", "certificate file changed, serving the new certificate", {
          file: c.entry.cert_file,
          names: c.loaded.names.join(","),
          not_after: c.loaded.notAfter.toISOString(),
        });
        changed = true;
      }
    });
    if (changed) this.#publishIfChanged();
    this.#timer = setTimeout(() => this.#poll(), this.#pollMs);
  }

  #publishIfChanged(): void {
    if (this.#closed) return;
    const certificates: ServedCertificate[] = [
      ...this.#configured.flatMap((c) => c.loaded ? [c.loaded] : []),
      ...(this.#acmeManager?.certificates() ?? []),
    ];
    const key = certificates.map((c) => c.fingerprint).join(",");
    if (key === this.#published) return;
    this.#published = key;
    this.#publish(
      certificates.map(({ names, issuer, notBefore, notAfter, fingerprint, cert, key }) => ({
        names,
        issuer,
        notBefore,
        notAfter,
        fingerprint,
        cert,
        key,
      })),
    );
  }
}

/**
 * Both files' mtime, size and inode: certbot replaces files through symlinks, editors rename
 * over them; each shows here. A file that cannot be stat'ed reads as `missing`.
 */
function identityOf(entry: TlsCertificateConfig): string {
  if (entry.cert_file === undefined || entry.key_file === undefined) return "inline";
  return [entry.cert_file, entry.key_file].map((file) => {
    try {
      const info = Deno.statSync(file);
      return `${info.mtime?.getTime() ?? 0}:${info.size}:${info.ino ?? 0}`;
    } catch {
      return "missing";
    }
  }).join("|");
}

function oneLine(dn: string): string {
  return dn.split("\n").filter((part) => part !== "").join(", ");
}

function isIpAddress(name: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(name) || name.startsWith("[") || name.includes(":");
}
