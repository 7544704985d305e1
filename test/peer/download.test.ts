import { ephemeralCredentials } from '../../src/transport/credentials.js';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { MAX_BAD_CHUNKS_PER_SOURCE, MIN_CHUNK_SIZE } from '../../src/constants.js';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import {
  Download,
  type DownloadOptions,
  type DownloadResult,
  type SourceInfo,
  type SourceLostReason,
} from '../../src/peer/download.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { PARTIAL_DIR_NAME } from '../../src/storage/partial-file.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import {
  deferred,
  makeFile,
  sha256File,
  spawnSeeder,
  startSeeder,
  stripes,
  type TestFile,
} from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;

interface Downloader {
  download: Download;
  dir: string;
  stateDir: string;
  chunksFrom: Map<string, number>;
  lost: [string, SourceLostReason][];
  progressEvents: number;
}

/** A download into a fresh folder (state folder inside it), cancelled at test end if still running. */
async function downloader(
  t: TestContext,
  file: TestFile,
  findSources: () => Promise<SourceInfo[]> | SourceInfo[],
  options: Partial<DownloadOptions> = {},
): Promise<Downloader> {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, '.swarmshare');
  const chunksFrom = new Map<string, number>();
  const download = new Download({
    manifest: file.manifest,
    dir,
    stateDir,
    findSources: async () => findSources(),
    onChunk: (_index, peerId) => chunksFrom.set(peerId, (chunksFrom.get(peerId) ?? 0) + 1),
    relocateIntervalMs: 50,
    ...options,
  });
  t.after(() => download.cancel());
  const state: Downloader = { download, dir, stateDir, chunksFrom, lost: [], progressEvents: 0 };
  download.on('source-lost', (peerId, reason) => state.lost.push([peerId, reason]));
  download.on('progress', () => state.progressEvents++);
  return state;
}

async function sourceFile(
  t: TestContext,
  chunks: number,
  extra = 777,
  name = 'video.mp4',
): Promise<TestFile> {
  return makeFile(await tempDir(t), name, MIN_CHUNK_SIZE * chunks + extra, chunks);
}

/** The folder holds exactly the finished file and the state folder, which holds no partial file. */
async function assertOnlyResult(d: Downloader, result: DownloadResult, file: TestFile): Promise<void> {
  assert.equal(result.path, path.join(d.dir, result.name));
  assert.equal(await sha256File(result.path), file.sha256);
  assert.deepEqual((await fs.readdir(d.dir)).sort(), ['.swarmshare', result.name].sort());
  assert.deepEqual(await fs.readdir(path.join(d.stateDir, PARTIAL_DIR_NAME)), []);
}

/** A hung download fails its test instead of hanging the run. */
const limits = { timeout: 30_000 };

function bytesFrom(result: DownloadResult, peerId: string): number {
  return result.sources.find((s) => s.peerId === peerId)?.bytes ?? 0;
}

test(
  'three seeders, one downloader: the file arrives intact, drawn from several sources',
  limits,
  async (t) => {
    const file = await sourceFile(t, 24);
    // A little throttling keeps any one seeder from finishing everything before the others connect.
    const seeders = await Promise.all([1, 2, 3].map(() => startSeeder(t, file, { delayMs: 5 })));
    const d = await downloader(t, file, () => seeders.map((s) => s.source()));
    const result = await d.download.start();

    await assertOnlyResult(d, result, file);
    assert.equal(result.name, 'video.mp4');
    assert.equal(result.size, file.manifest.size);
    const contributors = result.sources.filter((s) => s.bytes > 0);
    assert.ok(contributors.length >= 2, `sources used: ${JSON.stringify(result.sources)}`);
    assert.equal(
      result.sources.reduce((sum, s) => sum + s.bytes, 0),
      file.manifest.size,
    );
    const total = chunkCount(file.manifest);
    assert.equal(
      [...d.chunksFrom.values()].reduce((a, b) => a + b, 0),
      total,
    ); // onChunk once per chunk
    assert.equal(d.progressEvents, total);
    const progress = d.download.progress;
    assert.equal(progress.verifiedChunks, total);
    assert.equal(progress.bytes, file.manifest.size);
    assert.ok(d.download.have.complete);
  },
);

test('sources holding complementary parts of the file combine into the whole', limits, async (t) => {
  const file = await sourceFile(t, 9);
  const total = chunkCount(file.manifest);
  const evens = await startSeeder(t, file, { chunks: stripes(total, 2, 0) });
  const odds = await startSeeder(t, file, { chunks: stripes(total, 2, 1) });
  const d = await downloader(t, file, () => [evens.source(), odds.source()]);
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.equal(bytesFrom(result, evens.peerId), Math.ceil(total / 2) * MIN_CHUNK_SIZE);
  assert.equal(bytesFrom(result, odds.peerId), file.manifest.size - Math.ceil(total / 2) * MIN_CHUNK_SIZE);
});

test('a seeder killed mid-transfer: the download completes from the others', limits, async (t) => {
  const file = await sourceFile(t, 16);
  const child = await spawnSeeder(t, file, 100); // slow, so its requests are in flight when it dies
  const gate = deferred();
  t.after(() => gate.resolve());
  const held = await startSeeder(t, file, { gate: gate.promise }); // answers only after the kill
  const d = await downloader(t, file, () => [child.source(), held.source()]);
  // Killed the moment its first chunk is verified, while its other requests are still in flight.
  let killed: Promise<void> | null = null;
  d.download.on('progress', () => {
    if (!killed && d.chunksFrom.has(child.peerId)) killed = child.kill();
  });
  const running = d.download.start();

  await waitFor(() => killed !== null, 'a chunk from the child seeder');
  await killed;
  await waitFor(() => d.lost.some(([peer]) => peer === child.peerId), 'the child to be noticed gone');
  assert.ok(!d.download.have.complete);
  gate.resolve();

  const result = await running;
  await assertOnlyResult(d, result, file);
  const fromChild = bytesFrom(result, child.peerId);
  assert.ok(fromChild > 0 && fromChild < file.manifest.size, `bytes from the child: ${fromChild}`);
  assert.equal(bytesFrom(result, held.peerId), file.manifest.size - fromChild);
  assert.deepEqual(
    d.lost.find(([peer]) => peer === child.peerId),
    [child.peerId, 'disconnected'],
  );
});

test(
  'a seeder killed in the middle of a chunk: the half-sent chunk comes from another source',
  limits,
  async (t) => {
    const file = await sourceFile(t, 8);
    // Sends one chunk whole, half of the next, then SIGKILLs itself.
    const child = await spawnSeeder(t, file, 0, 'kill-mid-chunk');
    const gate = deferred();
    t.after(() => gate.resolve());
    const held = await startSeeder(t, file, { gate: gate.promise }); // answers only after the kill
    const d = await downloader(t, file, () => [child.source(), held.source()], { requestsPerSource: 2 });
    const running = d.download.start();

    assert.equal(await child.exited, 'SIGKILL');
    await waitFor(() => d.lost.some(([peer]) => peer === child.peerId), 'the child to be noticed gone');
    gate.resolve();

    const result = await running;
    await assertOnlyResult(d, result, file);
    // The whole chunks it sent count (a short last chunk is never cut); the half chunk came from the other.
    const fromChild = bytesFrom(result, child.peerId);
    assert.ok(
      fromChild >= MIN_CHUNK_SIZE && fromChild < 2 * MIN_CHUNK_SIZE,
      `bytes from the child: ${fromChild}`,
    );
    assert.equal(bytesFrom(result, held.peerId), file.manifest.size - fromChild);
  },
);

test(
  'a file of 4 MiB chunks downloads: a pipeline never asks more than the connection admits',
  limits,
  async (t) => {
    // Files over 16 GiB have chunks of 4 MiB or more; fewer of them fit in a source's byte budget.
    const made = await makeFile(await tempDir(t), 'big.iso', 3 * 4 * MiB + 777, 11);
    const file = { ...made, manifest: await hashFile(made.path, 'big.iso', { chunkSize: 4 * MiB }) };
    const seeder = await startSeeder(t, file);
    const d = await downloader(t, file, () => [seeder.source()]);
    const result = await d.download.start();
    await assertOnlyResult(d, result, file);
    assert.equal(bytesFrom(result, seeder.peerId), file.manifest.size);
    assert.deepEqual(d.lost, []);
  },
);

test('a seeder serving corrupted bytes is dropped and the file still arrives intact', limits, async (t) => {
  const file = await sourceFile(t, 12);
  const corrupt = await startSeeder(t, file, { corrupt: true });
  const gate = deferred();
  t.after(() => gate.resolve());
  const honest = await startSeeder(t, file, { gate: gate.promise });
  const d = await downloader(t, file, () => [corrupt.source(), honest.source()], { relocateIntervalMs: 20 });
  const running = d.download.start();

  await waitFor(() => d.lost.some(([peer]) => peer === corrupt.peerId), 'the corrupt seeder to be dropped');
  gate.resolve();
  const result = await running;

  await assertOnlyResult(d, result, file);
  assert.deepEqual(d.lost, [[corrupt.peerId, 'bad-chunks']]);
  assert.equal(bytesFrom(result, corrupt.peerId), 0);
  assert.equal(bytesFrom(result, honest.peerId), file.manifest.size);
  assert.ok(corrupt.server.stats.servedChunks >= MAX_BAD_CHUNKS_PER_SOURCE);
  // Dropped for good: never connected again, though it was listed at every relocate.
  assert.equal(corrupt.server.stats.acceptedConnections, 1);
});

test('a source that never answers times out and its chunks go to another source', limits, async (t) => {
  const file = await sourceFile(t, 8);
  const stalled = await startSeeder(t, file, { stall: true });
  const good = await startSeeder(t, file);
  let stalledTimedOut = false;
  const d = await downloader(
    t,
    file,
    () => (stalledTimedOut ? [stalled.source(), good.source()] : [stalled.source()]),
    {
      chunkTimeoutMs: 300,
    },
  );
  d.download.on('source-lost', (peer, reason) => {
    if (peer === stalled.peerId && reason === 'timeout') stalledTimedOut = true;
  });
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.ok(stalledTimedOut);
  assert.equal(bytesFrom(result, stalled.peerId), 0);
  assert.equal(bytesFrom(result, good.peerId), file.manifest.size);
});

test('a stalled source does not hold up the end of a download (end game)', limits, async (t) => {
  const file = await sourceFile(t, 8);
  const stalled = await startSeeder(t, file, { stall: true });
  const good = await startSeeder(t, file);
  // The chunk timeout is far longer than the test may take: only duplicate requests can finish it.
  const d = await downloader(t, file, () => [stalled.source(), good.source()], { chunkTimeoutMs: 60_000 });
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.equal(bytesFrom(result, good.peerId), file.manifest.size);
  assert.ok(result.seconds < 30);
});

test('a source that refuses chunks it claimed to have is passed over', limits, async (t) => {
  const file = await sourceFile(t, 6);
  const total = chunkCount(file.manifest);
  const liar = await startSeeder(t, file, { chunks: new Bitfield(total), claimAll: true });
  const honest = await startSeeder(t, file, { delayMs: 5 });
  // No relocate during the test: what the liar refused is remembered until its next listing.
  const d = await downloader(t, file, () => [liar.source(), honest.source()], { relocateIntervalMs: 60_000 });
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.equal(bytesFrom(result, honest.peerId), file.manifest.size);
  const refused = liar.server.stats.rejectedRequests;
  assert.ok(refused > 0 && refused <= total, `refused ${refused} requests for ${total} chunks`);
});

test('no sources at all: ERR_NO_SOURCES and nothing left behind', limits, async (t) => {
  const file = await sourceFile(t, 2);
  const d = await downloader(t, file, () => [], { noSourceTimeoutMs: 200 });
  await assert.rejects(d.download.start(), { code: 'ERR_NO_SOURCES' });
  assert.deepEqual(await fs.readdir(d.dir), ['.swarmshare']);
  // A failed download keeps its partial file and state, for a resume.
  const id = file.manifest.id.toString('hex');
  assert.deepEqual((await fs.readdir(path.join(d.stateDir, PARTIAL_DIR_NAME))).sort(), [
    `${id}.part`,
    `${id}.state`,
  ]);
});

test('only unreachable sources: ERR_NO_SOURCES', limits, async (t) => {
  const file = await sourceFile(t, 2);
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  const total = chunkCount(file.manifest);
  const dead: SourceInfo = {
    peerId: 'ab'.repeat(32),
    name: 'gone',
    host: '127.0.0.1',
    port,
    chunks: Bitfield.full(total),
  };
  let asked = 0;
  const d = await downloader(
    t,
    file,
    () => {
      asked++;
      return [dead];
    },
    { noSourceTimeoutMs: 400, relocateIntervalMs: 20 },
  );
  await assert.rejects(d.download.start(), { code: 'ERR_NO_SOURCES' });
  assert.ok(asked > 1, 'sources were looked up again');
  assert.deepEqual(await fs.readdir(d.dir), ['.swarmshare']);
});

test('finding sources that fails at first is retried', limits, async (t) => {
  const file = await sourceFile(t, 3);
  const seeder = await startSeeder(t, file);
  let calls = 0;
  const d = await downloader(t, file, () => {
    calls++;
    if (calls <= 2) throw new Error('tracker unavailable');
    return [seeder.source()];
  });
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.ok(calls >= 3);
});

test('a zero-byte file completes without any source', limits, async (t) => {
  const file = await makeFile(await tempDir(t), 'empty.txt', 0);
  const d = await downloader(t, file, () => {
    throw new Error('must not be needed');
  });
  const result = await d.download.start();
  assert.equal(result.size, 0);
  assert.deepEqual(result.sources, []);
  assert.equal((await fs.stat(result.path)).size, 0);
  await assertOnlyResult(d, result, file);
});

test(
  'a name already taken in the folder is kept; the download lands as "name (1).ext"',
  limits,
  async (t) => {
    const file = await sourceFile(t, 2);
    const seeder = await startSeeder(t, file);
    const d = await downloader(t, file, () => [seeder.source()]);
    await fs.writeFile(path.join(d.dir, 'video.mp4'), 'mine');
    const result = await d.download.start();
    assert.equal(result.name, 'video (1).mp4');
    assert.equal(await fs.readFile(path.join(d.dir, 'video.mp4'), 'utf8'), 'mine');
    assert.equal(await sha256File(result.path), file.sha256);
  },
);

test('cancel stops the download, removes the temp file and leaves no file', limits, async (t) => {
  const file = await sourceFile(t, 4);
  const gate = deferred();
  t.after(() => gate.resolve());
  const seeder = await startSeeder(t, file, { gate: gate.promise });
  const d = await downloader(t, file, () => [seeder.source()]);
  const running = d.download.start();
  await waitFor(() => seeder.reads() > 0, 'requests to reach the seeder');
  d.download.cancel();
  await assert.rejects(running, { code: 'ERR_CANCELLED' });
  assert.deepEqual(await fs.readdir(d.dir), ['.swarmshare']);
  assert.deepEqual(await fs.readdir(path.join(d.stateDir, PARTIAL_DIR_NAME)), []);
  await waitFor(() => seeder.server.stats.connections === 0, 'the connection to close');
});

test('a peer serves verified chunks while it is still downloading them', limits, async (t) => {
  const file = await sourceFile(t, 8);
  const total = chunkCount(file.manifest);
  const secondHalf = deferred();
  t.after(() => secondHalf.resolve());
  // The origin gives A the first half at once, the second half only once B has a chunk from A.
  const originCredentials = await ephemeralCredentials();
  const origin = new ChunkServer({
    credentials: originCredentials,
    provider: async (fileId, index) => {
      if (index >= total / 2) await secondHalf.promise;
      return fileId.equals(file.manifest.id) ? readFileChunk(file.path, file.manifest, index) : null;
    },
  });
  t.after(() => origin.close());
  const originPort = (await origin.listen(0, '127.0.0.1')).port;
  const a = await downloader(t, file, () => [
    {
      peerId: originCredentials.peerId.toString('hex'),
      name: 'origin',
      host: '127.0.0.1',
      port: originPort,
      chunks: Bitfield.full(total),
    },
  ]);

  // A serves what it has verified so far; B learns A's chunks at every relocate, as from a tracker.
  const aCredentials = await ephemeralCredentials();
  const aServer = new ChunkServer({
    credentials: aCredentials,
    provider: async (_fileId, index) => a.download.readChunk(index),
  });
  t.after(() => aServer.close());
  const aPort = (await aServer.listen(0, '127.0.0.1')).port;
  const aPeerId = aCredentials.peerId.toString('hex');
  const b = await downloader(
    t,
    file,
    () => [{ peerId: aPeerId, name: 'A', host: '127.0.0.1', port: aPort, chunks: a.download.have }],
    { relocateIntervalMs: 20 },
  );
  let aWasCompleteAtFirstChunk: boolean | undefined;
  b.download.once('progress', () => {
    aWasCompleteAtFirstChunk = a.download.have.complete;
    secondHalf.resolve();
  });

  const [resultA, resultB] = await Promise.all([a.download.start(), b.download.start()]);
  assert.equal(aWasCompleteAtFirstChunk, false);
  await assertOnlyResult(a, resultA, file);
  await assertOnlyResult(b, resultB, file);
  assert.equal(bytesFrom(resultB, aPeerId), file.manifest.size);
});

test(
  'pause: requests in flight finish, no new one is made; resume completes the download',
  limits,
  async (t) => {
    const file = await sourceFile(t, 12);
    const gate = deferred();
    t.after(() => gate.resolve());
    const seeder = await startSeeder(t, file, { gate: gate.promise });
    const d = await downloader(t, file, () => [seeder.source()], { requestsPerSource: 4 });
    const running = d.download.start();
    await waitFor(() => seeder.reads() === 4, 'four requests to reach the seeder');

    assert.equal(d.download.pause(), true);
    assert.equal(d.download.pause(), false, 'already paused');
    assert.equal(d.download.progress.paused, true);
    gate.resolve();
    await waitFor(() => d.download.progress.verifiedChunks >= 4, 'the requests in flight to finish');
    // Had the download asked for more when those chunks arrived, it would have done so in the same
    // step that verified them: the requests would be in flight (or done) by now.
    const [source] = d.download.sourceStats();
    assert.equal(d.download.progress.verifiedChunks, 4);
    assert.equal(source?.inFlight, 0);
    assert.equal(source?.connected, true, 'the connection stays open while paused');
    assert.equal(source?.bytes, d.download.progress.bytes);
    assert.equal(seeder.reads(), 4);

    assert.equal(d.download.resume(), true);
    assert.equal(d.download.resume(), false, 'not paused any more');
    assert.equal(d.download.progress.paused, false);
    const result = await running;
    await assertOnlyResult(d, result, file);
    assert.equal(d.download.pause(), false, 'a finished download cannot be paused');
  },
);

test('a paused download does not fail for want of sources; resumed, it does', limits, async (t) => {
  const file = await sourceFile(t, 2);
  let asked = 0;
  const d = await downloader(
    t,
    file,
    () => {
      asked++;
      return [];
    },
    { noSourceTimeoutMs: 150 },
  );
  d.download.pause();
  let settled = false;
  const running = d.download.start().finally(() => (settled = true));
  running.catch(() => {});
  const startedAt = Date.now();
  // Sources are still looked for every 50 ms while paused: wait until well past the timeout.
  await waitFor(() => asked >= 8 && Date.now() - startedAt > 450, 'several relocations while paused');
  assert.equal(settled, false, 'the paused download is still running');
  d.download.resume();
  await assert.rejects(running, { code: 'ERR_NO_SOURCES' });
});

test(
  'a source that takes requests and never answers: ERR_NO_SOURCES soon after the timeout',
  limits,
  async (t) => {
    const file = await sourceFile(t, 4);
    const stalled = await startSeeder(t, file, { stall: true });
    const noSourceTimeoutMs = 1000;
    const chunkTimeoutMs = 500;
    // Reconnects come quickly (at most 16 relocate intervals apart), so the source always looks busy.
    const d = await downloader(t, file, () => [stalled.source()], {
      noSourceTimeoutMs,
      chunkTimeoutMs,
      relocateIntervalMs: 20,
    });
    const startedAt = Date.now();
    const running = d.download.start();
    running.catch(() => {});
    // Wide margin for a loaded machine; without the fix it would run for minutes.
    const bound = noSourceTimeoutMs + chunkTimeoutMs + 6000;
    const outcome = await Promise.race([
      running.then(
        () => 'completed',
        (err: { code?: string }) => err.code ?? 'failed',
      ),
      new Promise<string>((resolve) => setTimeout(resolve, bound, 'still running').unref()),
    ]);
    assert.equal(outcome, 'ERR_NO_SOURCES');
    const elapsed = Date.now() - startedAt;
    assert.ok(elapsed >= noSourceTimeoutMs, `failed after ${elapsed} ms`);
    assert.ok(stalled.reads() > 0, 'requests reached the source');
    assert.ok(
      d.lost.some(([, reason]) => reason === 'timeout'),
      'its requests timed out',
    );
    assert.deepEqual(await fs.readdir(d.dir), ['.swarmshare']);
    // Kept for a resume: a failed download is not a cancelled one.
    const id = file.manifest.id.toString('hex');
    assert.deepEqual((await fs.readdir(path.join(d.stateDir, PARTIAL_DIR_NAME))).sort(), [
      `${id}.part`,
      `${id}.state`,
    ]);
  },
);

test('a slow source that delivers each chunk within its deadline is not failed', limits, async (t) => {
  const file = await sourceFile(t, 4);
  // Each chunk takes longer than the no-source timeout, well within the request deadline.
  const slow = await startSeeder(t, file, { delayMs: 400 });
  const d = await downloader(t, file, () => [slow.source()], {
    noSourceTimeoutMs: 150,
    chunkTimeoutMs: 10_000,
    requestsPerSource: 1,
  });
  const result = await d.download.start();
  await assertOnlyResult(d, result, file);
  assert.equal(bytesFrom(result, slow.peerId), file.manifest.size);
});
