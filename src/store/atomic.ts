/**
 * Atomic file replacement, shared by the file store and the last-good cache: a crash leaves the
 * old file or the new one, never a truncated one.
 *
 * @module
 */

/**
 * Writes `text` to a temporary file beside `path`, flushes it to disk, renames it over `path`
 * and flushes the directory. On failure the temporary file is removed and the error rethrown;
 * `path` is untouched.
 *
 * @example
 * ```ts
 * await writeFileAtomic("./config.json", '{"backends": [], "hosts": []}\n', 0o644);
 * ```
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash === -1 ? "." : path.slice(0, slash) || "/";
  const temp = `${dir}/.${path.slice(slash + 1)}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode });
    try {
      const bytes = new TextEncoder().encode(text);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(temp, mode).catch(() => {}); // the umask may have narrowed it
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
  await syncDirectory(dir);
}

/** Makes a rename durable; not possible everywhere, and not fatal where it is not. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Directories cannot be opened for sync on every platform.
  }
}
