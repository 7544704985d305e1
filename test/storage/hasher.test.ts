import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkHash, validateManifest } from '../../src/storage/manifest.js';
import { tempDir, writeRandomFile } from '../helpers/wait.js';

/** The manifest fields computed the slow, obvious way: whole file in memory, sliced by chunk size. */
async function independentManifest(
  file: string,
  chunkSize: number,
): Promise<{ id: Buffer; hashes: Buffer[] }> {
  const data = await fs.readFile(file);
  const hashes: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkSize) {
    hashes.push(
      createHash('sha256')
        .update(data.subarray(at, at + chunkSize))
        .digest(),
    );
  }
  const header = Buffer.alloc(12);
  header.writeBigUInt64BE(BigInt(data.length), 0);
  header.writeUInt32BE(chunkSize, 8);
  const id = createHash('sha256')
    .update('swarmshare-file-v1\0')
    .update(header)
    .update(Buffer.concat(hashes))
    .digest();
  return { id, hashes };
}

const sizes: [string, number][] = [
  ['empty', 0],
  ['one byte', 1],
  ['exactly one chunk', MIN_CHUNK_SIZE],
  ['one chunk and one byte', MIN_CHUNK_SIZE + 1],
  // Crosses the hasher's 4 MiB read blocks, with a short last chunk.
  ['several read blocks', 4 * 1024 * 1024 + 3 * MIN_CHUNK_SIZE + 17],
];

for (const [label, size] of sizes) {
  test(`hashFile matches an independent computation: ${label} (${size} bytes)`, async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'data.bin');
    await writeRandomFile(file, size, size + 1);
    const manifest = await hashFile(file, 'data.bin');
    const expected = await independentManifest(file, MIN_CHUNK_SIZE);
    assert.equal(manifest.size, size);
    assert.equal(manifest.chunkSize, MIN_CHUNK_SIZE);
    assert.equal(manifest.hashes.length, expected.hashes.length * 32);
    expected.hashes.forEach((hash, i) => assert.deepEqual(chunkHash(manifest, i), hash, `chunk ${i}`));
    assert.deepEqual(manifest.id, expected.id);
    validateManifest(manifest);
  });
}

test('the id is stable and depends on content only, not on the name', async (t) => {
  const dir = await tempDir(t);
  const a = path.join(dir, 'a.bin');
  const b = path.join(dir, 'b.bin');
  const c = path.join(dir, 'c.bin');
  await writeRandomFile(a, 700_000, 3);
  await fs.copyFile(a, b);
  await writeRandomFile(c, 700_000, 4);
  const first = await hashFile(a, 'a.bin');
  const again = await hashFile(a, 'a.bin');
  const copy = await hashFile(b, 'other name.bin');
  const different = await hashFile(c, 'a.bin');
  assert.deepEqual(again.id, first.id);
  assert.deepEqual(copy.id, first.id);
  assert.equal(copy.name, 'other name.bin');
  assert.notDeepEqual(different.id, first.id);
});

test('hashFile refuses a bad name and a folder', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x.bin');
  await writeRandomFile(file, 10);
  await assert.rejects(hashFile(file, '../x.bin'), { code: 'ERR_BAD_NAME' });
  await assert.rejects(hashFile(dir, 'folder'), { code: 'ERR_IO' });
});
