import assert from 'node:assert/strict';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { PARTIAL_DIR_NAME, PartialFile, numberedName } from '../../src/storage/partial-file.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { makeFile, sha256File, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir } from '../helpers/wait.js';

interface Setup {
  source: TestFile;
  dest: string;
  stateDir: string;
}

/** A source file elsewhere, an empty destination folder, and a state folder inside it. */
async function setup(t: TestContext, size = MIN_CHUNK_SIZE * 2 + 100, name = 'movie.mkv'): Promise<Setup> {
  const source = await makeFile(await tempDir(t), name, size, 11);
  const dest = await tempDir(t);
  return { source, dest, stateDir: path.join(dest, '.swarmshare') };
}

async function fill(partial: PartialFile, source: TestFile): Promise<void> {
  for (let i = chunkCount(source.manifest) - 1; i >= 0; i--) {
    await partial.write(i, await readFileChunk(source.path, source.manifest, i));
  }
}

test('nothing appears under the final name until finalize; then exactly the content', async (t) => {
  const { source, dest, stateDir } = await setup(t);
  const partial = await PartialFile.create(stateDir, source.manifest);
  t.after(() => partial.abort());
  assert.equal(
    partial.tempPath,
    path.join(stateDir, PARTIAL_DIR_NAME, `${source.manifest.id.toString('hex')}.part`),
  );
  await fill(partial, source);
  assert.ok(partial.complete);
  assert.deepEqual(await fs.readdir(dest), ['.swarmshare']);
  const final = await partial.finalize(dest, 'movie.mkv');
  assert.equal(final, path.join(dest, 'movie.mkv'));
  assert.equal(await sha256File(final), source.sha256);
  assert.deepEqual(await fs.readdir(path.join(stateDir, PARTIAL_DIR_NAME)), []);
});

test('finalize never overwrites an existing file: it picks "name (1).ext", then "(2)"', async (t) => {
  const { source, dest, stateDir } = await setup(t);
  await fs.writeFile(path.join(dest, 'movie.mkv'), 'precious');
  const first = await PartialFile.create(stateDir, source.manifest);
  await fill(first, source);
  assert.equal(await first.finalize(dest, 'movie.mkv'), path.join(dest, 'movie (1).mkv'));
  const second = await PartialFile.create(stateDir, source.manifest);
  await fill(second, source);
  assert.equal(await second.finalize(dest, 'movie.mkv'), path.join(dest, 'movie (2).mkv'));
  assert.equal(await fs.readFile(path.join(dest, 'movie.mkv'), 'utf8'), 'precious');
  assert.equal(await sha256File(path.join(dest, 'movie (1).mkv')), source.sha256);
  assert.equal(await sha256File(path.join(dest, 'movie (2).mkv')), source.sha256);
});

test('names that are paths are refused and nothing is written anywhere', async (t) => {
  const { source, dest, stateDir } = await setup(t);
  const inner = path.join(dest, 'inner');
  await fs.mkdir(inner);
  const partial = await PartialFile.create(stateDir, source.manifest);
  t.after(() => partial.abort());
  await fill(partial, source);
  for (const name of [
    '..',
    '.',
    '../evil.mkv',
    'a/b.mkv',
    '/etc/passwd',
    'C:evil',
    '..\\evil',
    '',
    'nul\0byte',
  ]) {
    await assert.rejects(partial.finalize(inner, name), { code: 'ERR_BAD_NAME' }, JSON.stringify(name));
  }
  assert.deepEqual((await fs.readdir(dest)).sort(), ['.swarmshare', 'inner']);
  assert.deepEqual(await fs.readdir(inner), []);
  // Still usable with a proper name.
  assert.equal(await partial.finalize(inner, 'movie.mkv'), path.join(inner, 'movie.mkv'));
});

test('a chunk that does not verify is not written', async (t) => {
  const { source, stateDir } = await setup(t);
  const partial = await PartialFile.create(stateDir, source.manifest);
  t.after(() => partial.abort());
  const good = await readFileChunk(source.path, source.manifest, 1);
  const bad = Buffer.from(good);
  bad[0]! ^= 1;
  await assert.rejects(partial.write(1, bad), { code: 'ERR_CHUNK_HASH_MISMATCH' });
  await assert.rejects(partial.write(1, good.subarray(1)), { code: 'ERR_CHUNK_HASH_MISMATCH' });
  await assert.rejects(partial.write(0, good), { code: 'ERR_CHUNK_HASH_MISMATCH' });
  await assert.rejects(partial.write(3, good), { code: 'ERR_UNKNOWN_CHUNK' });
  assert.equal(partial.have.setCount, 0);
  assert.equal(await partial.read(1), null);
  await partial.write(1, good);
  assert.ok(partial.have.has(1));
  assert.deepEqual(await partial.read(1), good);
});

test('finalize refuses an incomplete file; abort removes the temp file', async (t) => {
  const { source, dest, stateDir } = await setup(t);
  const partial = await PartialFile.create(stateDir, source.manifest);
  await partial.write(0, await readFileChunk(source.path, source.manifest, 0));
  await assert.rejects(partial.finalize(dest, 'movie.mkv'), { code: 'ERR_INVALID_ARGUMENT' });
  await partial.abort();
  await assert.rejects(fs.stat(partial.tempPath), { code: 'ENOENT' });
  assert.deepEqual(await fs.readdir(dest), ['.swarmshare']);
  assert.equal(await partial.read(0), null);
});

test('one file cannot be downloaded twice at once; a stale temp file is replaced', async (t) => {
  const { source, stateDir } = await setup(t);
  const partial = await PartialFile.create(stateDir, source.manifest);
  await assert.rejects(PartialFile.create(stateDir, source.manifest), { code: 'ERR_INVALID_ARGUMENT' });
  await partial.abort();
  await fs.writeFile(partial.tempPath, 'left over from a crash');
  const again = await PartialFile.create(stateDir, source.manifest);
  t.after(() => again.abort());
  assert.equal((await fs.stat(again.tempPath)).size, source.manifest.size);
  assert.equal(again.have.setCount, 0);
});

test('a zero-byte file finalizes as an empty file', async (t) => {
  const { source, dest, stateDir } = await setup(t, 0, 'empty.txt');
  const partial = await PartialFile.create(stateDir, source.manifest);
  assert.ok(partial.complete);
  const final = await partial.finalize(dest, 'empty.txt');
  assert.equal((await fs.stat(final)).size, 0);
});

test('numbered names keep the extension and the length limit', () => {
  assert.equal(numberedName('photo.jpg', 1), 'photo (1).jpg');
  assert.equal(numberedName('archive.tar.gz', 2), 'archive.tar (2).gz');
  assert.equal(numberedName('.bashrc', 3), '.bashrc (3)');
  assert.equal(numberedName('README', 12), 'README (12)');
  const long = `${'é'.repeat(125)}.txt`; // 254 bytes: no room for " (7)" without trimming
  const numbered = numberedName(long, 7);
  assert.ok(Buffer.byteLength(numbered) <= 255);
  assert.ok(numbered.endsWith(' (7).txt'));
  assert.ok(!numbered.includes('\uFFFD'));
});

/** Makes the temp file's handle fail its next `method` call (after really closing it, for close). */
function failNext(partial: PartialFile, method: 'sync' | 'close'): void {
  // The handle is private: reached through a cast, as nothing else can make a disk fail on demand.
  const handle = (partial as unknown as { handle: FileHandle }).handle;
  const real = handle[method].bind(handle);
  handle[method] = async () => {
    if (method === 'close') await real();
    throw Object.assign(new Error(`EIO: i/o error, ${method}`), { code: 'EIO' });
  };
}

for (const method of ['sync', 'close'] as const) {
  test(`a finalize whose ${method} fails removes the temp file and frees the file for a new download`, async (t) => {
    const { source, dest, stateDir } = await setup(t);
    const partial = await PartialFile.create(stateDir, source.manifest);
    await fill(partial, source);
    failNext(partial, method);
    await assert.rejects(partial.finalize(dest, 'movie.mkv'), { code: 'ERR_IO' });
    await assert.rejects(fs.stat(partial.tempPath), { code: 'ENOENT' });
    assert.deepEqual(await fs.readdir(dest), ['.swarmshare']);
    await assert.rejects(partial.finalize(dest, 'movie.mkv'), { code: 'ERR_CLOSED' });
    await partial.abort();

    // The same file can be downloaded again, and finished this time.
    const again = await PartialFile.create(stateDir, source.manifest);
    t.after(() => again.abort());
    await fill(again, source);
    assert.equal(await again.finalize(dest, 'movie.mkv'), path.join(dest, 'movie.mkv'));
    assert.equal(await sha256File(path.join(dest, 'movie.mkv')), source.sha256);
    assert.deepEqual(await fs.readdir(path.join(stateDir, PARTIAL_DIR_NAME)), []);
  });
}
