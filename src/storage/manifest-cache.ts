/**
 * Remembers the manifests of files already hashed, so a restart does not re-read every shared file.
 * An entry is keyed by the file's real path and trusted only while size, mtime and inode all match.
 * Stored as one JSON file in the state folder, written atomically; a damaged cache is discarded (it is
 * only a cache) and every loaded entry is checked against its own id.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { HASH_BYTES, MAX_SHARED_FILES } from '../constants.js';
import { errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { writeFileAtomic } from './atomic-file.js';
import { chunkCountOf, chunkSizeFor, computeFileId, type Manifest } from './manifest.js';

export const MANIFEST_CACHE_FILE_NAME = 'manifest-cache.json';
const FORMAT_VERSION = 1;

/** The facts about a file that must be unchanged for its cached manifest to be trusted. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

interface Entry extends FileStamp {
  chunkSize: number;
  hashes: Buffer;
  id: Buffer;
}

interface StoredEntry extends FileStamp {
  chunkSize: number;
  /** base64 */
  hashes: string;
}

export function stampOf(stat: Stats): FileStamp {
  return { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

export class ManifestCache {
  /** Insertion order doubles as age: the oldest entry is evicted first when the cache is full. */
  private readonly entries = new Map<string, Entry>();
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly logger: Logger,
    readonly maxEntries: number,
  ) {}

  /** Loads the cache from `file`; a missing or damaged file gives an empty cache. */
  static async load(
    file: string,
    options: { logger?: Logger; maxEntries?: number } = {},
  ): Promise<ManifestCache> {
    const cache = new ManifestCache(
      file,
      options.logger ?? silentLogger(),
      options.maxEntries ?? MAX_SHARED_FILES,
    );
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT')
        cache.logger.warn({ file, err: errorMessage(err) }, 'manifest cache unreadable');
      return cache;
    }
    try {
      cache.restore(JSON.parse(text) as unknown);
    } catch (err) {
      cache.entries.clear();
      cache.logger.warn(
        { file, err: errorMessage(err) },
        'manifest cache damaged; files will be hashed again',
      );
    }
    return cache;
  }

  private restore(data: unknown): void {
    if (!data || typeof data !== 'object') throw new Error('not an object');
    const { version, entries } = data as { version?: unknown; entries?: unknown };
    if (version !== FORMAT_VERSION || !entries || typeof entries !== 'object')
      throw new Error('unknown format');
    let dropped = 0;
    for (const [key, value] of Object.entries(entries as Record<string, unknown>)) {
      if (this.entries.size >= this.maxEntries) break;
      const entry = parseEntry(value);
      if (entry) this.entries.set(key, entry);
      else dropped++;
    }
    if (dropped > 0) this.logger.warn({ file: this.file, dropped }, 'dropped damaged manifest cache entries');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached manifest for `realPath` under `name`, if the file is unchanged since it was hashed. */
  get(realPath: string, stamp: FileStamp, name: string): Manifest | undefined {
    const entry = this.entries.get(realPath);
    if (!entry || !sameStamp(entry, stamp)) return undefined;
    return { id: entry.id, name, size: entry.size, chunkSize: entry.chunkSize, hashes: entry.hashes };
  }

  set(realPath: string, stamp: FileStamp, manifest: Manifest): void {
    this.entries.delete(realPath);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    const { chunkSize, hashes, id } = manifest;
    this.entries.set(realPath, { ...stamp, chunkSize, hashes, id });
    this.dirty = true;
  }

  /** Forgets every file not in `keep` (the files a full scan found). */
  prune(keep: ReadonlySet<string>): void {
    for (const key of this.entries.keys()) {
      if (!keep.has(key)) {
        this.entries.delete(key);
        this.dirty = true;
      }
    }
  }

  /** Writes the cache if it changed. Saves run one at a time, each writing the latest state. */
  save(): Promise<void> {
    this.saving = this.saving.then(() => this.writeNow());
    return this.saving;
  }

  private async writeNow(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const entries: Record<string, StoredEntry> = {};
    for (const [key, e] of this.entries) {
      entries[key] = {
        size: e.size,
        mtimeMs: e.mtimeMs,
        ino: e.ino,
        chunkSize: e.chunkSize,
        hashes: e.hashes.toString('base64'),
      };
    }
    try {
      await writeFileAtomic(this.file, JSON.stringify({ version: FORMAT_VERSION, entries }));
    } catch (err) {
      this.dirty = true;
      this.logger.warn({ file: this.file, err: errorMessage(err) }, 'could not save the manifest cache');
    }
  }
}

function parseEntry(value: unknown): Entry | null {
  if (!value || typeof value !== 'object') return null;
  const { size, mtimeMs, ino, chunkSize, hashes } = value as Record<string, unknown>;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return null;
  if (typeof mtimeMs !== 'number' || typeof ino !== 'number') return null;
  // A chunk size other than today's choice for this size would give another id: hash the file again.
  if (chunkSize !== chunkSizeFor(size)) return null;
  if (typeof hashes !== 'string') return null;
  const raw = Buffer.from(hashes, 'base64');
  if (raw.length !== chunkCountOf(size, chunkSize) * HASH_BYTES) return null;
  return { size, mtimeMs, ino, chunkSize, hashes: raw, id: computeFileId(size, chunkSize, raw) };
}
