/**
 * A manifest describes one file's content: its size, chunk size and the SHA-256 of every chunk.
 * The file id is a SHA-256 root over exactly those facts, so identical content is one file,
 * whatever its name, and a manifest whose hashes do not match its id is detectably false.
 *
 *   id = SHA-256( "swarmshare-file-v1" 0x00 | u64 size | u32 chunkSize | hash[0] | ... | hash[n-1] )
 */
import { createHash } from 'node:crypto';
import {
  HASH_BYTES,
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_FILE_SIZE,
  MIN_CHUNK_SIZE,
  TARGET_MAX_CHUNKS,
} from '../constants.js';
import { SwarmError } from '../errors.js';
import { assertFileName, quoteName } from './file-name.js';

export interface Manifest {
  /** SHA-256 root, 32 bytes. */
  id: Buffer;
  /**
   * The name it was shared under. Where a name is published it must pass fileNameProblem; one
   * received may be anything, so a download saves it under safeFileName(name) (file-name.ts).
   */
  name: string;
  size: number;
  chunkSize: number;
  /** chunkCount * 32 bytes: SHA-256 of each chunk in order. */
  hashes: Buffer;
}

const ID_DOMAIN = Buffer.from('swarmshare-file-v1\0', 'utf8');

/** The chunk size for a file of this size: the smallest power of two keeping chunks <= target. */
export function chunkSizeFor(size: number): number {
  let chunkSize = MIN_CHUNK_SIZE;
  while (chunkSize < MAX_CHUNK_SIZE && Math.ceil(size / chunkSize) > TARGET_MAX_CHUNKS) chunkSize *= 2;
  return chunkSize;
}

export function chunkCountOf(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export function chunkCount(manifest: Pick<Manifest, 'size' | 'chunkSize'>): number {
  return chunkCountOf(manifest.size, manifest.chunkSize);
}

/** Length of chunk `index` (the last one may be short). */
export function chunkLength(manifest: Pick<Manifest, 'size' | 'chunkSize'>, index: number): number {
  const start = index * manifest.chunkSize;
  return Math.min(manifest.chunkSize, manifest.size - start);
}

export function chunkHash(manifest: Pick<Manifest, 'hashes'>, index: number): Buffer {
  return manifest.hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);
}

export function computeFileId(size: number, chunkSize: number, hashes: Buffer): Buffer {
  const header = Buffer.allocUnsafe(12);
  header.writeUInt32BE(Math.floor(size / 2 ** 32), 0);
  header.writeUInt32BE(size % 2 ** 32, 4);
  header.writeUInt32BE(chunkSize, 8);
  return createHash('sha256').update(ID_DOMAIN).update(header).update(hashes).digest();
}

export function fileIdHex(id: Buffer): string {
  return id.toString('hex');
}

/** True for a well-formed file id in hex (64 characters). */
export function isFileIdHex(text: string): boolean {
  return /^[0-9a-f]{64}$/i.test(text);
}

/**
 * Throws ERR_BAD_NAME unless the manifest's name may be published, then ERR_BAD_MANIFEST unless
 * its content is consistent and matches its id: what a tracker checks at ANNOUNCE.
 */
export function validateManifest(manifest: Manifest): void {
  assertFileName(manifest.name);
  validateManifestContent(manifest);
}

/**
 * Throws ERR_BAD_MANIFEST unless the manifest is consistent and matches its id. Its name is not
 * checked: a manifest received to download by may carry any name, which is sanitised when the
 * file is saved (safeFileName), never trusted as a path.
 */
export function validateManifestContent(manifest: Manifest): void {
  const { size, chunkSize, hashes, id } = manifest;
  const bad = (why: string): never => {
    throw new SwarmError('ERR_BAD_MANIFEST', `bad manifest for ${quoteName(manifest.name)}: ${why}`);
  };
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE) bad(`size ${size} out of range`);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
    bad(`chunk size ${chunkSize} is not a power of two in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]`);
  }
  const count = chunkCountOf(size, chunkSize);
  if (count > MAX_CHUNKS) bad(`${count} chunks exceed the limit of ${MAX_CHUNKS}`);
  if (hashes.length !== count * HASH_BYTES) bad(`${hashes.length} hash bytes for ${count} chunks`);
  if (id.length !== HASH_BYTES || !computeFileId(size, chunkSize, hashes).equals(id)) {
    bad('the chunk hashes do not match the file id');
  }
}
