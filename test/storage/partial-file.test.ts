import assert from 'node:assert/strict';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import {
  BadChunksError,
  PARTIAL_DIR_NAME,
  PartialFile,
  numberedName,
  partialPaths,
} from '../../src/storage/partial-file.js';
import { decodePartialState, encodePartialState } from '../../src/storage/partial-state.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { makeFile, sha256File, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

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

test('one file cannot be downloaded twice at once; a stale temp file of garbage yields nothing', async (t) => {
  const { source, stateDir } = await setup(t);
  const partial = await PartialFile.create(stateDir, source.manifest);
  await assert.rejects(PartialFile.create(stateDir, source.manifest), { code: 'ERR_IN_PROGRESS' });
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
  test(`a finalize whose ${method} fails keeps the temp file for a resume, which finishes it`, async (t) => {
    const { source, dest, stateDir } = await setup(t);
    const partial = await PartialFile.create(stateDir, source.manifest);
    await fill(partial, source);
    failNext(partial, method);
    await assert.rejects(partial.finalize(dest, 'movie.mkv'), { code: 'ERR_IO' });
    assert.equal((await fs.stat(partial.tempPath)).size, source.manifest.size);
    assert.deepEqual(await fs.readdir(dest), ['.swarmshare']);
    await assert.rejects(partial.finalize(dest, 'movie.mkv'), { code: 'ERR_CLOSED' });
    await partial.abort(); // a no-op once closed: the files stay

    // The same file resumes with every chunk, checked again, and finishes this time.
    const again = await PartialFile.create(stateDir, source.manifest);
    t.after(() => again.abort());
    assert.equal(again.resumed.chunks, chunkCount(source.manifest));
    assert.ok(again.complete);
    assert.equal(await again.finalize(dest, 'movie.mkv'), path.join(dest, 'movie.mkv'));
    assert.equal(await sha256File(path.join(dest, 'movie.mkv')), source.sha256);
    assert.deepEqual(await fs.readdir(path.join(stateDir, PARTIAL_DIR_NAME)), []);
  });
}

// ---- Resume ---------------------------------------------------------------------------------------

const NINE_CHUNKS = MIN_CHUNK_SIZE * 8 + 100;

async function writeChunks(partial: PartialFile, source: TestFile, indices: number[]): Promise<void> {
  for (const i of indices) await partial.write(i, await readFileChunk(source.path, source.manifest, i));
}

/** Overwrites bytes of chunk `index` in a file, as a disk or another program might. */
async function scribble(
  file: string,
  manifest: TestFile['manifest'],
  index: number,
  data: Buffer,
): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.write(data, 0, data.length, index * manifest.chunkSize + 10);
  } finally {
    await handle.close();
  }
}

async function stateOnDisk(partial: PartialFile, source: TestFile): Promise<number[]> {
  const decoded = decodePartialState(await fs.readFile(partial.statePath), source.manifest);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.problem);
  return [...decoded.have.indices()];
}

test('a partial file closed and opened again resumes: claimed chunks are checked, the rest fetched', async (t) => {
  const { source, dest, stateDir } = await setup(t, NINE_CHUNKS);
  const first = await PartialFile.create(stateDir, source.manifest);
  assert.equal(first.resumed.from, 'new');
  await writeChunks(first, source, [0, 2, 5]);
  await first.close();
  assert.equal((await fs.stat(first.tempPath)).size, source.manifest.size);
  assert.deepEqual(await stateOnDisk(first, source), [0, 2, 5]);
  assert.equal(await first.read(0), null, 'closed');

  const second = await PartialFile.create(stateDir, source.manifest);
  t.after(() => second.abort());
  assert.deepEqual(second.resumed, {
    from: 'state',
    problem: null,
    checked: 3,
    chunks: 3,
    bytes: 3 * MIN_CHUNK_SIZE,
  });
  assert.deepEqual([...second.have.indices()], [0, 2, 5]);
  await writeChunks(second, source, [1, 3, 4, 6, 7, 8]);
  assert.equal(await second.finalize(dest, 'movie.mkv'), path.join(dest, 'movie.mkv'));
  assert.equal(await sha256File(path.join(dest, 'movie.mkv')), source.sha256);
  assert.deepEqual(await fs.readdir(path.join(stateDir, PARTIAL_DIR_NAME)), []);
});

test('a claimed chunk that changed on disk is dropped at resume and is missing again', async (t) => {
  const { source, stateDir } = await setup(t, NINE_CHUNKS);
  const first = await PartialFile.create(stateDir, source.manifest);
  await writeChunks(first, source, [0, 2, 5]);
  await first.close();
  await scribble(first.tempPath, source.manifest, 2, Buffer.from('bit rot'));
  const second = await PartialFile.create(stateDir, source.manifest);
  t.after(() => second.abort());
  assert.equal(second.resumed.from, 'state');
  assert.equal(second.resumed.checked, 3);
  assert.deepEqual([...second.have.indices()], [0, 5]);
  // The state on disk now says what was found.
  assert.deepEqual(await stateOnDisk(second, source), [0, 5]);
});

for (const variant of ['missing', 'truncated', 'garbage', 'foreign', 'lying'] as const) {
  test(`a ${variant} state: the chunks are hashed again and only those that match are kept`, async (t) => {
    const { source, dest, stateDir } = await setup(t, NINE_CHUNKS);
    const first = await PartialFile.create(stateDir, source.manifest);
    await writeChunks(first, source, [0, 2, 5]);
    await first.close();
    // Chunk 7 reached the disk after the last save (the process died before the next one), and
    // chunk 8 holds garbage.
    await scribble(first.tempPath, source.manifest, 7, Buffer.alloc(0));
    const seven = await readFileChunk(source.path, source.manifest, 7);
    const handle = await fs.open(first.tempPath, 'r+');
    await handle.write(seven, 0, seven.length, 7 * source.manifest.chunkSize);
    await handle.write(Buffer.alloc(1000, 0x5a), 0, 1000, 8 * source.manifest.chunkSize);
    await handle.close();
    const total = chunkCount(source.manifest);
    const state = await fs.readFile(first.statePath);
    if (variant === 'missing') await fs.rm(first.statePath);
    if (variant === 'truncated') await fs.writeFile(first.statePath, state.subarray(0, state.length >> 1));
    if (variant === 'garbage') await fs.writeFile(first.statePath, Buffer.alloc(state.length, 0xa5));
    if (variant === 'foreign') {
      const other = await makeFile(await tempDir(t), 'other.bin', NINE_CHUNKS, 99);
      await fs.writeFile(first.statePath, encodePartialState(other.manifest, Bitfield.full(total)));
    }
    if (variant === 'lying') {
      await fs.writeFile(first.statePath, encodePartialState(source.manifest, Bitfield.full(total)));
    }

    const second = await PartialFile.create(stateDir, source.manifest);
    t.after(() => second.abort());
    assert.equal(second.resumed.from, variant === 'lying' ? 'state' : 'rehash');
    assert.equal(second.resumed.checked, total);
    assert.deepEqual([...second.have.indices()], [0, 2, 5, 7]);
    assert.deepEqual(await stateOnDisk(second, source), [0, 2, 5, 7]);
    await writeChunks(second, source, [1, 3, 4, 6, 8]);
    await second.finalize(dest, 'movie.mkv');
    assert.equal(await sha256File(path.join(dest, 'movie.mkv')), source.sha256);
  });
}

test('a temp file of another length is cut or extended to the size, keeping what matches', async (t) => {
  const { source, stateDir } = await setup(t, NINE_CHUNKS);
  const first = await PartialFile.create(stateDir, source.manifest);
  await writeChunks(first, source, [0, 8]);
  await first.close();
  await fs.truncate(first.tempPath, source.manifest.size - 50); // the last chunk loses its tail
  const second = await PartialFile.create(stateDir, source.manifest);
  assert.equal((await fs.stat(second.tempPath)).size, source.manifest.size);
  assert.deepEqual([...second.have.indices()], [0]);
  await second.close();
  await fs.appendFile(second.tempPath, Buffer.alloc(5000, 1));
  const third = await PartialFile.create(stateDir, source.manifest);
  t.after(() => third.abort());
  assert.equal((await fs.stat(third.tempPath)).size, source.manifest.size);
  assert.deepEqual([...third.have.indices()], [0]);
});

test('the state is saved in batches, and never claims more than was written', async (t) => {
  const { source, stateDir } = await setup(t, NINE_CHUNKS);
  const partial = await PartialFile.create(stateDir, source.manifest, { saveIntervalMs: 50 });
  t.after(() => partial.abort());
  await writeChunks(partial, source, [3, 4]);
  await assert.rejects(fs.stat(partial.statePath), { code: 'ENOENT' }, 'not at every chunk');
  await waitFor(() => fs.stat(partial.statePath).then(() => true), 'the first save');
  assert.deepEqual(await stateOnDisk(partial, source), [3, 4]);
  await writeChunks(partial, source, [6]);
  await partial.saveNow();
  assert.deepEqual(await stateOnDisk(partial, source), [3, 4, 6]);
  // No temp files of saves are left behind: the data, its state, and the download's claim.
  assert.deepEqual((await fs.readdir(path.dirname(partial.tempPath))).sort(), [
    path.basename(partialPaths(stateDir, source.manifest.id).claim),
    path.basename(partial.tempPath),
    path.basename(partial.statePath),
  ]);
});

test('the final check finds a chunk changed on disk after it was verified; it is missing again', async (t) => {
  const { source, dest, stateDir } = await setup(t, NINE_CHUNKS);
  const partial = await PartialFile.create(stateDir, source.manifest);
  t.after(() => partial.abort());
  await fill(partial, source);
  await scribble(partial.tempPath, source.manifest, 4, Buffer.from('cosmic ray'));
  await assert.rejects(partial.finalize(dest, 'movie.mkv'), (err: unknown) => {
    assert.ok(err instanceof BadChunksError);
    assert.equal(err.code, 'ERR_FILE_HASH_MISMATCH');
    assert.deepEqual(err.chunks, [4]);
    return true;
  });
  assert.deepEqual(await fs.readdir(dest), ['.swarmshare'], 'nothing under the final name');
  assert.equal(partial.have.has(4), false);
  assert.equal(partial.have.setCount, chunkCount(source.manifest) - 1);
  assert.deepEqual(await stateOnDisk(partial, source), [0, 1, 2, 3, 5, 6, 7, 8]);
  // Still open: the chunk is written again and the file finishes.
  assert.ok(await partial.read(3));
  await writeChunks(partial, source, [4]);
  assert.equal(await partial.finalize(dest, 'movie.mkv'), path.join(dest, 'movie.mkv'));
  assert.equal(await sha256File(path.join(dest, 'movie.mkv')), source.sha256);
});

test('a full disk: ERR_DISK_FULL naming the folder; the verified chunks are kept for a resume', async (t) => {
  const { source, dest, stateDir } = await setup(t, NINE_CHUNKS);
  const partial = await PartialFile.create(stateDir, source.manifest);
  await writeChunks(partial, source, [0, 1]);
  const handle = (partial as unknown as { handle: FileHandle }).handle;
  const realWrite = handle.write.bind(handle) as (...args: unknown[]) => Promise<unknown>;
  let full = true;
  (handle as unknown as { write: (...args: unknown[]) => Promise<unknown> }).write = async (...args) => {
    if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return realWrite(...args);
  };
  await assert.rejects(writeChunks(partial, source, [2]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_DISK_FULL');
    assert.ok(err.message.includes(dest), err.message);
    assert.match(err.message, /free some space/);
    return true;
  });
  assert.equal(partial.have.has(2), false);
  full = false;
  await partial.close();
  const again = await PartialFile.create(stateDir, source.manifest);
  t.after(() => again.abort());
  assert.deepEqual([...again.have.indices()], [0, 1]);
});

test('abort (a cancelled download) removes the temp file and its state', async (t) => {
  const { source, stateDir } = await setup(t, NINE_CHUNKS);
  const first = await PartialFile.create(stateDir, source.manifest);
  await writeChunks(first, source, [1]);
  await first.close();
  const second = await PartialFile.create(stateDir, source.manifest);
  assert.equal(second.resumed.chunks, 1);
  await second.abort();
  assert.deepEqual(await fs.readdir(path.join(stateDir, PARTIAL_DIR_NAME)), []);
  const third = await PartialFile.create(stateDir, source.manifest);
  t.after(() => third.abort());
  assert.equal(third.resumed.from, 'new');
});
