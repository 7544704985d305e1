/**
 * A download in progress: a temp file in the state folder that verified chunks are written into at
 * their offsets. Only when every chunk is there does the file appear under its final name, via a hard
 * link that cannot replace an existing file; nothing ever exists under the final name before that.
 *
 * It survives a crash: which chunks are written is saved beside it (partial-state.ts), batched, and
 * only for chunks whose data was fdatasync'ed first. Opening the same file again resumes it, hashing
 * again every chunk the state claims (or, with no usable state, every chunk) and keeping only those
 * that match the manifest. Before the final link, the whole file is fsynced and read back, chunk by
 * chunk: a chunk that changed on disk since it was verified is reported (BadChunksError) and missing
 * again, to be fetched anew. A download that fails or stops keeps both files (close()); only abort()
 * and a finished download remove them.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  HASH_BYTES,
  MAX_FILE_NAME_BYTES,
  PARTIAL_STATE_SAVE_INTERVAL_MS,
  STATE_DIR_NAME,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { releaseBuffer } from '../buffer-pool.js';
import { readSmallFile, syncDir, tempNameFor, writeFileAtomic } from './atomic-file.js';
import { claimDownload, type DownloadClaim } from './download-claim.js';
import { Bitfield } from './bitfield.js';
import { hashInline, sharedHashPool } from './hash-pool.js';
import { assertFileName, quoteName } from './file-name.js';
import { chunkCount, chunkHash, chunkLength, computeFileId, fileIdHex, type Manifest } from './manifest.js';
import {
  BatchedSaver,
  decodePartialState,
  encodePartialState,
  type DecodedPartialState,
} from './partial-state.js';

export const PARTIAL_DIR_NAME = 'partial';
/** `name (1).ext` ... `name (N).ext` are tried before giving up on a free name. */
const MAX_NAME_SUFFIX = 9999;
/** The final check reads and hashes this much (whole chunks, at least one) at a time... */
const FINAL_CHECK_BLOCK_BYTES = 4 * 1024 * 1024;
/** ...in this many buffers: one being read while two workers hash the others. */
const FINAL_CHECK_BLOCKS = 3;
/** A state file larger than this is not one of ours (65536 chunks take 8 KiB of bitfield). */
const MAX_STATE_FILE_BYTES = 64 * 1024;

/** Temp paths in use by this process: two downloads of one file must not share a temp file. */
const openPartials = new Set<string>();

/** True when `data` is exactly chunk `index` of the manifest (length and SHA-256). */
export function isValidChunk(manifest: Manifest, index: number, data: Buffer): boolean {
  if (data.length !== chunkLength(manifest, index)) return false;
  return createHash('sha256').update(data).digest().equals(chunkHash(manifest, index));
}

/**
 * Where a download of `fileId` keeps its data and its state under `stateDir`, and the claim that
 * keeps other processes from downloading it there at the same time (download-claim.ts).
 */
export function partialPaths(
  stateDir: string,
  fileId: Buffer,
): { part: string; state: string; claim: string } {
  const base = path.join(stateDir, PARTIAL_DIR_NAME, fileIdHex(fileId));
  return { part: `${base}.part`, state: `${base}.state`, claim: `${base}.claim` };
}

/** True when a download of `fileId` was left under `stateDir` to be resumed. */
export async function hasPartial(stateDir: string, fileId: Buffer): Promise<boolean> {
  return fs.stat(partialPaths(stateDir, fileId).part).then(
    (stat) => stat.isFile(),
    () => false,
  );
}

export interface PartialFileOptions {
  logger?: Logger;
  /** How often the state is saved at most while chunks arrive. */
  saveIntervalMs?: number;
}

/** What opening a download found on disk. */
export interface ResumeInfo {
  /**
   * 'new': no temp file, a fresh start; 'state': the chunks its state claimed were checked;
   * 'rehash': no usable state (missing, truncated, garbage, another file's), every chunk was checked.
   */
  from: 'new' | 'state' | 'rehash';
  /** Why the state could not be used ('rehash'), or null. */
  problem: string | null;
  /** Chunks hashed again. */
  checked: number;
  /** Chunks that matched the manifest, now counted as verified. */
  chunks: number;
  bytes: number;
}

/** The final whole-file check found chunks that are not what was verified: they are missing again. */
export class BadChunksError extends SwarmError {
  constructor(
    readonly chunks: number[],
    message: string,
  ) {
    super('ERR_FILE_HASH_MISMATCH', message);
    this.name = 'BadChunksError';
  }
}

export class PartialFile {
  /** Chunks written (each verified before it was written). */
  readonly have: Bitfield;
  /** What was found on disk when it was opened. */
  resumed: ResumeInfo = { from: 'new', problem: null, checked: 0, chunks: 0, bytes: 0 };
  private handle: fs.FileHandle | null;
  private readonly operations = new Set<Promise<unknown>>();
  private state: 'open' | 'finishing' | 'done' = 'open';
  private readonly saver: BatchedSaver;
  private readonly logger: Logger;
  /** The folder named in disk errors: the download folder (the state folder's parent). */
  private readonly folder: string;
  /** This process's claim on the temp file, against other processes (released once done). */
  private readonly claim: DownloadClaim;

  private constructor(
    readonly manifest: Manifest,
    /** The temp file: `stateDir/partial/<fileIdHex>.part`. */
    readonly tempPath: string,
    /** Its state: `stateDir/partial/<fileIdHex>.state`. */
    readonly statePath: string,
    handle: fs.FileHandle,
    claim: DownloadClaim,
    stateDir: string,
    options: PartialFileOptions,
  ) {
    this.handle = handle;
    this.claim = claim;
    this.have = new Bitfield(chunkCount(manifest));
    this.logger = options.logger ?? silentLogger();
    this.folder = downloadFolderOf(stateDir);
    this.saver = new BatchedSaver(
      options.saveIntervalMs ?? PARTIAL_STATE_SAVE_INTERVAL_MS,
      () => this.saveState(),
      (err) => this.logger.warn({ err: errorMessage(err) }, 'could not save the download state; will retry'),
    );
  }

  /**
   * Opens the temp file for `manifest` (pre-sized, sparse where the filesystem allows), resuming
   * what an earlier run left: see `resumed`. The same file being downloaded into the same folder
   * twice at once, by this process or another, is refused (ERR_IN_PROGRESS).
   */
  static async create(
    stateDir: string,
    manifest: Manifest,
    options: PartialFileOptions = {},
  ): Promise<PartialFile> {
    const { part: tempPath, state: statePath, claim: claimPath } = partialPaths(stateDir, manifest.id);
    if (openPartials.has(tempPath)) {
      throw new SwarmError(
        'ERR_IN_PROGRESS',
        `${manifest.name} is already being downloaded into ${stateDir}`,
      );
    }
    openPartials.add(tempPath);
    let claim: DownloadClaim | null = null;
    try {
      const dir = path.dirname(tempPath);
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await assertRealFolder(dir);
      claim = await claimDownload(claimPath, manifest.name);
      await removeStaleTemps(dir, path.basename(statePath));
      let existed = true;
      let handle: fs.FileHandle;
      // Never through a symlink planted at the temp name: it could lead our writes (and the
      // truncation to the file's size) to any file of the user's.
      const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;
      try {
        handle = await fs.open(tempPath, O_RDWR | O_NOFOLLOW);
      } catch (err) {
        if (errorCode(err) === 'ELOOP') throw symlinkRefused(tempPath);
        if (errorCode(err) !== 'ENOENT') throw err;
        existed = false;
        // Ordinary file permissions (the umask applies), as the finished file keeps them; while the
        // download runs, the 0700 state folder keeps it private.
        handle = await fs.open(tempPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
      }
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        throw new SwarmError(
          'ERR_INVALID_ARGUMENT',
          `${tempPath} is not a regular file; remove it to download`,
        );
      }
      const partial = new PartialFile(manifest, tempPath, statePath, handle, claim, stateDir, options);
      try {
        if ((await handle.stat()).size !== manifest.size) await handle.truncate(manifest.size);
        // A state without its data describes nothing.
        if (existed) await partial.recover();
        else await fs.rm(statePath, { force: true });
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
      return partial;
    } catch (err) {
      openPartials.delete(tempPath);
      await claim?.release().catch(() => undefined);
      throw storageError(err, `cannot open ${tempPath}`, downloadFolderOf(stateDir));
    }
  }

  get complete(): boolean {
    return this.have.complete;
  }

  /**
   * Verifies `data` as chunk `index` (exact length and SHA-256) and writes it at its offset.
   * ERR_CHUNK_HASH_MISMATCH if it is not that chunk: nothing unverified ever reaches the file.
   * ERR_DISK_FULL or ERR_NOT_WRITABLE when the disk refuses it.
   *
   * Takes `data`: a pooled frame body (buffer-pool.ts) goes back to the pool once write() settles,
   * so its bytes must not be read after that (its length stays).
   */
  async write(index: number, data: Buffer): Promise<void> {
    try {
      await this.verifyAndWrite(index, data);
    } finally {
      releaseBuffer(data);
    }
  }

  private async verifyAndWrite(index: number, data: Buffer): Promise<void> {
    this.checkIndex(index);
    // Hashed here, on the main thread: a worker did not pay for chunks (see ARCHITECTURE.md).
    if (!isValidChunk(this.manifest, index, data)) {
      throw new SwarmError(
        'ERR_CHUNK_HASH_MISMATCH',
        `chunk ${index} of ${this.manifest.name} failed verification`,
      );
    }
    if (this.have.has(index)) return;
    try {
      await this.track(async (handle) => {
        const position = index * this.manifest.chunkSize;
        for (let written = 0; written < data.length;) {
          const { bytesWritten } = await handle.write(
            data,
            written,
            data.length - written,
            position + written,
          );
          written += bytesWritten;
        }
      });
    } catch (err) {
      throw storageError(err, `cannot write ${this.tempPath}`, this.folder);
    }
    this.have.set(index);
    this.saver.changed();
  }

  /** Chunk `index` if it has been written (verified), else null. Null too once finished or aborted. */
  async read(index: number): Promise<Buffer | null> {
    if (!this.have.has(index) || this.state !== 'open') return null;
    const length = chunkLength(this.manifest, index);
    const data = Buffer.allocUnsafe(length);
    const ok = await this.track((handle) => readChunkInto(handle, this.manifest, index, data)).catch(
      () => false,
    );
    return ok ? data : null;
  }

  /** Saves the state now (normally batched); for a download that pauses. */
  async saveNow(): Promise<void> {
    if (this.state === 'open') await this.saver.flush();
  }

  /**
   * Moves the complete file into `destDir` as `name`, or `name (1).ext`, `name (2).ext`... if that is
   * taken: an existing file is never replaced. Returns the final path. The name must be one safe path
   * component (ERR_BAD_NAME otherwise); it often comes from another peer.
   *
   * First the file is fsynced and read back whole: a chunk that no longer matches the manifest is
   * missing again and BadChunksError says which (the file stays open for them). Any other failure
   * closes the file and keeps it, with its state, for a resume.
   */
  async finalize(destDir: string, name: string): Promise<string> {
    assertFileName(name);
    if (this.state !== 'open')
      throw new SwarmError('ERR_CLOSED', `${this.tempPath} was already finalized or closed`);
    if (!this.have.complete) {
      throw new SwarmError(
        'ERR_INVALID_ARGUMENT',
        `${this.manifest.name} has ${this.have.setCount} of ${this.have.size} chunks; it cannot be finalized`,
      );
    }
    this.state = 'finishing';
    try {
      await this.settle();
      await this.saver.stop();
      // The flush and the final check go together: the check reads the same pages the flush
      // writes back, so neither waits for the other.
      await Promise.all([this.handle!.sync(), this.finalCheck()]);
      await this.closeHandle();
      const dir = path.resolve(destDir);
      await fs.mkdir(dir, { recursive: true });
      const finalPath = await placeWithoutClobber(this.tempPath, dir, name);
      await fs.rm(this.tempPath, { force: true });
      await fs.rm(this.statePath, { force: true });
      await syncDir(dir);
      await syncDir(path.dirname(this.tempPath));
      this.state = 'done';
      await this.release();
      return finalPath;
    } catch (err) {
      if (err instanceof BadChunksError) {
        this.state = 'open';
        this.saver.start();
        await this.saveState().catch((saveErr: unknown) =>
          this.logger.warn({ err: errorMessage(saveErr) }, 'could not save the download state'),
        );
        throw err;
      }
      // The verified data stays for a resume: its state claims every chunk, each checked again then.
      await this.closeKeeping().catch(() => undefined);
      throw storageError(err, `cannot finish ${this.manifest.name} in ${destDir}`, path.resolve(destDir));
    }
  }

  /**
   * Stops writing and closes the temp file, keeping it and its state (saved now) for a resume.
   * Idempotent; a no-op after finalize or abort. Rejects if the state could not be saved (the file
   * is closed all the same; a resume then hashes it whole).
   */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'finishing';
    await this.settle();
    await this.closeKeeping();
  }

  /** Closes and deletes the temp file and its state (a download cancelled). Idempotent; a no-op after finalize. */
  async abort(): Promise<void> {
    if (this.state === 'done') return;
    this.state = 'done';
    await this.settle();
    await this.saver.stop();
    const handle = this.handle;
    this.handle = null;
    try {
      await handle?.close();
    } finally {
      await fs.rm(this.tempPath, { force: true });
      await fs.rm(this.statePath, { force: true });
      await this.release();
    }
  }

  /** Hashes again the chunks an earlier run left (those its state claims, or all), keeping the good ones. */
  private async recover(): Promise<void> {
    const total = this.have.size;
    const decoded = await readStateFile(this.statePath, this.manifest);
    const claimed = decoded.ok ? decoded.have : Bitfield.full(total);
    const buffer = Buffer.allocUnsafe(Math.min(this.manifest.chunkSize, Math.max(this.manifest.size, 1)));
    let checked = 0;
    let bytes = 0;
    for (const index of claimed.indices()) {
      checked++;
      const data = buffer.subarray(0, chunkLength(this.manifest, index));
      if (
        (await readChunkInto(this.handle!, this.manifest, index, data)) &&
        isValidChunk(this.manifest, index, data)
      ) {
        this.have.set(index);
        bytes += data.length;
      }
    }
    this.resumed = {
      from: decoded.ok ? 'state' : 'rehash',
      problem: decoded.ok ? null : decoded.problem,
      checked,
      chunks: this.have.setCount,
      bytes,
    };
    this.logger.info({ ...this.resumed, total }, 'partial download found; resuming');
    // What is on disk now describes what was found, not what was claimed.
    if (!decoded.ok || this.have.setCount !== claimed.setCount) await this.saveState();
  }

  /**
   * Reads the whole file back, chunk by chunk, against the manifest; and the file id from the hashes
   * read, against the manifest's id. Bad chunks leave `have` and are thrown as BadChunksError.
   */
  private async finalCheck(): Promise<void> {
    const total = this.have.size;
    const { chunkSize, size } = this.manifest;
    const hashes = Buffer.alloc(total * HASH_BYTES);
    // Whole chunks per block, read with one positional read into shared memory and hashed by a worker
    // (chunk by chunk) while the next block is read: two workers hash two blocks at once.
    const chunksPerBlock = Math.max(1, Math.floor(FINAL_CHECK_BLOCK_BYTES / chunkSize));
    const blockBytes = Math.min(chunksPerBlock * chunkSize, Math.max(size, 1));
    const buffers = Array.from({ length: FINAL_CHECK_BLOCKS }, () =>
      Buffer.from(new SharedArrayBuffer(blockBytes)),
    );
    const pool = sharedHashPool();
    const hashing: Promise<void>[] = [];
    for (let first = 0, turn = 0; first < total; first += chunksPerBlock, turn++) {
      // A buffer is read into again only once its last block is hashed.
      if (hashing.length === FINAL_CHECK_BLOCKS) await hashing.shift();
      const start = first * chunkSize;
      const block = buffers[turn % FINAL_CHECK_BLOCKS]!.subarray(0, Math.min(blockBytes, size - start));
      const filled = await this.readBlock(block, start);
      block.fill(0, filled); // past the end of a short file: fails its hash
      const inline = (): Buffer => hashPieces(block, chunkSize);
      const job = pool.hash(block, chunkSize)?.catch(inline) ?? Promise.resolve(inline());
      hashing.push(job.then((digests) => void digests.copy(hashes, first * HASH_BYTES)));
    }
    await Promise.all(hashing);
    const bad: number[] = [];
    for (let index = 0; index < total; index++) {
      const hash = hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);
      if (!hash.equals(chunkHash(this.manifest, index))) bad.push(index);
    }
    if (bad.length > 0) {
      for (const index of bad) this.have.clear(index);
      this.logger.warn(
        { chunks: bad.slice(0, 20), count: bad.length },
        'final check: chunks changed on disk',
      );
      throw new BadChunksError(
        bad,
        `${bad.length} chunk(s) of ${this.manifest.name} changed on disk after they were verified ` +
          `(${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', ...' : ''}); they are fetched again`,
      );
    }
    if (!computeFileId(this.manifest.size, this.manifest.chunkSize, hashes).equals(this.manifest.id)) {
      // Every chunk matches its hash, so the manifest's hashes are not those of its id: nothing to resume.
      throw new SwarmError(
        'ERR_BAD_MANIFEST',
        `the chunk hashes of ${this.manifest.name} do not match its id`,
      );
    }
  }

  /** Fills `block` from `position`; returns the bytes read (fewer only if the file ends first). */
  private async readBlock(block: Buffer, position: number): Promise<number> {
    let filled = 0;
    while (filled < block.length) {
      const { bytesRead } = await this.handle!.read(block, filled, block.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }

  /**
   * The state file, claiming exactly the chunks written so far. Their data is fdatasync'ed first, so
   * a crash at any moment leaves a state that claims nothing the disk does not hold.
   */
  private async saveState(): Promise<void> {
    const handle = this.handle;
    if (!handle) return;
    const snapshot = new Bitfield(this.have.size, this.have.bytes);
    await handle.datasync();
    try {
      await writeFileAtomic(this.statePath, encodePartialState(this.manifest, snapshot), { mode: 0o600 });
    } catch (err) {
      throw storageError(err, `cannot save ${this.statePath}`, this.folder);
    }
  }

  /** Saves the state if it changed, then closes the handle, keeping both files; ends 'done'. */
  private async closeKeeping(): Promise<void> {
    let saveError: unknown = null;
    try {
      // Saved even if unchanged: a resume with a state file checks only what it claims.
      this.saver.changed();
      await this.saver.flush();
    } catch (err) {
      saveError = err;
    }
    await this.saver.stop();
    const handle = this.handle;
    this.handle = null;
    this.state = 'done';
    try {
      await handle?.close();
    } finally {
      await this.release();
    }
    if (saveError) throw saveError;
  }

  /** Lets the temp file be opened again, by this process or another. */
  private async release(): Promise<void> {
    openPartials.delete(this.tempPath);
    await this.claim
      .release()
      .catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, 'could not release the claim'));
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

/** SHA-256 of each `piece` bytes of `data` (at least one, for an empty file), concatenated. */
function hashPieces(data: Buffer, piece: number): Buffer {
  const count = Math.max(1, Math.ceil(data.length / piece));
  const digests = Buffer.allocUnsafe(count * HASH_BYTES);
  for (let i = 0; i < count; i++) {
    hashInline(data.subarray(i * piece, (i + 1) * piece)).copy(digests, i * HASH_BYTES);
  }
  return digests;
}

/** Fills `data` with chunk `index` from `handle`; false if the file ends first. */
async function readChunkInto(
  handle: fs.FileHandle,
  manifest: Manifest,
  index: number,
  data: Buffer,
): Promise<boolean> {
  for (let filled = 0; filled < data.length;) {
    const at = index * manifest.chunkSize + filled;
    const { bytesRead } = await handle.read(data, filled, data.length - filled, at);
    if (bytesRead === 0) return false;
    filled += bytesRead;
  }
  return true;
}

/** The state file's claims, or why they cannot be used (missing, unreadable, bad). */
async function readStateFile(statePath: string, manifest: Manifest): Promise<DecodedPartialState> {
  try {
    const data = await readSmallFile(statePath, MAX_STATE_FILE_BYTES);
    return data ? decodePartialState(data, manifest) : { ok: false, problem: 'no state file' };
  } catch (err) {
    // Not a regular file, or too large: readSmallFile says which.
    if (err instanceof SwarmError) return { ok: false, problem: err.message };
    return { ok: false, problem: `unreadable: ${errorMessage(err)}` };
  }
}

/**
 * Refuses a folder that is a symlink: the state folder's `partial` folder is ours, and a link there
 * would take downloads in progress outside the download folder.
 */
async function assertRealFolder(dir: string): Promise<void> {
  const stat = await fs.lstat(dir);
  if (stat.isSymbolicLink()) throw symlinkRefused(dir);
  if (!stat.isDirectory()) throw new SwarmError('ERR_INVALID_ARGUMENT', `${dir} must be a folder`);
}

function symlinkRefused(where: string): SwarmError {
  return new SwarmError(
    'ERR_OUTSIDE_DIR',
    `${where} is a symbolic link; refusing to follow it out of the download folder (remove it to download)`,
  );
}

/** Temp files of state saves that a crash interrupted (see tempNameFor). */
async function removeStaleTemps(dir: string, stateName: string): Promise<void> {
  const prefix = `.${stateName}.`;
  for (const entry of await fs.readdir(dir)) {
    if (entry.startsWith(prefix) && entry.endsWith('.tmp'))
      await fs.rm(path.join(dir, entry), { force: true });
  }
}

/** The folder a person knows a download by: the one holding the state folder. */
function downloadFolderOf(stateDir: string): string {
  const resolved = path.resolve(stateDir);
  return path.basename(resolved) === STATE_DIR_NAME ? path.dirname(resolved) : resolved;
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
const NOT_WRITABLE_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/** A file-system error as one of ours: a full disk and an unwritable folder get their own codes. */
function storageError(err: unknown, what: string, folder: string): SwarmError {
  if (err instanceof SwarmError) return err;
  const code = errorCode(err);
  if (code && DISK_FULL_CODES.has(code)) {
    return new SwarmError(
      'ERR_DISK_FULL',
      `${what}: no space left on the disk holding ${folder}: free some space there, then get the ` +
        'file again to resume (what is verified so far is kept)',
      { cause: err },
    );
  }
  if (code && NOT_WRITABLE_CODES.has(code)) {
    return new SwarmError(
      'ERR_NOT_WRITABLE',
      `${what}: ${folder} cannot be written (${code}): make it writable, then get the file again`,
      { cause: err },
    );
  }
  return new SwarmError('ERR_IO', `${what}: ${errorMessage(err)}`, { cause: err });
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
          // A short temp name: the target's own may already take all of the 255 bytes a name has.
          copy = tempNameFor(path.join(dir, 'download'));
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
    throw new SwarmError(
      'ERR_IO',
      `no free name like ${quoteName(name)} in ${dir}: up to ${quoteName(numberedName(name, MAX_NAME_SUFFIX))} ` +
        'all exist; move some away and get the file again',
    );
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
