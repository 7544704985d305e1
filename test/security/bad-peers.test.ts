/**
 * Bad peers: sources that send wrong data are blamed, their data never written, and after
 * MAX_BAD_CHUNKS_PER_SOURCE failures (or one protocol violation) they are banned for the rest of the
 * download, while an honest source that shares the same chunks is never blamed.
 *
 * Hostile cases covered:
 * - a source whose chunks fail their hash (a flipped byte), beside an honest one
 * - a source that sends the right bytes of another chunk under the index asked for
 * - a source that sends data nobody asked for (a PIECE answering no request of ours)
 * - a banned source listed again and again by the tracker (every relocate) is never dialled again
 * - liar and honest source serving the very same chunks at once, end game included: the honest one
 *   is never blamed, and every byte written is right
 * - a peer that answers GET_MANIFEST with hashes forged to match its forged data: the manifest does
 *   not match the file id and is refused, so its hashes are never used
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { MAX_BAD_CHUNKS_PER_SOURCE, MIN_CHUNK_SIZE } from '../../src/constants.js';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import { Download, type SourceInfo } from '../../src/peer/download.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { decodePeerMessage, encodePeerMessage } from '../../src/wire/peer-messages.js';
import { acceptHandshake, FrameLink, listenHostile } from '../helpers/hostile.js';
import { makeFile, sha256File, startSeeder, type TestFile } from '../helpers/peer-fixtures.js';

const T = { timeout: 60_000 };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-bad-peers-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function testFile(t: TestContext, chunks: number): Promise<TestFile> {
  return makeFile(await tempDir(t), 'video.mp4', MIN_CHUNK_SIZE * chunks + 777, chunks);
}

interface Watched {
  download: Download;
  dir: string;
  lost: [string, string][];
  chunksFrom: Map<string, number>;
}

/** A download of `file` from whatever `sources()` lists, relocating every 50 ms. */
async function download(t: TestContext, file: TestFile, sources: () => SourceInfo[]): Promise<Watched> {
  const dir = await tempDir(t);
  const chunksFrom = new Map<string, number>();
  const d = new Download({
    manifest: file.manifest,
    dir,
    stateDir: path.join(dir, '.swarmshare'),
    findSources: async () => sources(),
    relocateIntervalMs: 50,
    onChunk: (_index, peerId) => chunksFrom.set(peerId, (chunksFrom.get(peerId) ?? 0) + 1),
  });
  t.after(() => d.cancel());
  const lost: [string, string][] = [];
  d.on('source-lost', (peer, why) => lost.push([peer, why]));
  return { download: d, dir, lost, chunksFrom };
}

/** The download finishes with the right bytes; the liar is banned (never the honest one). */
async function assertLiarBanned(
  w: Watched,
  file: TestFile,
  liar: string,
  honest: string,
  why: string,
): Promise<void> {
  const result = await w.download.start();
  assert.equal(await sha256File(result.path), file.sha256);
  assert.ok(
    w.lost.some(([peer, reason]) => peer === liar && reason === why),
    `the liar was banned for ${why}: ${JSON.stringify(w.lost)}`,
  );
  assert.ok(
    !w.lost.some(([peer]) => peer === honest),
    `the honest source was never lost: ${JSON.stringify(w.lost)}`,
  );
  assert.equal(w.chunksFrom.get(liar) ?? 0, 0, 'no chunk of the liar was taken');
  assert.equal(w.chunksFrom.get(honest), chunkCount(file.manifest));
}

test(
  'a source whose chunks fail their hash is banned; the file comes whole from the honest one',
  T,
  async (t) => {
    const file = await testFile(t, 12);
    const liar = await startSeeder(t, file, { corrupt: true });
    // The honest source starts slow, so the liar is asked for many chunks first.
    const honest = await startSeeder(t, file, { delayMs: 20 });
    const w = await download(t, file, () => [liar.source(), honest.source()]);
    await assertLiarBanned(w, file, liar.peerId, honest.peerId, 'bad-chunks');
    // Listed again at every relocate (every 50 ms), it was never dialled again.
    assert.equal(liar.server.stats.acceptedConnections, 1);
    assert.ok(liar.reads() >= MAX_BAD_CHUNKS_PER_SOURCE);
  },
);

test(
  'a source that sends the right bytes of another chunk under the index asked for is banned',
  T,
  async (t) => {
    const file = await testFile(t, 12);
    const liar = await startSeeder(t, file, { wrongIndex: true });
    const honest = await startSeeder(t, file, { delayMs: 20 });
    const w = await download(t, file, () => [liar.source(), honest.source()]);
    const result = await w.download.start();
    assert.equal(await sha256File(result.path), file.sha256);
    // Every chunk but the last is full length, so each lie is a hash failure (the last one, shorter,
    // may be cut off as a protocol violation instead): either way it is banned.
    const banned = w.lost.find(([peer]) => peer === liar.peerId);
    assert.ok(banned && ['bad-chunks', 'protocol'].includes(banned[1]), JSON.stringify(w.lost));
    assert.ok(!w.lost.some(([peer]) => peer === honest.peerId));
    assert.equal(w.chunksFrom.get(liar.peerId) ?? 0, 0);
    assert.equal(liar.server.stats.acceptedConnections, 1);
  },
);

test('a source that sends data nobody asked for is banned at once', T, async (t) => {
  const file = await testFile(t, 8);
  let connections = 0;
  const hostile = await listenHostile(t, (stream) => {
    connections++;
    void (async () => {
      const link = new FrameLink(stream);
      if (!(await acceptHandshake(link))) return;
      for (let body = await link.next(); body; body = await link.next()) {
        const message = decodePeerMessage(body);
        if (message.type === 'info') {
          link.send(encodePeerMessage({ type: 'info', peerId: hostile.peerId, name: 'pusher', port: 0 }));
        } else if (message.type === 'request') {
          // Real bytes of the chunk, but under a request id we never used.
          const data = Buffer.alloc(MIN_CHUNK_SIZE, 0x55);
          link.send(
            encodePeerMessage({ type: 'piece', req: message.req + 1_000_000, index: message.index, data }),
          );
        }
      }
    })().catch(() => stream.destroy());
  });
  const total = chunkCount(file.manifest);
  const pusher: SourceInfo = {
    peerId: hostile.peerId.toString('hex'),
    name: 'pusher',
    host: hostile.host,
    port: hostile.port,
    chunks: Bitfield.full(total),
  };
  const honest = await startSeeder(t, file, { delayMs: 20 });
  const w = await download(t, file, () => [pusher, honest.source()]);
  await assertLiarBanned(w, file, pusher.peerId, honest.peerId, 'protocol');
  assert.equal(connections, 1, 'a banned source is never dialled again');
});

test('liar and honest source serving the same chunks at once: only the liar is ever blamed', T, async (t) => {
  // Few chunks and two sources: every chunk is asked of both at some point (end game included).
  for (let round = 0; round < 3; round++) {
    const file = await testFile(t, 6);
    const liar = await startSeeder(t, file, { corrupt: true });
    const honest = await startSeeder(t, file);
    const w = await download(t, file, () => [honest.source(), liar.source()]);
    const result = await w.download.start();
    assert.equal(await sha256File(result.path), file.sha256);
    assert.ok(!w.lost.some(([peer]) => peer === honest.peerId), JSON.stringify(w.lost));
    assert.equal(w.chunksFrom.get(liar.peerId) ?? 0, 0);
  }
});

test('a manifest with forged hashes does not match the file id and is refused', T, async (t) => {
  const file = await testFile(t, 4);
  const hashes = Buffer.from(file.manifest.hashes);
  hashes[0]! ^= 0xff; // hashes of other data, which a liar would then serve
  const forged = { ...file.manifest, hashes };
  const server = new ChunkServer({ provider: async () => null, manifest: () => forged });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await PeerClient.connect('127.0.0.1', port);
  t.after(() => client.close());
  await assert.rejects(client.getManifest(file.manifest.id), { code: 'ERR_BAD_MANIFEST' });
});
