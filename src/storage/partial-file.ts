/**
 * A download in progress: a temp file in the state folder that verified chunks are written into at
 * their offsets. Only when every chunk is there does the file appear under its final name, via a hard
 * link that cannot replace an existing file; nothing ever exists under the final name before that.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MAX_FILE_NAME_BYTES } from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { syncDir, tempNameFor } from './atomic-file.js';
import { Bitfield } from './bitfield.js';
import { assertFileName, chunkCount, chunkHash, chunkLength, fileIdHex, type Manifest } from './manifest.js';

export const PARTIAL_DIR_NAME = 'partial';
/** `name (1).ext` ... `name (N).ext` are tried before giving up on a free name. */
const MAX_NAME_SUFFIX = 9999;

/** Temp paths in use by this process: two downloads of one file must not share a temp file. */
const openPartials = new Set<string>();

/** True when `data` is exactly chunk `index` of the manifest (length and SHA-256). */
export function isValidChunk(manifest: Manifest, index: number, data: Buffer): boolean {
  if (data.length !== chunkLength(manifest, index)) return false;
  return createHash('sha256').update(data).digest().equals(chunkHash(manifest, index));
}

export class PartialFile {
  /** Chunks written (each verified before it was written). */
  readonly have: Bitfield;
  private handle: fs.FileHandle | null;
  private readonly operations = new Set<Promise<unknown>>();
  private state: 'open' | 'finishing' | 'done' = 'open';

  private constructor(
    readonly manifest: Manifest,
    /** The temp file: `stateDir/partial/<fileIdHex>.part`. */
    readonly tempPath: string,
    handle: fs.FileHandle,
  ) {
    this.handle = handle;
    this.have = new Bitfield(chunkCount(manifest));
  }

  /**
   * Creates the temp file for `manifest` (pre-sized, sparse where the filesystem allows). A leftover
   * temp file from an earlier run is replaced; the same file being downloaded twice at once is an error.
   */
  static async create(stateDir: string, manifest: Manifest): Promise<PartialFile> {
    const dir = path.join(stateDir, PARTIAL_DIR_NAME);
    const tempPath = path.join(dir, `${fileIdHex(manifest.id)}.part`);
    if (openPartials.has(tempPath)) {
      throw new SwarmError(
        'ERR_INVALID_ARGUMENT',
        `${manifest.name} is already being downloaded into ${stateDir}`,
      );
    }
    openPartials.add(tempPath);
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      // Ordinary file permissions (the umask applies), as the finished file keeps them; while the
      // download runs, the 0700 state folder keeps it private.
      const handle = await fs.open(tempPath, 'w+', 0o666);
      try {
        await handle.truncate(manifest.size);
      } catch (err) {
        await handle.close();
        await fs.rm(tempPath, { force: true });
        throw err;
      }
      return new PartialFile(manifest, tempPath, handle);
    } catch (err) {
      openPartials.delete(tempPath);
      throw new SwarmError('ERR_IO', `cannot create ${tempPath}: ${errorMessage(err)}`, { cause: err });
    }
  }

  get complete(): boolean {
    return this.have.complete;
  }

  /**
   * Verifies `data` as chunk `index` (exact length and SHA-256) and writes it at its offset.
   * ERR_CHUNK_HASH_MISMATCH if it is not that chunk: nothing unverified ever reaches the file.
   */
  async write(index: number, data: Buffer): Promise<void> {
    this.checkIndex(index);
    if (!isValidChunk(this.manifest, index, data)) {
      throw new SwarmError(
        'ERR_CHUNK_HASH_MISMATCH',
        `chunk ${index} of ${this.manifest.name} failed verification`,
      );
    }
    if (this.have.has(index)) return;
    await this.track(async (handle) => {
      const position = index * this.manifest.chunkSize;
      for (let written = 0; written < data.length;) {
        const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
        written += bytesWritten;
      }
    });
    this.have.set(index);
  }

  /** Chunk `index` if it has been written (verified), else null. Null too once finished or aborted. */
  async read(index: number): Promise<Buffer | null> {
    if (!this.have.has(index) || this.state !== 'open') return null;
    const length = chunkLength(this.manifest, index);
    const data = Buffer.allocUnsafe(length);
    const ok = await this.track(async (handle) => {
      for (let filled = 0; filled < length;) {
        const at = index * this.manifest.chunkSize + filled;
        const { bytesRead } = await handle.read(data, filled, length - filled, at);
        if (bytesRead === 0) return false;
        filled += bytesRead;
      }
      return true;
    }).catch(() => false);
    return ok ? data : null;
  }

  /**
   * Moves the complete file into `destDir` as `name`, or `name (1).ext`, `name (2).ext`... if that is
   * taken: an existing file is never replaced. Returns the final path. The name must be one safe path
   * component (ERR_BAD_NAME otherwise); it often comes from another peer.
   */
  async finalize(destDir: string, name: string): Promise<string> {
    assertFileName(name);
    if (this.state !== 'open')
      throw new SwarmError('ERR_CLOSED', `${this.tempPath} was already finalized or aborted`);
    if (!this.have.complete) {
      throw new SwarmError(
        'ERR_INVALID_ARGUMENT',
        `${this.manifest.name} has ${this.have.setCount} of ${this.have.size} chunks; it cannot be finalized`,
      );
    }
    this.state = 'finishing';
    // Whatever fails from here on, the file ends 'done': its handle closed, its temp file removed (there
    // is no resuming a download, so a temp file kept would only take space) and its name free again.
    try {
      await this.settle();
      await this.closeHandle();
      const dir = path.resolve(destDir);
      await fs.mkdir(dir, { recursive: true });
      const finalPath = await placeWithoutClobber(this.tempPath, dir, name);
      await fs.rm(this.tempPath, { force: true });
      await syncDir(dir);
      return finalPath;
    } catch (err) {
      await fs.rm(this.tempPath, { force: true }).catch(() => undefined);
      if (err instanceof SwarmError) throw err;
      throw new SwarmError(
        'ERR_IO',
        `cannot finish ${this.manifest.name} in ${destDir}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    } finally {
      this.state = 'done';
      openPartials.delete(this.tempPath);
    }
  }

  /** Closes and deletes the temp file. Idempotent; a no-op after finalize. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'done';
    await this.settle();
    const handle = this.handle;
    this.handle = null;
    try {
      await handle?.close();
    } finally {
      await fs.rm(this.tempPath, { force: true });
      openPartials.delete(this.tempPath);
    }
  }

  /** Flushes the temp file to disk and closes it; it is closed even if the flush fails. */
  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (!handle) return;
    try {
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    await handle.close();
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.have.size) {
      throw new SwarmError('ERR_UNKNOWN_CHUNK', `chunk ${index} is not part of ${this.manifest.name}`);
    }
  }

  /** Runs a file operation, unless the file is closing, and remembers it until it settles. */
  private async track<T>(operation: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    if (this.state !== 'open' || !this.handle) {
      throw new SwarmError('ERR_CLOSED', `${this.tempPath} is closed`);
    }
    const promise = operation(this.handle);
    this.operations.add(promise);
    try {
      return await promise;
    } finally {
      this.operations.delete(promise);
    }
  }

  private async settle(): Promise<void> {
    await Promise.allSettled([...this.operations]);
  }
}

/**
 * Hard-links `source` into `dir` under `name` or the first free `name (n).ext`, then returns the path.
 * A link fails with EEXIST rather than replace a file, so a name taken meanwhile is never clobbered.
 */
async function placeWithoutClobber(source: string, dir: string, name: string): Promise<string> {
  let from = source;
  let copy: string | null = null;
  try {
    for (let n = 0; n <= MAX_NAME_SUFFIX; n++) {
      const candidate = n === 0 ? name : numberedName(name, n);
      const target = path.join(dir, candidate);
      if (path.dirname(target) !== dir || path.basename(target) !== candidate) {
        throw new SwarmError('ERR_BAD_NAME', `refusing to write ${JSON.stringify(candidate)} outside ${dir}`);
      }
      try {
        await fs.link(from, target);
        return target;
      } catch (err) {
        const code = errorCode(err);
        if (code === 'EEXIST') continue;
        if (code === 'EXDEV' && copy === null) {
          // The state folder is on another filesystem: copy next to the target first, then link that.
          copy = tempNameFor(target);
          await fs.copyFile(source, copy, fs.constants.COPYFILE_EXCL);
          from = copy;
          n--;
          continue;
        }
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
          // No hard links here (FAT, some network shares): reserve the name with an exclusive create,
          // then rename over our own empty placeholder. The name shows an empty file for a moment.
          if (!(await reserve(target))) continue;
          await fs.rename(from, target);
          return target;
        }
        throw err;
      }
    }
    throw new SwarmError('ERR_IO', `no free name like ${JSON.stringify(name)} in ${dir}`);
  } finally {
    if (copy) await fs.rm(copy, { force: true });
  }
}

/** Creates an empty `file` unless something has that name; true if we created it. */
async function reserve(file: string): Promise<boolean> {
  try {
    await (await fs.open(file, 'wx')).close();
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
}

/** `photo.jpg` → `photo (2).jpg`, `.bashrc` → `.bashrc (2)`, kept within the name length limit. */
export function numberedName(name: string, n: number): string {
  const ext = path.extname(name);
  let stem = name.slice(0, name.length - ext.length);
  const suffix = ` (${n})${ext}`;
  const tooLong = (): boolean => Buffer.byteLength(stem + suffix, 'utf8') > MAX_FILE_NAME_BYTES;
  if (tooLong()) {
    const chars = Array.from(stem); // whole code points, never half a surrogate pair
    while (chars.length > 0 && tooLong()) {
      chars.pop();
      stem = chars.join('');
    }
  }
  const result = stem + suffix;
  assertFileName(result);
  return result;
}
