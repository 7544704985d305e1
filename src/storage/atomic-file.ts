/**
 * Small files written atomically: the content goes to a temp file in the same folder, is flushed to
 * disk, then appears under its name in one step, so a crash leaves the old file or the new one,
 * never half of either.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SwarmError, errorCode } from '../errors.js';

export interface AtomicWriteOptions {
  mode?: number;
  /**
   * true (default): replace any existing file (rename). false: never replace one (hard link, which
   * fails atomically if the name is taken); the write then returns false and leaves the file alone.
   */
  overwrite?: boolean;
}

/** A temp name next to `file` that no other writer uses. */
export function tempNameFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
}

/** Writes `data` to `file` atomically. Returns false only when overwrite is false and `file` exists. */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  options: AtomicWriteOptions = {},
): Promise<boolean> {
  const temp = tempNameFor(file);
  const handle = await fs.open(temp, 'wx', options.mode ?? 0o644);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.overwrite === false) {
      try {
        await fs.link(temp, file);
      } catch (err) {
        if (errorCode(err) === 'EEXIST') return false;
        throw err;
      }
    } else {
      await fs.rename(temp, file);
    }
    await syncDir(path.dirname(file));
    return true;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/**
 * Reads a small file of ours whole: never through a symlink, and only a regular file (a FIFO or a
 * device could block or never end). null if there is none; SwarmError ERR_IO if it is not a regular
 * file or is over `maxBytes`.
 */
export async function readSmallFile(file: string, maxBytes: number): Promise<Buffer | null> {
  let handle: fs.FileHandle;
  try {
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fsConstants;
    handle = await fs.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SwarmError('ERR_IO', 'not a regular file');
    if (stat.size > maxBytes) throw new SwarmError('ERR_IO', `too large (${stat.size} bytes)`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Flushes a folder's entries (a new or renamed name) to disk; best effort where unsupported. */
export async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms and filesystems cannot open or fsync a directory; the data itself is synced.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
