/**
 * Crash-safe file writes for secrets and state (Node only, kept out of the
 * platform-neutral protocol core): a temp file beside the target with an
 * exact mode, fsynced, then renamed or linked into place. A crash never
 * leaves a half-written key, certificate or credential behind. And the read
 * that goes with them: a file that may not be there yet.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `data` to a fresh temp file beside `path` with exactly `mode` (whatever the umask), fsynced; returns its path. */
async function writeTemp(path: string, data: string, mode: number): Promise<string> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    // The file is still empty, so nothing leaked before the exact mode is set.
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  return tmp;
}

/** Makes renames and links in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Not every platform can fsync a directory; rename and link stay atomic there.
  } finally {
    await handle.close();
  }
}

/**
 * Creates or replaces `path` atomically (temp file, fsync, rename). The
 * directory is not fsynced, so callers writing several files sync it once
 * with `syncDir`.
 */
export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  await rename(await writeTemp(path, data, mode), path);
}

/**
 * Creates `path` atomically and durably, never replacing an existing file:
 * temp file, fsync, hard link into place, fsync the directory. Throws the
 * link's EEXIST when the file already exists, so racing writers agree on the
 * first one.
 */
export async function createFileExclusive(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDir(dirname(path));
}

/** The file's text, or undefined when it does not exist; other errors throw. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
