import { ephemeralCredentials } from '../../src/transport/credentials.js';
/**
 * Bad peers: a download survives sources that lie, blames only the one whose connection delivered
 * the bytes, and bans it for the rest of the download. Real tracker, real peers (PeerNode, or a real
 * ChunkServer where an honest source must wait for a gate), hostile peers on the real wire codecs
 * (test/helpers/hostile-peers.ts), all on loopback. Every download ends with the original bytes.
 *
 * Hostile cases covered, one per line:
 * - corrupt chunks (a byte flipped): blamed, never written, fetched elsewhere, banned at the limit;
 * - the right bytes of another chunk under the index asked for: fails its hash, blamed, banned;
 * - a PIECE labelled with another chunk than the one asked for: protocol violation, banned at once;
 * - a PIECE for a request never made on that connection (unrequested data): banned at once;
 * - a banned peer listed again under a new peer id at its address, or under its id at a new address:
 *   never connected again;
 * - a liar and an honest peer asked for the same chunks at once (end-game duplicates): the honest
 *   copies win, only the liar is blamed and banned;
 * - an honest peer that answers requests we cancelled (it ignores CANCEL, as the protocol allows):
 *   its late answers are dropped quietly, it is never blamed;
 * - an honest peer whose connection drops in the middle of a chunk: not blamed, reconnected, used;
 * - peers answering GET_MANIFEST with forged hashes (for the id asked, or another file's manifest):
 *   refused, and with no other source the download never starts;
 * - a peer with a forged manifest and matching forged data beside an honest tracker: the forged
 *   manifest is refused, its data fails the true hashes, it is banned;
 * - a tracker whose LOCATE gives forged hashes for the file id: refused before any chunk is asked;
 *   beside an honest tracker, the honest manifest is the one used.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { Endpoint } from '../../src/address.js';
import { MAX_BAD_CHUNKS_PER_SOURCE, MIN_CHUNK_SIZE } from '../../src/constants.js';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import type { DownloadResult, SourceBan, SourceLostReason } from '../../src/peer/download.js';
import { PeerNode, type ActiveDownload } from '../../src/peer/peer-node.js';
import { chunkCount, chunkLength } from '../../src/storage/manifest.js';
import { PARTIAL_DIR_NAME } from '../../src/storage/partial-file.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import type { TrackerClient } from '../../src/tracker/client.js';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import type { FileLocation, TrackerStore } from '../../src/tracker/store.js';
import { TrackerServer } from '../../src/tracker/server.js';
import {
  registerWithTracker,
  startHostilePeer,
  type Answer,
  type HostilePeer,
} from '../helpers/hostile-peers.js';
import { deferred, makeFile, sha256File, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

const HOST = '127.0.0.1';
/** Generous: each test runs a tracker and several peers on a shared, loaded machine. */
const limits = { timeout: 90_000 };

// ---- Fixtures -------------------------------------------------------------------------------------

interface Tracker {
  port: number;
  /** LOCATE requests handled so far: each relocate of a download is one. */
  locates: () => number;
}

async function startTracker(t: TestContext, store?: TrackerStore): Promise<Tracker> {
  const server = new TrackerServer(store ? { store } : {});
  t.after(() => server.close());
  const { port } = await server.listen(0, HOST);
  return { port, locates: () => server.activity.counters().requests['locate'] ?? 0 };
}

/** A file of `chunks` chunks (the last one short unless `exact`), and its forgery: same size, other bytes. */
async function files(
  t: TestContext,
  chunks: number,
  exact = false,
): Promise<{ file: TestFile; forged: TestFile }> {
  const dir = await tempDir(t);
  const size = chunks * MIN_CHUNK_SIZE + (exact ? 0 : 777 - MIN_CHUNK_SIZE);
  const file = await makeFile(dir, 'video.bin', size, 41);
  const forged = await makeFile(await tempDir(t), 'video.bin', size, 42);
  assert.equal(chunkCount(file.manifest), chunks);
  return { file, forged };
}

interface LogRecord {
  level: number;
  msg: string;
  peer?: string;
  reason?: string;
  [key: string]: unknown;
}

const WARN = 40;

/** A logger that keeps every record, for asserting what a person would read. */
function captureLog(): { logger: pino.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), records };
}

interface Downloader {
  node: PeerNode;
  /** Every source banned, in order. */
  bans: SourceBan[];
  lost: [string, SourceLostReason][];
  logs: LogRecord[];
  /** The download in progress (or finished): its live status. */
  active: () => ActiveDownload;
}

/** A peer that downloads (and shares nothing at first), relocating every 100 ms. */
async function startDownloader(
  t: TestContext,
  where: { trackers?: Tracker[]; peers?: Endpoint[] },
): Promise<Downloader> {
  const { logger, records } = captureLog();
  const trackers = where.trackers ?? [];
  const node = await PeerNode.start({
    dir: await tempDir(t),
    trackers: trackers.map((tracker) => ({ host: HOST, port: tracker.port })),
    peers: where.peers ?? [],
    host: HOST,
    name: 'downloader',
    ephemeralIdentity: true,
    shareOnStart: false,
    relocateIntervalMs: 100,
    noSourceTimeoutMs: 60_000,
    logger,
  });
  t.after(() => node.close());
  let active: ActiveDownload | null = null;
  const state: Downloader = {
    node,
    bans: [],
    lost: [],
    logs: records,
    active: () => active ?? assert.fail('no download started'),
  };
  node.on('download-started', (started) => {
    active = started;
    started.download.on('source-banned', (ban) => state.bans.push(ban));
    started.download.on('source-lost', (peer, reason) => state.lost.push([peer, reason]));
  });
  if (trackers.length > 0) await node.trackerReady();
  return state;
}

/** An honest PeerNode sharing a copy of `file`, registered with the trackers. */
async function startHonestNode(t: TestContext, trackers: Tracker[], file: TestFile): Promise<PeerNode> {
  const dir = await tempDir(t);
  await fs.copyFile(file.path, path.join(dir, file.manifest.name));
  const node = await PeerNode.start({
    dir,
    trackers: trackers.map((tracker) => ({ host: HOST, port: tracker.port })),
    host: HOST,
    name: 'honest',
    ephemeralIdentity: true,
  });
  t.after(() => node.close());
  await node.trackerReady();
  return node;
}

/**
 * An honest real chunk server holding `file`, which answers once `gate` opens (and, with
 * `serveAtMost`, refuses requests past that many, as if it had lost the file), registered with the
 * tracker. Records the chunks asked of it.
 */
async function startGatedHonest(
  t: TestContext,
  tracker: Tracker,
  file: TestFile,
  gate: Promise<void>,
  { serveAtMost = Infinity } = {},
): Promise<{ peerIdHex: string; requested: number[] }> {
  const requested: number[] = [];
  const credentials = await ephemeralCredentials();
  const server = new ChunkServer({
    credentials,
    provider: async (fileId, index) => {
      const nth = requested.push(index);
      await gate;
      if (!fileId.equals(file.manifest.id) || nth > serveAtMost) return null;
      return readFileChunk(file.path, file.manifest, index);
    },
  });
  t.after(() => server.close());
  const { port } = await server.listen(0, HOST);
  await registerWithTracker(t, tracker.port, { credentials, name: 'gated-honest', port }, file.manifest);
  return { peerIdHex: credentials.peerId.toString('hex'), requested };
}

/** The download is complete, with exactly the original bytes. */
async function assertIntact(result: DownloadResult, file: TestFile): Promise<void> {
  assert.equal(result.size, file.manifest.size);
  assert.equal(await sha256File(result.path), file.sha256);
}

/** Banned sources are exactly `liars`; every other source is not banned. */
function assertBannedExactly(result: DownloadResult, liars: string[]): void {
  const banned = result.sources.filter((s) => s.banned).map((s) => s.peerId);
  assert.deepEqual(banned.sort(), [...liars].sort());
  for (const liar of liars) assert.equal(result.sources.find((s) => s.peerId === liar)?.bytes, 0);
}

function bytesFrom(result: DownloadResult, peerId: string): number {
  return result.sources.find((s) => s.peerId === peerId)?.bytes ?? 0;
}

/** The partial file holds none of `bad(index)` at any of `indices`: bad bytes were never written. */
async function assertNeverWritten(
  d: Downloader,
  file: TestFile,
  indices: number[],
  bad: (index: number) => Promise<Buffer>,
): Promise<void> {
  const part = path.join(
    d.node.folder.stateDir,
    PARTIAL_DIR_NAME,
    `${file.manifest.id.toString('hex')}.part`,
  );
  const contents = await fs.readFile(part);
  for (const index of indices) {
    const at = index * file.manifest.chunkSize;
    const region = contents.subarray(at, at + chunkLength(file.manifest, index));
    assert.ok(!region.equals(await bad(index)), `the bad copy of chunk ${index} is in the partial file`);
  }
}

async function corruptChunk(file: TestFile, index: number): Promise<Buffer> {
  const data = await readFileChunk(file.path, file.manifest, index);
  data[data.length >> 1]! ^= 0xff;
  return data;
}

/** Chunks of the file in liarAlone. */
const CHUNKS = 12;

/**
 * The common plot: a liar is the only source at first. Once it is banned, the test checks what it
 * must, waits three relocates (the tracker still lists the liar) to see it is not connected again,
 * then an honest peer joins and the download completes from it.
 */
async function liarAlone(
  t: TestContext,
  answer: (request: { index: number }) => Answer,
  whileBanned?: (context: {
    d: Downloader;
    file: TestFile;
    liar: HostilePeer;
    /** The liar's tracker session. */
    session: TrackerClient;
    tracker: Tracker;
  }) => Promise<void>,
): Promise<{ d: Downloader; liar: HostilePeer; ban: SourceBan; result: DownloadResult; file: TestFile }> {
  const tracker = await startTracker(t);
  const { file } = await files(t, CHUNKS);
  const liar = await startHostilePeer(t, { file, name: 'liar', answer });
  const session = await liar.register(t, tracker.port);
  const d = await startDownloader(t, { trackers: [tracker] });
  const running = d.node.download(file.manifest.id);
  running.catch(() => undefined);

  const ban = await waitFor(() => d.bans.find((b) => b.peerId === liar.peerIdHex), 'the liar to be banned');
  assert.equal(ban.address, `${HOST}:${liar.port}`);
  assert.equal(d.active().download.progress.verifiedChunks, 0, 'nothing it sent was accepted');
  assert.equal(d.active().download.progress.bannedSources, 1);
  const stats = d.active().download.sourceStats();
  assert.deepEqual(
    stats.map((s) => [s.peerId, s.banned, s.connected]),
    [[liar.peerIdHex, true, false]],
  );
  await whileBanned?.({ d, file, liar, session, tracker });

  const connections = liar.connections();
  const locates = tracker.locates();
  await waitFor(() => tracker.locates() >= locates + 3, 'three relocates after the ban');
  assert.equal(liar.connections(), connections, 'a banned peer is not connected again');

  const honest = await startHonestNode(t, [tracker], file);
  const result = await running;
  await assertIntact(result, file);
  assertBannedExactly(result, [liar.peerIdHex]);
  assert.equal(bytesFrom(result, honest.peerIdHex), file.manifest.size);
  // Banned, it was asked nothing more; and no chunk was asked of it twice.
  const asked = liar.requestedIndices();
  assert.equal(new Set(asked).size, asked.length, `chunks asked of the liar: ${asked.join(', ')}`);
  // A warning names the peer and the reason.
  const warning = d.logs.find(
    (r) =>
      r.level === WARN && r.msg === 'source banned for the rest of the download' && r.peer === liar.peerIdHex,
  );
  assert.ok(warning, 'a warning about the ban');
  assert.equal(warning.reason, ban.reason);
  return { d, liar, ban, result, file };
}

// ---- Lies in the data -----------------------------------------------------------------------------

test('corrupt chunks: blamed, never written, fetched elsewhere; banned at the limit', limits, async (t) => {
  const { d, ban, liar } = await liarAlone(
    t,
    () => 'corrupt',
    async ({ d: downloader, file, liar: peer }) => {
      await assertNeverWritten(downloader, file, peer.requestedIndices(), (i) => corruptChunk(file, i));
    },
  );
  assert.equal(ban.reason, 'bad-chunks');
  assert.ok(liar.requests() >= MAX_BAD_CHUNKS_PER_SOURCE);
  assert.deepEqual(
    d.lost.filter(([peer]) => peer === liar.peerIdHex),
    [[liar.peerIdHex, 'bad-chunks']],
  );
  const blamed = d.logs.filter(
    (r) =>
      r.level === WARN && r.peer === liar.peerIdHex && String(r.msg).startsWith('chunk failed verification'),
  );
  assert.ok(blamed.length >= MAX_BAD_CHUNKS_PER_SOURCE, `${blamed.length} blame warnings`);
});

test('the right bytes under the wrong index fail the hash of the index asked for', limits, async (t) => {
  const { ban } = await liarAlone(
    t,
    ({ index }) => ({ bytesOf: (index + 1) % CHUNKS }),
    async ({ d, file, liar }) => {
      // Chunk i+1's true bytes were never written at chunk i.
      await assertNeverWritten(d, file, liar.requestedIndices(), (i) =>
        readFileChunk(file.path, file.manifest, (i + 1) % CHUNKS),
      );
    },
  );
  assert.equal(ban.reason, 'bad-chunks');
});

// ---- Lies in the protocol -------------------------------------------------------------------------

test('a PIECE labelled with another chunk than the one asked for: banned at once', limits, async (t) => {
  const { ban, liar } = await liarAlone(t, ({ index }) => ({ labelledAs: (index + 1) % CHUNKS }));
  assert.equal(ban.reason, 'protocol');
  assert.match(ban.detail, /carries chunk/);
  assert.equal(liar.connections(), 1);
});

test('unrequested data (a PIECE for a request never made): banned at once', limits, async (t) => {
  const { ban, liar, d } = await liarAlone(t, () => 'unrequested');
  assert.equal(ban.reason, 'protocol');
  assert.match(ban.detail, /not in flight/);
  assert.equal(liar.connections(), 1);
  assert.deepEqual(
    d.lost.filter(([peer]) => peer === liar.peerIdHex),
    [[liar.peerIdHex, 'protocol']],
  );
});

test(
  'a banned peer listed again, under a new id at its address or under its id elsewhere, is never used',
  limits,
  async (t) => {
    let elsewhere: HostilePeer | null = null;
    await liarAlone(
      t,
      () => 'corrupt',
      async ({ file, liar, session, tracker, d }) => {
        const connections = liar.connections();
        // The same address under a fresh peer id (a new key)...
        await liar.register(t, tracker.port, await ephemeralCredentials());
        // ...and the same peer id at a new address (its first session gone, so the tracker takes it).
        await session.leave();
        elsewhere = await startHostilePeer(t, {
          file,
          name: 'liar-again',
          answer: () => 'corrupt',
          credentials: liar.credentials,
        });
        await elsewhere.register(t, tracker.port);
        const locates = tracker.locates();
        await waitFor(() => tracker.locates() >= locates + 3, 'three relocates after the new listings');
        assert.equal(liar.connections(), connections, 'its address under a new id is not connected');
        assert.equal(elsewhere.connections(), 0, 'its id at a new address is not connected');
        assert.equal(d.active().download.progress.bannedSources, 1);
      },
    );
    assert.equal(elsewhere!.connections(), 0);
  },
);

// ---- Honest and lying sources side by side ----------------------------------------------------------

test(
  'a liar and an honest peer asked for the same chunks at once: the honest copies win, only the liar is banned',
  limits,
  async (t) => {
    const tracker = await startTracker(t);
    // Four chunks: the first source connected is asked for all of them, the other for duplicates (end game).
    const { file } = await files(t, 4, true);
    const gate = deferred();
    t.after(() => gate.resolve());
    const honest = await startGatedHonest(t, tracker, file, gate.promise);
    // The liar answers a chunk only once the honest peer has been asked for it too.
    const liar = await startHostilePeer(t, {
      file,
      name: 'liar',
      answer: async ({ index }): Promise<Answer> => {
        await waitFor(
          () => honest.requested.includes(index),
          `chunk ${index} to be asked of the honest peer`,
        );
        return 'corrupt';
      },
    });
    await liar.register(t, tracker.port);
    const d = await startDownloader(t, { trackers: [tracker] });
    const running = d.node.download(file.manifest.id);

    await waitFor(() => d.bans.some((b) => b.peerId === liar.peerIdHex), 'the liar to be banned');
    const both = liar.requestedIndices().filter((i) => honest.requested.includes(i));
    assert.ok(both.length >= MAX_BAD_CHUNKS_PER_SOURCE, `chunks asked of both: ${both.join(', ')}`);
    gate.resolve();

    const result = await running;
    await assertIntact(result, file);
    assertBannedExactly(result, [liar.peerIdHex]);
    assert.equal(bytesFrom(result, honest.peerIdHex), file.manifest.size);
    const honestStats = d
      .active()
      .download.sourceStats()
      .find((s) => s.peerId === honest.peerIdHex);
    assert.equal(honestStats?.badChunks, 0, 'no blame on the honest peer');
    assert.equal(honestStats?.banned, false);
    assert.ok(!d.logs.some((r) => r.level === WARN && r.peer === honest.peerIdHex), 'no warning about it');
  },
);

test(
  'an honest peer that answers requests we cancelled is not blamed: late answers are dropped quietly',
  limits,
  async (t) => {
    const tracker = await startTracker(t);
    const { file } = await files(t, 8, true);
    // Slow answers nothing until we cancel something; then it answers everything, cancelled or not,
    // the cancelled first, so a late answer arrives while the download still needs slow.
    const slow = await startHostilePeer(t, {
      file,
      name: 'slow',
      answer: async ({ cancelled }): Promise<Answer> => {
        await waitFor(() => slow.cancels() > 0, 'a CANCEL', 60_000);
        if (!cancelled()) await waitFor(() => slow.answersAfterCancel() > 0, 'a late answer first', 60_000);
        return 'honest';
      },
    });
    await slow.register(t, tracker.port);
    // Fast answers once both hold four requests (8 chunks: every one is then asked for, the end game
    // begins), and only its first five requests: its four and one duplicate of a chunk asked of slow,
    // which wins, so slow's request for it is cancelled. It refuses the other duplicates, so the rest
    // must come from slow.
    const gate = deferred();
    t.after(() => gate.resolve());
    const fast = await startGatedHonest(t, tracker, file, gate.promise, { serveAtMost: 5 });
    const d = await startDownloader(t, { trackers: [tracker] });
    const running = d.node.download(file.manifest.id);
    await waitFor(() => slow.requests() >= 4 && fast.requested.length >= 4, 'four requests at each');
    gate.resolve();

    const result = await running;
    await assertIntact(result, file);
    assertBannedExactly(result, []);
    assert.ok(slow.answersAfterCancel() > 0, 'it answered a request we had cancelled');
    assert.ok(bytesFrom(result, slow.peerIdHex) > 0);
    assert.equal(bytesFrom(result, fast.peerIdHex), 5 * MIN_CHUNK_SIZE);
    assert.deepEqual(d.lost, [], 'no source lost: neither blamed nor timed out');
    const stats = d.active().download.sourceStats();
    assert.ok(stats.every((s) => s.badChunks === 0 && !s.banned));
  },
);

test(
  'a connection that drops in the middle of a chunk is not blame: the peer is used again',
  limits,
  async (t) => {
    const tracker = await startTracker(t);
    const { file } = await files(t, 6);
    // Its first connection is cut half-way through the first chunk it sends; after that it is honest.
    const flaky = await startHostilePeer(t, {
      file,
      name: 'flaky',
      answer: ({ nth }) => (nth === 0 ? 'cut' : 'honest'),
    });
    await flaky.register(t, tracker.port);
    const d = await startDownloader(t, { trackers: [tracker] });
    const result = await d.node.download(file.manifest.id);

    await assertIntact(result, file);
    assertBannedExactly(result, []);
    assert.equal(bytesFrom(result, flaky.peerIdHex), file.manifest.size);
    assert.ok(flaky.connections() >= 2, 'it was connected again');
    assert.deepEqual(d.lost[0], [flaky.peerIdHex, 'disconnected']);
    assert.deepEqual(d.bans, []);
    assert.equal(d.active().download.progress.bannedSources, 0);
  },
);

// ---- Forged manifests -------------------------------------------------------------------------------

test('manifests with forged hashes from peers are refused: no download starts on them', limits, async (t) => {
  const { file, forged } = await files(t, 6);
  const forgedHashes = { ...file.manifest, hashes: forged.manifest.hashes };
  // One answers with forged hashes under the id asked for, the other with another file's manifest;
  // each serves data that matches the hashes it gave.
  const sameId = await startHostilePeer(t, {
    file,
    forged,
    name: 'same-id',
    manifest: forgedHashes,
    answer: () => 'forged',
  });
  const otherId = await startHostilePeer(t, {
    file,
    forged,
    name: 'other-id',
    manifest: forged.manifest,
    answer: () => 'forged',
  });
  const d = await startDownloader(t, {
    peers: [sameId, otherId].map((p) => ({ host: HOST, port: p.port })),
  });
  const id = file.manifest.id.toString('hex');
  await waitFor(() => d.node.meshPeers().filter((p) => p.offers.has(id)).length === 2, 'both offers');

  await assert.rejects(d.node.download(file.manifest.id), { code: 'ERR_NOT_FOUND' });
  assert.equal(sameId.manifestRequests(), 1);
  assert.equal(otherId.manifestRequests(), 1);
  assert.equal(sameId.requests() + otherId.requests(), 0, 'no chunk was asked for');
  assert.deepEqual(d.node.activeDownloads(), []);
  await assert.rejects(fs.access(path.join(d.node.folder.stateDir, PARTIAL_DIR_NAME, `${id}.part`)));
  const refusals = d.logs.filter(
    (r) => r.level === WARN && r.msg === 'peer sent a false manifest; asking another',
  );
  assert.deepEqual(refusals.map((r) => r.peer).sort(), [sameId.peerIdHex, otherId.peerIdHex].sort());
});

test(
  'a peer with a forged manifest and matching forged data: its manifest is refused, its data fails, it is banned',
  limits,
  async (t) => {
    const tracker = await startTracker(t);
    const { file, forged } = await files(t, 12);
    const forger = await startHostilePeer(t, {
      file,
      forged,
      name: 'forger',
      manifest: { ...file.manifest, hashes: forged.manifest.hashes },
      answer: () => 'forged',
    });
    // The tracker learns the true manifest (it checks it against the id), the forger claims the file.
    await forger.register(t, tracker.port);
    const d = await startDownloader(t, { trackers: [tracker], peers: [{ host: HOST, port: forger.port }] });
    const id = file.manifest.id.toString('hex');
    await waitFor(() => d.node.meshPeers().some((p) => p.offers.has(id)), "the forger's offer");
    const running = d.node.download(file.manifest.id);
    running.catch(() => undefined);

    await waitFor(() => d.bans.some((b) => b.peerId === forger.peerIdHex), 'the forger to be banned');
    assert.equal(d.active().download.progress.verifiedChunks, 0);
    await startHonestNode(t, [tracker], file);
    const result = await running;
    await assertIntact(result, file);
    assertBannedExactly(result, [forger.peerIdHex]);
    assert.equal(forger.manifestRequests(), 1, 'it was asked for the manifest');
    assert.ok(
      d.logs.some(
        (r) =>
          r.level === WARN &&
          r.peer === forger.peerIdHex &&
          r.msg === 'peer sent a false manifest; asking another',
      ),
    );
  },
);

/** A tracker store that answers LOCATE with the forged hashes under the true file id. */
class ForgingStore extends MemoryTrackerStore {
  constructor(private readonly forgedHashes: Buffer) {
    super();
  }

  override async locate(fileId: Buffer, maxHolders: number): Promise<FileLocation | null> {
    const location = await super.locate(fileId, maxHolders);
    return location && { ...location, manifest: { ...location.manifest, hashes: this.forgedHashes } };
  }
}

test(
  'a tracker that gives forged hashes for the file id is refused before any chunk is asked',
  limits,
  async (t) => {
    const { file, forged } = await files(t, 6);
    const forging = await startTracker(t, new ForgingStore(forged.manifest.hashes));
    const honestTracker = await startTracker(t);
    const honest = await startHonestNode(t, [forging, honestTracker], file);
    const forger = await startHostilePeer(t, { file, forged, name: 'forger', answer: () => 'forged' });
    await forger.register(t, forging.port);
    const id = file.manifest.id.toString('hex');

    // With the forging tracker alone, nothing is downloaded at all.
    const alone = await startDownloader(t, { trackers: [forging] });
    await assert.rejects(alone.node.download(file.manifest.id), { code: 'ERR_BAD_MANIFEST' });
    assert.equal(forger.requests(), 0);
    assert.equal(honest.uploadedBytes, 0);
    assert.deepEqual(alone.node.activeDownloads(), []);
    await assert.rejects(fs.access(path.join(alone.node.folder.stateDir, PARTIAL_DIR_NAME, `${id}.part`)));

    // Beside an honest tracker, the forging one's answer is refused and the honest one's is used.
    const d = await startDownloader(t, { trackers: [forging, honestTracker] });
    const locates = forging.locates();
    const result = await d.node.download(file.manifest.id);
    await assertIntact(result, file);
    assertBannedExactly(result, []);
    assert.equal(bytesFrom(result, honest.peerIdHex), file.manifest.size);
    assert.ok(forging.locates() > locates, 'the forging tracker was asked too');
    assert.equal(forger.requests(), 0);
  },
);
