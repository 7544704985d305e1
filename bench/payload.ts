/**
 * The transfer payload: deterministic pseudo-random bytes (AES-256-CTR over zeros with a fixed key,
 * fast and incompressible), written once and hashed as it is written.
 */
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { MiB } from './util.js';

const BLOCK = 4 * MiB;
const KEY = createHash('sha256').update('swarmshare-bench-payload').digest();
const IV = Buffer.alloc(16);

/** Writes `size` bytes to `file`, flushed to disk, and returns their SHA-256 in hex. */
export async function writePayload(file: string, size: number): Promise<string> {
  const cipher = createCipheriv('aes-256-ctr', KEY, IV);
  const zeros = Buffer.alloc(BLOCK);
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'w');
  try {
    for (let written = 0; written < size;) {
      const n = Math.min(BLOCK, size - written);
      const block = cipher.update(n === BLOCK ? zeros : zeros.subarray(0, n));
      hash.update(block);
      await handle.write(block, 0, block.length, written);
      written += n;
    }
    // On disk before any timing starts, so write-back does not compete with a timed transfer.
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Reads a whole file and discards it (`cat file > /dev/null`): puts it in the page cache. */
export async function readThrough(file: string): Promise<void> {
  await readBlocks(file, () => undefined);
}

/** SHA-256 of a file, in hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await readBlocks(file, (block) => hash.update(block));
  return hash.digest('hex');
}

async function readBlocks(file: string, onBlock: (block: Buffer) => void): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(BLOCK);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, BLOCK, null);
      if (bytesRead === 0) break;
      onBlock(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}
