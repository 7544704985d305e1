/**
 * Builds a file's manifest by streaming it once: SHA-256 of every chunk, then the file id over them.
 * Two read buffers alternate so the disk read of the next block overlaps the hashing of this one;
 * memory stays at two blocks whatever the file size.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import { HASH_BYTES, MAX_FILE_SIZE } from '../constants.js';
import { SwarmError } from '../errors.js';
import { assertFileName } from './file-name.js';
import { chunkCountOf, chunkSizeFor, computeFileId, type Manifest } from './manifest.js';

/** Bytes read per positional read. Every chunk size is a power of two, so blocks align with chunks. */
const READ_BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * Hashes the file at `filePath` into a manifest under `name` (a single file name, checked).
 * Throws ERR_BAD_NAME for a bad name, ERR_LIMIT for a file too large to describe, ERR_IO if the file
 * is not a regular file or shrinks while it is read.
 */
export async function hashFile(
  filePath: string,
  name: string,
  /** The chunk size to describe it with; by default the canonical one for its size (chunkSizeFor). */
  options: { chunkSize?: number } = {},
): Promise<Manifest> {
  assertFileName(name);
  const handle = await fs.open(filePath, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SwarmError('ERR_IO', `${filePath} is not a regular file`);
    const size = stat.size;
    if (size > MAX_FILE_SIZE) {
      throw new SwarmError(
        'ERR_LIMIT',
        `${filePath} is ${size} bytes; the largest shareable file is ${MAX_FILE_SIZE}`,
      );
    }
    const chunkSize = options.chunkSize ?? chunkSizeFor(size);
    const hashes = Buffer.alloc(chunkCountOf(size, chunkSize) * HASH_BYTES);

    const blockSize = Math.min(READ_BLOCK_BYTES, Math.max(size, 1));
    const buffers = [Buffer.allocUnsafe(blockSize), Buffer.allocUnsafe(blockSize)];
    const readAt = async (buffer: Buffer, position: number): Promise<number> => {
      const length = Math.min(buffer.length, size - position);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead === 0) {
        throw new SwarmError(
          'ERR_IO',
          `${filePath} got shorter while it was hashed (${position} of ${size} bytes)`,
        );
      }
      return bytesRead;
    };

    let chunkIndex = 0;
    let chunkFill = 0;
    let hash: Hash = createHash('sha256');
    let position = 0;
    let turn = 0;
    let pending: Promise<number> | null = size > 0 ? readAt(buffers[0]!, 0) : null;
    while (pending) {
      const block = buffers[turn]!;
      const bytesRead = await pending;
      position += bytesRead;
      turn ^= 1;
      // Start the next read before hashing this block; it goes into the other buffer.
      pending = position < size ? readAt(buffers[turn]!, position) : null;
      for (let at = 0; at < bytesRead;) {
        const take = Math.min(chunkSize - chunkFill, bytesRead - at);
        hash.update(block.subarray(at, at + take));
        at += take;
        chunkFill += take;
        if (chunkFill === chunkSize || (pending === null && at === bytesRead)) {
          hash.digest().copy(hashes, chunkIndex * HASH_BYTES);
          chunkIndex++;
          chunkFill = 0;
          hash = createHash('sha256');
        }
      }
    }
    return { id: computeFileId(size, chunkSize, hashes), name, size, chunkSize, hashes };
  } finally {
    await handle.close();
  }
}
