import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { hashFile } from '../../src/storage/hasher.js';
import { MANIFEST_CACHE_FILE_NAME } from '../../src/storage/manifest-cache.js';
import type { Manifest } from '../../src/storage/manifest.js';
import { SharedFolder, isInside, type SharedFile } from '../../src/storage/shared-folder.js';
import { tempDir, writeRandomFile } from '../helpers/wait.js';

/** A hasher that counts how many files it really read. */
function countingHasher(): { hasher: (p: string, n: string) => Promise<Manifest>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    hasher: (file, name) => {
      calls.push(file);
      return hashFile(file, name);
    },
  };
}

const names = (files: SharedFile[]): string[] => files.map((f) => f.manifest.name).sort();

test('open creates the folder and its state folder, and reports real paths', async (t) => {
  const base = await tempDir(t);
  const folder = await SharedFolder.open(path.join(base, 'new', 'share'));
  assert.equal(folder.dir, await fs.realpath(path.join(base, 'new', 'share')));
  assert.equal(folder.stateDir, path.join(folder.dir, '.swarmshare'));
  assert.ok((await fs.stat(folder.stateDir)).isDirectory());
});

test('scan finds nested files and skips the state folder', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'sub', 'deeper'), { recursive: true });
  await writeRandomFile(path.join(dir, 'a.txt'), 100, 1);
  await writeRandomFile(path.join(dir, 'sub', 'b.bin'), MIN_CHUNK_SIZE + 5, 2);
  await writeRandomFile(path.join(dir, 'sub', 'deeper', 'c.dat'), 0, 3);
  const folder = await SharedFolder.open(dir);
  await fs.mkdir(path.join(folder.stateDir, 'partial'), { recursive: true });
  await writeRandomFile(path.join(folder.stateDir, 'partial', 'x.part'), 50, 4);
  await writeRandomFile(path.join(folder.stateDir, 'secret.pem'), 50, 5);

  const files = await folder.scan();
  assert.deepEqual(names(files), ['a.txt', 'b.bin', 'c.dat']);
  const b = files.find((f) => f.manifest.name === 'b.bin')!;
  assert.equal(b.path, path.join(folder.dir, 'sub', 'b.bin'));
  assert.deepEqual(b.manifest.id, (await hashFile(b.path, 'b.bin')).id);
  for (const file of files) assert.ok(!isInside(folder.stateDir, file.path));
});

test('a symlink leading out of the folder is not shared; one inside is', async (t) => {
  const outside = await tempDir(t);
  const dir = await tempDir(t);
  await writeRandomFile(path.join(outside, 'private.key'), 64, 1);
  await fs.mkdir(path.join(outside, 'docs'));
  await writeRandomFile(path.join(outside, 'docs', 'tax.pdf'), 64, 2);
  await writeRandomFile(path.join(dir, 'real.bin'), 64, 3);
  await fs.symlink(path.join(outside, 'private.key'), path.join(dir, 'leak.key'));
  await fs.symlink(path.join(outside, 'docs'), path.join(dir, 'leak-folder'));
  await fs.symlink(path.join(dir, 'real.bin'), path.join(dir, 'alias.bin'));
  await fs.symlink(dir, path.join(dir, 'loop')); // a folder link back to itself must not loop
  await fs.symlink(path.join(dir, 'gone'), path.join(dir, 'dangling'));
  const folder = await SharedFolder.open(dir);

  const files = await folder.scan();
  assert.deepEqual(names(files), ['alias.bin', 'real.bin']);
  const alias = files.find((f) => f.manifest.name === 'alias.bin')!;
  assert.equal(alias.path, path.join(folder.dir, 'real.bin'));
  for (const file of files) assert.ok(isInside(folder.dir, file.path));

  await assert.rejects(folder.share('leak.key'), { code: 'ERR_OUTSIDE_DIR' });
  await assert.rejects(folder.share('leak-folder'), { code: 'ERR_OUTSIDE_DIR' });
});

test('share refuses paths outside the folder and inside the state folder', async (t) => {
  const base = await tempDir(t);
  const dir = path.join(base, 'share');
  await writeRandomFile(path.join(base, 'x'), 10, 1);
  const folder = await SharedFolder.open(dir);
  await assert.rejects(folder.share('../x'), { code: 'ERR_OUTSIDE_DIR' });
  await assert.rejects(folder.share(path.join(base, 'x')), { code: 'ERR_OUTSIDE_DIR' });
  await assert.rejects(folder.share('/'), { code: 'ERR_OUTSIDE_DIR' });
  await assert.rejects(folder.share('../does-not-exist'), { code: 'ERR_OUTSIDE_DIR' });
  await assert.rejects(folder.share('does-not-exist'), { code: 'ERR_NOT_FOUND' });
  await assert.rejects(folder.share('.swarmshare'), { code: 'ERR_OUTSIDE_DIR' });
});

test('share takes a file or a folder, relative or absolute, inside the folder', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'music'));
  await writeRandomFile(path.join(dir, 'top.bin'), 10, 1);
  await writeRandomFile(path.join(dir, 'music', 'one.ogg'), 20, 2);
  await writeRandomFile(path.join(dir, 'music', 'two.ogg'), 30, 3);
  const folder = await SharedFolder.open(dir);
  assert.deepEqual(names(await folder.share('music')), ['one.ogg', 'two.ogg']);
  assert.deepEqual(names(await folder.share(path.join(folder.dir, 'top.bin'))), ['top.bin']);
  assert.deepEqual(names(await folder.share('music/../top.bin')), ['top.bin']);
  assert.equal(await folder.resolveInside('music/one.ogg'), path.join(folder.dir, 'music', 'one.ogg'));
});

test('the manifest cache spares a restart from hashing unchanged files and re-hashes changed ones', async (t) => {
  const dir = await tempDir(t);
  await writeRandomFile(path.join(dir, 'keep.bin'), MIN_CHUNK_SIZE * 2, 1);
  await writeRandomFile(path.join(dir, 'edit.bin'), 1000, 2);
  await writeRandomFile(path.join(dir, 'delete.bin'), 1000, 3);

  const first = countingHasher();
  const before = await (await SharedFolder.open(dir, { hasher: first.hasher })).scan();
  assert.equal(first.calls.length, 3);

  // A restart: a new SharedFolder over the same folder reads the cache from the state folder.
  const second = countingHasher();
  const restarted = await SharedFolder.open(dir, { hasher: second.hasher });
  const after = await restarted.scan();
  assert.deepEqual(second.calls, []);
  assert.deepEqual(
    after.map((f) => [f.manifest.name, f.manifest.id.toString('hex')]),
    before.map((f) => [f.manifest.name, f.manifest.id.toString('hex')]),
  );

  // Same size, new content, new mtime: hashed again, with a new id. A deleted file is forgotten.
  const edited = path.join(dir, 'edit.bin');
  await writeRandomFile(edited, 1000, 99);
  const later = new Date(Date.now() + 5000);
  await fs.utimes(edited, later, later);
  await fs.rm(path.join(dir, 'delete.bin'));
  const third = countingHasher();
  const rescanned = await (await SharedFolder.open(dir, { hasher: third.hasher })).scan();
  assert.deepEqual(third.calls, [await fs.realpath(edited)]);
  assert.deepEqual(names(rescanned), ['edit.bin', 'keep.bin']);
  const newEdit = rescanned.find((f) => f.manifest.name === 'edit.bin')!;
  assert.deepEqual(newEdit.manifest.id, (await hashFile(edited, 'edit.bin')).id);
  assert.notDeepEqual(newEdit.manifest.id, before.find((f) => f.manifest.name === 'edit.bin')!.manifest.id);

  const cache = JSON.parse(
    await fs.readFile(path.join(dir, '.swarmshare', MANIFEST_CACHE_FILE_NAME), 'utf8'),
  ) as {
    entries: Record<string, unknown>;
  };
  assert.deepEqual(
    Object.keys(cache.entries).sort(),
    [await fs.realpath(edited), path.join(await fs.realpath(dir), 'keep.bin')].sort(),
  );
});

test('a damaged manifest cache is discarded and the files are hashed again', async (t) => {
  const dir = await tempDir(t);
  await writeRandomFile(path.join(dir, 'a.bin'), 5000, 1);
  const folder = await SharedFolder.open(dir);
  const [original] = await folder.scan();
  await fs.writeFile(path.join(folder.stateDir, MANIFEST_CACHE_FILE_NAME), '{"version":1,"entries":{"x":');
  const counter = countingHasher();
  const files = await (await SharedFolder.open(dir, { hasher: counter.hasher })).scan();
  assert.equal(counter.calls.length, 1);
  assert.deepEqual(files[0]!.manifest.id, original!.manifest.id);
});

test('a cache entry that does not match its file id is not trusted', async (t) => {
  const dir = await tempDir(t);
  await writeRandomFile(path.join(dir, 'a.bin'), MIN_CHUNK_SIZE + 1, 1);
  const folder = await SharedFolder.open(dir);
  const [original] = await folder.scan();
  const cacheFile = path.join(folder.stateDir, MANIFEST_CACHE_FILE_NAME);
  const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8')) as {
    entries: Record<string, { hashes: string; chunkSize: number }>;
  };
  const entry = Object.values(cache.entries)[0]!;
  entry.chunkSize = 12345; // not the chunk size this file size gets
  await fs.writeFile(cacheFile, JSON.stringify(cache));
  const counter = countingHasher();
  const [again] = await (await SharedFolder.open(dir, { hasher: counter.hasher })).scan();
  assert.equal(counter.calls.length, 1);
  assert.deepEqual(again!.manifest.id, original!.manifest.id);
});

test('readChunk reads exactly one chunk and notices a file that got shorter', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'f.bin');
  await writeRandomFile(file, MIN_CHUNK_SIZE * 2 + 10, 5);
  const folder = await SharedFolder.open(dir);
  const [shared] = await folder.share('f.bin');
  const content = await fs.readFile(file);
  assert.deepEqual(await folder.readChunk(shared!, 0), content.subarray(0, MIN_CHUNK_SIZE));
  assert.deepEqual(await folder.readChunk(shared!, 2), content.subarray(MIN_CHUNK_SIZE * 2));
  await assert.rejects(folder.readChunk(shared!, 3), { code: 'ERR_UNKNOWN_CHUNK' });
  await assert.rejects(folder.readChunk(shared!, -1), { code: 'ERR_UNKNOWN_CHUNK' });
  await fs.truncate(file, MIN_CHUNK_SIZE + 1);
  await assert.rejects(folder.readChunk(shared!, 1), { code: 'ERR_IO' });
});

test('files whose names cannot be shared are skipped, the rest are shared', async (t) => {
  const dir = await tempDir(t);
  await writeRandomFile(path.join(dir, 'ok.txt'), 10, 1);
  await writeRandomFile(path.join(dir, 'bad\\name.txt'), 10, 2);
  await writeRandomFile(path.join(dir, 'tab\there.txt'), 10, 3);
  const folder = await SharedFolder.open(dir);
  assert.deepEqual(names(await folder.scan()), ['ok.txt']);
});
