/**
 * Upload and download limits on real connections, in one process: the shares of connections that
 * compete for one limit, the rate they get together, and request deadlines under a download limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ChunkServer, type ChunkServerOptions } from '../../src/peer/chunk-server.js';
import { Download } from '../../src/peer/download.js';
import { PeerClient, type PeerClientOptions } from '../../src/peer/peer-client.js';
import { RateLimiter } from '../../src/peer/rate-limiter.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkCount, computeFileId, type Manifest } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { makeFile } from '../helpers/peer-fixtures.js';
import { tempDir } from '../helpers/wait.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const limits = { timeout: 60_000 };

/** A made-up file of `chunks` chunks of `chunkSize` bytes, each served as the same bytes. */
function fakeManifest(chunkSize: number, chunks: number): Manifest {
  const hashes = randomBytes(32 * chunks);
  const size = chunkSize * chunks;
  return { id: computeFileId(size, chunkSize, hashes), name: 'fake.bin', size, chunkSize, hashes };
}

/** A chunk server answering every chunk of `manifest` from memory (its content is not checked). */
async function memoryServer(
  t: TestContext,
  manifest: Manifest,
  options: Partial<ChunkServerOptions> = {},
): Promise<number> {
  const data = randomBytes(manifest.chunkSize);
  const server = new ChunkServer({
    provider: async (fileId) => (fileId.equals(manifest.id) ? data : null),
    manifest: (fileId) => (fileId.equals(manifest.id) ? manifest : null),
    ...options,
  });
  t.after(() => server.close());
  return (await server.listen(0, '127.0.0.1')).port;
}

async function connect(t: TestContext, port: number, options: PeerClientOptions = {}): Promise<PeerClient> {
  const client = await PeerClient.connect('127.0.0.1', port, options);
  t.after(() => client.close());
  return client;
}

/** Keeps `inFlight` chunk requests going on `client` until the test ends or the connection closes. */
function pull(t: TestContext, client: PeerClient, manifest: Manifest, inFlight: number): void {
  let stopped = false;
  t.after(() => (stopped = true));
  const total = chunkCount(manifest);
  let next = 0;
  const loop = async (): Promise<void> => {
    while (!stopped && !client.isClosed) {
      const index = next++ % total;
      await client.requestChunk(manifest.id, index).catch(() => undefined);
    }
  };
  for (let i = 0; i < inFlight; i++) void loop();
}

/**
 * The bytes each client received over `seconds`, after `warmupSeconds` (frame bytes, counted as
 * they arrive), and the seconds that actually passed.
 */
async function measure(
  clients: PeerClient[],
  warmupSeconds: number,
  seconds: number,
): Promise<{ bytes: number[]; seconds: number }> {
  await delay(warmupSeconds * 1000);
  const start = performance.now();
  const before = clients.map((c) => c.bytesReceived);
  await delay(seconds * 1000);
  const elapsed = (performance.now() - start) / 1000;
  return { bytes: clients.map((c, i) => c.bytesReceived - before[i]!), seconds: elapsed };
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  const off = Math.abs(actual - expected) / expected;
  assert.ok(
    off <= tolerance,
    `${what}: ${Math.round(actual)}, expected ${Math.round(expected)} ± ${tolerance * 100} %`,
  );
}

function kib(bytes: number): string {
  return `${Math.round(bytes / KiB)} KiB`;
}

test(
  'two downloaders pulling from one upload-limited seeder get equal shares of its limit',
  limits,
  async (t) => {
    const rate = 2 * MiB;
    const limiter = new RateLimiter(rate);
    t.after(() => limiter.close());
    const manifest = fakeManifest(256 * KiB, 64);
    const port = await memoryServer(t, manifest, { uploadLimiter: limiter });
    // Pipelines of different depths: the connections take turns, however many requests each has queued.
    const deep = await connect(t, port);
    const shallow = await connect(t, port);
    pull(t, deep, manifest, 16);
    pull(t, shallow, manifest, 2);
    const { bytes, seconds } = await measure([deep, shallow], 1, 5);
    t.diagnostic(`in ${seconds.toFixed(2)} s: ${bytes.map(kib).join(' and ')}`);
    assertClose(bytes[0]! + bytes[1]!, rate * seconds, 0.1, 'bytes sent in all');
    assertClose(bytes[0]!, bytes[1]!, 0.25, 'the deep pipeline against the shallow one');
  },
);

test('two sources feeding one download-limited peer get equal shares of its limit', limits, async (t) => {
  const rate = 2 * MiB;
  const limiter = new RateLimiter(rate);
  t.after(() => limiter.close());
  const manifest = fakeManifest(256 * KiB, 64);
  const clients = [
    await connect(t, await memoryServer(t, manifest), { receiveLimiter: limiter }),
    await connect(t, await memoryServer(t, manifest), { receiveLimiter: limiter }),
  ];
  pull(t, clients[0]!, manifest, 4);
  pull(t, clients[1]!, manifest, 4);
  const { bytes, seconds } = await measure(clients, 1, 5);
  t.diagnostic(`in ${seconds.toFixed(2)} s: ${bytes.map(kib).join(' and ')}`);
  assertClose(bytes[0]! + bytes[1]!, rate * seconds, 0.1, 'bytes received in all');
  assertClose(bytes[0]!, bytes[1]!, 0.25, 'one source against the other');
});

test(
  'a download limit holds the sender back: time throttled does not count against request deadlines',
  limits,
  async (t) => {
    const limiter = new RateLimiter(2 * MiB);
    t.after(() => limiter.close());
    // Six chunks of 1 MiB asked for at once: the last arrives after three seconds at 2 MiB/s, three
    // times its deadline, but only because we held the server back.
    const manifest = fakeManifest(MiB, 6);
    const port = await memoryServer(t, manifest);
    const client = await connect(t, port, { receiveLimiter: limiter, requestTimeoutMs: 1000 });
    const started = performance.now();
    const chunks = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => client.requestChunk(manifest.id, i)));
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`6 MiB in ${seconds.toFixed(2)} s`);
    assert.equal(chunks.length, 6);
    for (const chunk of chunks) assert.equal(chunk.length, MiB);
    assert.ok(seconds >= 2.5, `6 MiB at 2 MiB/s took ${seconds} s`);

    // A server that never answers is still given up on at its deadline: nothing held it back.
    const stalled = new ChunkServer({ provider: () => new Promise<never>(() => undefined) });
    t.after(() => stalled.close());
    const stalledClient = await connect(t, (await stalled.listen(0, '127.0.0.1')).port, {
      receiveLimiter: limiter,
      requestTimeoutMs: 1000,
    });
    const asked = performance.now();
    await assert.rejects(stalledClient.requestChunk(manifest.id, 0), { code: 'ERR_TIMEOUT' });
    const waited = performance.now() - asked;
    assert.ok(waited >= 950 && waited < 3000, `timed out after ${waited} ms`);
  },
);

test(
  'a download at a low limit with large chunks and several sources completes, at the limit',
  limits,
  async (t) => {
    // 256 KiB/s over chunks of 1 MiB from two sources, four requests in flight at each: requests
    // wait up to 32 s in throttled sockets, against a deadline of 4 s here (20 s by default).
    const rate = 256 * KiB;
    const limiter = new RateLimiter(rate);
    t.after(() => limiter.close());
    const dir = await tempDir(t);
    const file = await makeFile(dir, 'big.bin', 2 * MiB + 512 * KiB, 5);
    // The same bytes with chunks of 1 MiB (the chunk size of files over 2 GiB).
    const manifest = await hashFile(file.path, 'big.bin', { chunkSize: MiB });
    const ports = [await fileServer(t, file.path, manifest), await fileServer(t, file.path, manifest)];
    const download = new Download({
      manifest,
      dir: await tempDir(t),
      stateDir: await tempDir(t),
      findSources: async () =>
        ports.map((port, i) => ({
          peerId: `source-${i}`,
          name: `source-${i}`,
          host: '127.0.0.1',
          port,
          chunks: Bitfield.full(chunkCount(manifest)),
        })),
      chunkTimeoutMs: 4000,
      ...{ receiveLimiter: limiter },
    });
    t.after(() => download.cancel());
    const lost: string[] = [];
    download.on('source-lost', (peer, reason) => lost.push(`${peer}: ${reason}`));
    const started = performance.now();
    const result = await download.start();
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${kib(result.size)} in ${seconds.toFixed(2)} s at ${kib(rate)}/s`);
    assert.deepEqual(lost, [], 'no source was given up on');
    // The first quarter second of the bucket aside, the limit holds.
    const expected = (manifest.size - limiter.burstBytes) / rate;
    assert.ok(seconds >= expected * 0.9, `${kib(manifest.size)} at ${kib(rate)}/s took ${seconds} s`);
  },
);

/** The manifest of a file cut into chunks of `chunkSize` (swarmshare picks 256 KiB for small files). */
/** An unlimited chunk server of a file on disk, described by `manifest`. */
async function fileServer(t: TestContext, filePath: string, manifest: Manifest): Promise<number> {
  const server = new ChunkServer({
    provider: async (fileId, index) =>
      fileId.equals(manifest.id) && index < chunkCount(manifest)
        ? readFileChunk(filePath, manifest, index)
        : null,
    manifest: (fileId) => (fileId.equals(manifest.id) ? manifest : null),
  });
  t.after(() => server.close());
  return (await server.listen(0, '127.0.0.1')).port;
}
