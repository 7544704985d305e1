import { randomBytes } from 'node:crypto';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
/**
 * Upload slots on real connections: a ChunkServer on loopback and PeerClients. Deadlines are
 * generous and nothing asserts on timing: the intervals only make rotation happen soon.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { RemoteError, errorCode } from '../../src/errors.js';
import { ChunkServer, serveFileChunk, type ChunkServerOptions } from '../../src/peer/chunk-server.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { deferred, makeFile, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

const limits = { timeout: 60_000 };
/** Long enough that no timer fires during a test that relies on the slots as they were given. */
const NO_TIMERS = { unchokeIntervalMs: 600_000, optimisticUnchokeIntervalMs: 600_000 };

async function testFile(t: TestContext): Promise<TestFile> {
  return makeFile(await tempDir(t), 'file.bin', MIN_CHUNK_SIZE * 4, 3);
}

/**
 * A chunk server of `file`; its reads wait for `gate` when one is given (opened at the latest when
 * the test ends), so the clients served hold their slots meanwhile.
 */
async function serve(
  t: TestContext,
  file: TestFile,
  options: Partial<ChunkServerOptions> & { gate?: Promise<void>; delayMs?: number } = {},
): Promise<{ server: ChunkServer; port: number }> {
  const { gate, delayMs, ...rest } = options;
  const server = new ChunkServer({
    provider: async (fileId, index) => {
      if (gate) await gate;
      if (delayMs) await delay(delayMs);
      const ours = fileId.equals(file.manifest.id);
      return serveFileChunk(ours ? { manifest: file.manifest, path: file.path } : undefined, index);
    },
    manifest: (fileId) => (fileId.equals(file.manifest.id) ? file.manifest : null),
    ...rest,
  });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

interface Watched {
  client: PeerClient;
  peerId: string;
  chokes: number;
  unchokes: number;
  chunks: number;
}

async function connect(t: TestContext, port: number): Promise<Watched> {
  const credentials = await ephemeralCredentials();
  const peerId = credentials.peerId;
  const client = await PeerClient.connect('127.0.0.1', port, { credentials, self: { name: 'test' } });
  t.after(() => client.close());
  const watched: Watched = { client, peerId: peerId.toString('hex'), chokes: 0, unchokes: 0, chunks: 0 };
  client.on('choke', () => watched.chokes++);
  client.on('unchoke', () => watched.unchokes++);
  return watched;
}

const isChoked = (err: unknown): boolean => err instanceof RemoteError && err.code === 'ERR_CHOKED';

/**
 * Asks for chunks one after another until `stop()`, as a download would: while choked, it waits for
 * UNCHOKE instead of asking.
 */
async function pull(w: Watched, file: TestFile, stop: () => boolean): Promise<void> {
  const total = chunkCount(file.manifest);
  for (let i = 0; !stop() && !w.client.isClosed; i++) {
    if (w.client.choked) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          w.client.off('unchoke', done);
          w.client.off('close', done);
          clearInterval(poll);
          resolve();
        };
        w.client.once('unchoke', done);
        w.client.once('close', done);
        const poll = setInterval(() => stop() && done(), 50);
      });
      continue;
    }
    try {
      const data = await w.client.requestChunk(file.manifest.id, i % total);
      assert.equal(data.length, MIN_CHUNK_SIZE);
      w.chunks++;
    } catch (err) {
      if (!isChoked(err) && !w.client.isClosed) throw err;
    }
  }
}

test(
  'one regular slot and the optimistic one: two clients are served at a time, the others are choked',
  limits,
  async (t) => {
    const file = await testFile(t);
    const gate = deferred();
    t.after(() => gate.resolve());
    const { server, port } = await serve(t, file, { gate: gate.promise, uploadSlots: 1, ...NO_TIMERS });
    const clients: Watched[] = [];
    for (let i = 0; i < 4; i++) clients.push(await connect(t, port));
    // The first two take the slots (their reads wait at the gate); the other two are refused.
    const served = clients.slice(0, 2).map((w, i) => w.client.requestChunk(file.manifest.id, i));
    await waitFor(() => server.stats.unchoked === 2, 'the first two requests at the server');
    for (const w of clients.slice(2)) {
      await assert.rejects(w.client.requestChunk(file.manifest.id, 0), isChoked);
      assert.ok(w.client.choked, 'CHOKE arrives before the REJECT');
      assert.equal(w.chokes, 1);
      // Refused at once again, with no second CHOKE.
      await assert.rejects(w.client.requestChunk(file.manifest.id, 1), isChoked);
      assert.equal(w.chokes, 1);
      // Manifests are not subject to slots.
      assert.deepEqual((await w.client.getManifest(file.manifest.id)).id, file.manifest.id);
    }
    assert.equal(server.stats.unchoked, 2);
    assert.equal(server.stats.choked, 2);
    gate.resolve();
    for (const [i, reply] of served.entries()) {
      assert.deepEqual(await reply, await readFileChunk(file.path, file.manifest, i));
    }
    for (const w of clients.slice(0, 2)) assert.ok(!w.client.choked && w.chokes === 0);
    assert.equal(server.stats.rejectedRequests, 4);
  },
);

test('a lone client is unchoked at once and gets every chunk', limits, async (t) => {
  const file = await testFile(t);
  const { server, port } = await serve(t, file, { uploadSlots: 1 });
  const w = await connect(t, port);
  const total = chunkCount(file.manifest);
  // Pipelined, as a download asks.
  const replies = Array.from({ length: total }, (_, i) => w.client.requestChunk(file.manifest.id, i));
  for (const [i, reply] of replies.entries()) {
    assert.deepEqual(await reply, await readFileChunk(file.path, file.manifest, i));
  }
  assert.equal(w.chokes, 0);
  assert.equal(w.unchokes, 0, 'nothing to say: a client starts unchoked');
  assert.equal(server.stats.rejectedRequests, 0);
  assert.equal(server.stats.unchoked, 1);
});

test('a closed connection hands its slot to a choked one at once (UNCHOKE)', limits, async (t) => {
  const file = await testFile(t);
  const gate = deferred();
  t.after(() => gate.resolve());
  const { server, port } = await serve(t, file, { gate: gate.promise, uploadSlots: 1, ...NO_TIMERS });
  const [a, b, c] = [await connect(t, port), await connect(t, port), await connect(t, port)];
  void a.client.requestChunk(file.manifest.id, 0).catch(() => undefined);
  void b.client.requestChunk(file.manifest.id, 1).catch(() => undefined);
  await waitFor(() => server.stats.unchoked === 2, 'both requests at the server');
  await assert.rejects(c.client.requestChunk(file.manifest.id, 2), isChoked);
  a.client.close();
  // No timer runs in this test: only the closed connection can have freed the slot.
  await waitFor(() => c.unchokes === 1, 'UNCHOKE for the waiting client');
  assert.ok(!c.client.choked);
  gate.resolve();
  assert.deepEqual(
    await c.client.requestChunk(file.manifest.id, 2),
    await readFileChunk(file.path, file.manifest, 2),
  );
});

test(
  'the slots go round: every client that wants chunks is served within a few intervals',
  limits,
  async (t) => {
    const file = await testFile(t);
    const { server, port } = await serve(t, file, {
      uploadSlots: 1,
      unchokeIntervalMs: 200,
      optimisticUnchokeIntervalMs: 500,
      delayMs: 5, // a trickle, not a flood of loopback copies
    });
    const clients: Watched[] = [];
    for (let i = 0; i < 5; i++) clients.push(await connect(t, port));
    let peakUnchoked = 0;
    const sampler = setInterval(() => (peakUnchoked = Math.max(peakUnchoked, server.stats.unchoked)), 5);
    t.after(() => clearInterval(sampler));
    let stopped = false;
    const pulls = clients.map((w) => pull(w, file, () => stopped));
    try {
      await waitFor(() => clients.every((w) => w.chunks > 0), 'a chunk for every client', 40_000);
      // And it goes on: each is served again after waiting.
      const before = clients.map((w) => w.chunks);
      await waitFor(
        () => clients.every((w, i) => w.chunks > before[i]! && w.unchokes > 0),
        'every client served again, after an UNCHOKE',
        40_000,
      );
    } finally {
      stopped = true;
      await Promise.all(pulls);
      clearInterval(sampler);
    }
    assert.ok(peakUnchoked <= 2, `${peakUnchoked} clients unchoked at once`);
    t.diagnostic(`chunks: ${clients.map((w) => w.chunks).join(', ')}`);
  },
);

test('tit-for-tat: the peer that gave us the most keeps its slot', limits, async (t) => {
  const file = await testFile(t);
  let generous = '';
  const { port } = await serve(t, file, {
    uploadSlots: 1,
    unchokeIntervalMs: 200,
    optimisticUnchokeIntervalMs: 500,
    delayMs: 5,
    reciprocation: (peerId) => (peerId === generous ? 10_000_000 : 0),
  });
  const clients: Watched[] = [];
  for (let i = 0; i < 4; i++) clients.push(await connect(t, port));
  const [giver, ...others] = clients as [Watched, ...Watched[]];
  generous = giver.peerId;
  let stopped = false;
  // The giver asks first and takes the regular slot; the others rotate through the optimistic one.
  const pulls = [pull(giver, file, () => stopped)];
  await waitFor(() => giver.chunks > 0, 'the giver served');
  pulls.push(...others.map((w) => pull(w, file, () => stopped)));
  try {
    await waitFor(() => others.every((w) => w.chokes > 0 && w.unchokes > 0), 'the others rotated', 40_000);
    const before = giver.chunks;
    await waitFor(() => giver.chunks > before, 'the giver still served');
  } finally {
    stopped = true;
    await Promise.all(pulls);
  }
  assert.equal(giver.chokes, 0, 'the giver was never choked');
  assert.ok(
    others.every((w) => w.chunks > 0),
    'the optimistic slot served the others',
  );
  t.diagnostic(`giver ${giver.chunks} chunks; others ${others.map((w) => w.chunks).join(', ')}`);
});

test('a client that asks while choked is refused at once, whatever it asks for', limits, async (t) => {
  const file = await testFile(t);
  const gate = deferred();
  t.after(() => gate.resolve());
  const { server, port } = await serve(t, file, { gate: gate.promise, uploadSlots: 0, ...NO_TIMERS });
  const holder = await connect(t, port);
  void holder.client.requestChunk(file.manifest.id, 0).catch(() => undefined);
  await waitFor(() => server.stats.unchoked === 1, 'the request at the server');
  const waiting = await connect(t, port);
  // Many pipelined requests, including one for a chunk the server does not have: all settle now.
  const replies = [0, 1, 2, 99].map((i) =>
    waiting.client.requestChunk(file.manifest.id, i).then(
      () => 'served',
      (err: unknown) => errorCode(err),
    ),
  );
  assert.deepEqual(await Promise.all(replies), ['ERR_CHOKED', 'ERR_CHOKED', 'ERR_CHOKED', 'ERR_CHOKED']);
  assert.equal(waiting.client.inFlight, 0);
});

test(
  'requests for a file the server does not hold are refused at once and take no slot',
  limits,
  async (t) => {
    const file = await testFile(t);
    const gate = deferred();
    t.after(() => gate.resolve());
    const { server, port } = await serve(t, file, { gate: gate.promise, uploadSlots: 1, ...NO_TIMERS });
    // Two clients asking for junk: with the regular and the optimistic slot, they would hold both.
    for (let i = 0; i < 2; i++) {
      const junk = await connect(t, port);
      await assert.rejects(junk.client.requestChunk(randomBytes(32), 0), (err: unknown) => {
        return err instanceof RemoteError && err.code === 'ERR_UNKNOWN_FILE';
      });
      assert.equal(junk.chokes, 0);
    }
    assert.equal(server.stats.unchoked, 0);
    // A client asking for what we hold gets a slot at once.
    const honest = await connect(t, port);
    const chunk = honest.client.requestChunk(file.manifest.id, 0);
    await waitFor(() => server.stats.unchoked === 1, 'the honest request to take a slot');
    gate.resolve();
    assert.equal((await chunk).length, MIN_CHUNK_SIZE);
    assert.equal(honest.chokes, 0);
  },
);
