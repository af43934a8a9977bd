/**
 * Certificates made at test time with Debian's `openssl`: a private CA, and leaf certificates it
 * signs for given names and validity (also already expired), each in a temp directory.
 *
 * @module
 */

/** A PEM certificate chain and its key, with the files they are written to. */
export interface TestPair {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A private test CA. */
export interface TestCa extends AsyncDisposable {
  /** The CA certificate, PEM (what clients trust). */
  readonly cert: string;
  readonly certFile: string;
  readonly dir: string;
  /**
   * Issues a certificate for `names` (SAN DNS entries, `IP:…` an IP entry; a name starting
   * with `CN=` becomes the subject and no SAN is written). `days` may be negative for one that has already expired.
   */
  issue(names: readonly string[], options?: { days?: number; file?: string }): Promise<TestPair>;
  close(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** `YYYYMMDDHHMMSSZ` as `openssl ca -startdate` wants it. */
function stamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
}

/**
 * Makes a CA in a fresh temp directory.
 *
 * @example
 * ```ts
 * await using ca = await makeCa();
 * const pair = await ca.issue(["a.test"]);
 * ```
 */
export async function makeCa(): Promise<TestCa> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-ca-" });
  await Deno.writeTextFile(`${dir}/index.txt`, "");
  await Deno.writeTextFile(
    `${dir}/ca.cnf`,
    `[ca]\ndefault_ca = dflt\n[dflt]\ndatabase = ${dir}/index.txt\nnew_certs_dir = ${dir}\n` +
      `rand_serial = yes\ndefault_md = sha256\npolicy = any\nunique_subject = no\n` +
      `copy_extensions = none\n[any]\ncommonName = supplied\n`,
  );
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "30",
    "-subj",
    "/CN=dynlb test CA",
  ], dir);
  const cert = await Deno.readTextFile(`${dir}/ca.pem`);
  let count = 0;
  const close = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  return {
    cert,
    certFile: `${dir}/ca.pem`,
    dir,
    async issue(names, options = {}) {
      const id = `leaf${++count}`;
      const cn = names[0].startsWith("CN=")
        ? names[0].slice(3)
        : names.find((n) => !n.startsWith("IP:")) ?? "test";
      await openssl([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${id}.key`,
        "-out",
        `${id}.csr`,
        "-subj",
        `/CN=${cn}`,
      ], dir);
      const days = options.days ?? 30;
      const now = Date.now();
      const [start, end] = days >= 0
        ? [new Date(now - 3_600_000), new Date(now + days * 86_400_000)]
        : [new Date(now + (days - 1) * 86_400_000), new Date(now + days * 86_400_000)];
      const ext = names[0].startsWith("CN=")
        ? "basicConstraints=CA:FALSE\n"
        : `subjectAltName=${names.map((n) => n.startsWith("IP:") ? n : `DNS:${n}`).join(",")}\n`;
      await Deno.writeTextFile(`${dir}/${id}.ext`, ext);
      await openssl([
        "ca",
        "-batch",
        "-notext",
        "-config",
        "ca.cnf",
        "-cert",
        "ca.pem",
        "-keyfile",
        "ca.key",
        "-in",
        `${id}.csr`,
        "-out",
        `${id}.pem`,
        "-startdate",
        stamp(start),
        "-enddate",
        stamp(end),
        "-extfile",
        `${id}.ext`,
      ], dir);
      const certFile = options.file ?? `${dir}/${id}.pem`;
      const keyFile = options.file ? `${options.file}.key` : `${dir}/${id}.key`;
      const certText = await Deno.readTextFile(`${dir}/${id}.pem`);
      const keyText = await Deno.readTextFile(`${dir}/${id}.key`);
      if (options.file) {
        await Deno.writeTextFile(certFile, certText);
        await Deno.writeTextFile(keyFile, keyText);
      }
      return { cert: certText, key: keyText, certFile, keyFile };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
