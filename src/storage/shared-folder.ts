/**
 * The folder a peer shares from and downloads into. Everything it touches stays inside that folder:
 * paths are compared after realpath, symlinks are followed only when they lead to a place inside, and
 * the peer's own state lives in a `.swarmshare` folder that is never shared.
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MAX_SHARED_FILES, STATE_DIR_NAME } from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { hashFile } from './hasher.js';
import { MANIFEST_CACHE_FILE_NAME, ManifestCache, stampOf } from './manifest-cache.js';
import { fileNameProblem } from './file-name.js';
import { chunkCount, chunkLength, type Manifest } from './manifest.js';

/** A file being shared: its manifest and where its bytes are. */
export interface SharedFile {
  manifest: Manifest;
  /** Absolute real path (symlinks resolved). */
  path: string;
}

export interface SharedFolderOptions {
  logger?: Logger;
  /** How files are hashed; hashFile unless replaced (tests count calls through this). */
  hasher?: (filePath: string, name: string) => Promise<Manifest>;
}

/** True when `child` is `parent` or lies under it. Both must be absolute and normalised. */
export function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return (
    relative === '' ||
    (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative))
  );
}

/** A file found by a walk: the name it is shared under and its real path. */
interface Candidate {
  name: string;
  realPath: string;
}

export class SharedFolder {
  private readonly logger: Logger;
  private readonly hasher: (filePath: string, name: string) => Promise<Manifest>;

  private constructor(
    /** The shared folder's real path. */
    readonly dir: string,
    /** `dir/.swarmshare`: identity, manifest cache, partial downloads. */
    readonly stateDir: string,
    private readonly cache: ManifestCache,
    options: SharedFolderOptions,
  ) {
    this.logger = options.logger ?? silentLogger();
    this.hasher = options.hasher ?? hashFile;
  }

  /** Opens (creating if needed) `dir` and its state folder, and loads the manifest cache. */
  static async open(dir: string, options: SharedFolderOptions = {}): Promise<SharedFolder> {
    const absolute = path.resolve(dir);
    await fs.mkdir(absolute, { recursive: true });
    const real = await fs.realpath(absolute);
    const stateDir = path.join(real, STATE_DIR_NAME);
    await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
    // A state "folder" that is a symlink could lead our writes outside the shared folder.
    const stat = await fs.lstat(stateDir);
    if (!stat.isDirectory()) {
      throw new SwarmError('ERR_INVALID_ARGUMENT', `${stateDir} must be a folder, not a link or a file`);
    }
    const cache = await ManifestCache.load(path.join(stateDir, MANIFEST_CACHE_FILE_NAME), {
      logger: options.logger,
    });
    return new SharedFolder(real, stateDir, cache, options);
  }

  /**
   * Resolves a user-given path (relative to the folder, or absolute) to its real path, which must lie
   * inside the folder: ERR_OUTSIDE_DIR if not, ERR_NOT_FOUND if nothing is there.
   */
  async resolveInside(userPath: string): Promise<string> {
    const absolute = path.resolve(this.dir, userPath);
    let real: string;
    try {
      real = await fs.realpath(absolute);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT' && errorCode(err) !== 'ENOTDIR') throw ioError(absolute, err);
      if (!isInside(this.dir, absolute)) throw outside(userPath, this.dir);
      throw new SwarmError('ERR_NOT_FOUND', `${absolute} does not exist`);
    }
    if (!isInside(this.dir, real)) throw outside(userPath, this.dir);
    return real;
  }

  /** Every shareable file in the folder, hashed (or taken from the cache). Forgets vanished files. */
  async scan(): Promise<SharedFile[]> {
    const candidates = await this.walk(this.dir);
    const files = await this.hashAll(candidates);
    this.cache.prune(new Set(candidates.map((c) => c.realPath)));
    await this.cache.save();
    return files;
  }

  /** Shares a file or a folder inside the shared folder and returns the hashed entries. */
  async share(userPath: string): Promise<SharedFile[]> {
    const real = await this.resolveInside(userPath);
    if (isInside(this.stateDir, real)) {
      throw new SwarmError('ERR_OUTSIDE_DIR', `${userPath} is inside the state folder ${this.stateDir}`);
    }
    const stat = await fs.stat(real).catch((err: unknown) => {
      throw ioError(real, err);
    });
    let candidates: Candidate[];
    if (stat.isDirectory()) {
      candidates = await this.walk(real);
    } else if (stat.isFile()) {
      // Shared under the name the user gave it (a link keeps its own name), checked like any other.
      const name = path.basename(path.resolve(this.dir, userPath));
      const problem = fileNameProblem(name);
      if (problem) throw new SwarmError('ERR_BAD_NAME', `cannot share ${JSON.stringify(name)}: ${problem}`);
      candidates = [{ name, realPath: real }];
    } else {
      throw new SwarmError('ERR_INVALID_ARGUMENT', `${userPath} is neither a file nor a folder`);
    }
    const files = await this.hashAll(candidates);
    await this.cache.save();
    return files;
  }

  /** Reads chunk `index` of a shared file. */
  readChunk(file: SharedFile, index: number): Promise<Buffer> {
    return readFileChunk(file.path, file.manifest, index);
  }

  /**
   * Finds regular files under `start` (a real path inside the folder), following symlinks only to
   * places inside the folder, skipping the state folder, visiting each real folder once (no loops).
   */
  private async walk(start: string): Promise<Candidate[]> {
    const found: Candidate[] = [];
    const seen = new Set<string>();
    const visited = new Set<string>([start]);
    const stack = [start];
    let warnedFull = false;
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        this.logger.warn({ dir, err: errorMessage(err) }, 'cannot list folder; skipped');
        continue;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        let real = full;
        let kind: 'file' | 'dir' | 'other' = entry.isFile() ? 'file' : entry.isDirectory() ? 'dir' : 'other';
        if (entry.isSymbolicLink()) {
          const target = await this.followLink(full);
          if (!target) continue;
          ({ real, kind } = target);
        }
        if (isInside(this.stateDir, real)) continue;
        if (kind === 'dir') {
          if (!visited.has(real)) {
            visited.add(real);
            stack.push(real);
          }
        } else if (kind === 'file') {
          const problem = fileNameProblem(entry.name);
          if (problem) {
            this.logger.warn({ path: full, problem }, 'file name cannot be shared; skipped');
            continue;
          }
          const key = `${real}\0${entry.name}`;
          if (seen.has(key)) continue;
          if (found.length >= MAX_SHARED_FILES) {
            if (!warnedFull)
              this.logger.warn({ limit: MAX_SHARED_FILES }, 'too many files; the rest are not shared');
            warnedFull = true;
            continue;
          }
          seen.add(key);
          found.push({ name: entry.name, realPath: real });
        }
      }
    }
    found.sort((a, b) =>
      a.realPath < b.realPath ? -1 : a.realPath > b.realPath ? 1 : a.name < b.name ? -1 : 1,
    );
    return found;
  }

  /** Where a symlink really leads, if that is a file or folder inside the shared folder. */
  private async followLink(link: string): Promise<{ real: string; kind: 'file' | 'dir' | 'other' } | null> {
    let real: string;
    try {
      real = await fs.realpath(link);
    } catch (err) {
      this.logger.info({ path: link, err: errorMessage(err) }, 'broken symlink; skipped');
      return null;
    }
    if (!isInside(this.dir, real)) {
      this.logger.info({ path: link, target: real }, 'symlink leads outside the shared folder; skipped');
      return null;
    }
    try {
      const stat = await fs.stat(real);
      return { real, kind: stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : 'other' };
    } catch {
      return null;
    }
  }

  /** Hashes the candidates one at a time (bounded memory and disk load), using the cache. */
  private async hashAll(candidates: Candidate[]): Promise<SharedFile[]> {
    const files: SharedFile[] = [];
    for (const { name, realPath } of candidates) {
      try {
        files.push({ manifest: await this.manifestOf(realPath, name), path: realPath });
      } catch (err) {
        this.logger.warn({ path: realPath, err: errorMessage(err) }, 'cannot hash file; not shared');
      }
    }
    return files;
  }

  private async manifestOf(realPath: string, name: string): Promise<Manifest> {
    const before = stampOf(await fs.stat(realPath));
    const cached = this.cache.get(realPath, before, name);
    if (cached) return cached;
    this.logger.debug({ path: realPath }, 'hashing');
    const manifest = await this.hasher(realPath, name);
    const after = stampOf(await fs.stat(realPath));
    // A file modified while it was read may not match what was hashed: use it, but do not remember it.
    if (after.size === before.size && after.mtimeMs === before.mtimeMs && after.ino === before.ino) {
      this.cache.set(realPath, before, manifest);
    } else {
      this.logger.warn({ path: realPath }, 'file changed while it was hashed');
    }
    return manifest;
  }
}

/**
 * Reads exactly chunk `index` of a file described by `manifest`, by position. ERR_UNKNOWN_CHUNK for
 * an index outside the manifest, ERR_IO if the file is now shorter than the manifest says.
 */
export async function readFileChunk(filePath: string, manifest: Manifest, index: number): Promise<Buffer> {
  if (!Number.isInteger(index) || index < 0 || index >= chunkCount(manifest)) {
    throw new SwarmError('ERR_UNKNOWN_CHUNK', `chunk ${index} is not part of ${manifest.name}`);
  }
  const length = chunkLength(manifest, index);
  const position = index * manifest.chunkSize;
  const data = Buffer.allocUnsafe(length);
  const handle = await fs.open(filePath, 'r');
  try {
    for (let filled = 0; filled < length;) {
      const { bytesRead } = await handle.read(data, filled, length - filled, position + filled);
      if (bytesRead === 0) {
        throw new SwarmError('ERR_IO', `${filePath} is shorter than when it was shared (chunk ${index})`);
      }
      filled += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return data;
}

function outside(userPath: string, dir: string): SwarmError {
  return new SwarmError(
    'ERR_OUTSIDE_DIR',
    `${userPath} is outside the shared folder ${dir}; only files inside it can be shared`,
  );
}

function ioError(file: string, err: unknown): SwarmError {
  return new SwarmError('ERR_IO', `cannot access ${file}: ${errorMessage(err)}`, { cause: err });
}
