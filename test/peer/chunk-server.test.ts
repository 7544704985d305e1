import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { createSecureServer } from '../../src/transport/tls.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  MAX_CHUNK_SIZE,
  MAX_PEER_CONTROL_FRAME,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  MIN_CHUNK_SIZE,
  PEER_PROTOCOL,
  PEER_VERSIONS,
} from '../../src/constants.js';
import { RemoteError } from '../../src/errors.js';
import {
  ChunkServer,
  serveFileChunk,
  type ChunkProvider,
  type ChunkServerOptions,
} from '../../src/peer/chunk-server.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { RateLimiter } from '../../src/peer/rate-limiter.js';
import { chunkCount, chunkLength, type Manifest } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { connectTls } from '../helpers/secure.js';
import { frameHeader } from '../../src/wire/framing.js';
import { clientHandshake, serverHandshake } from '../../src/wire/handshake.js';
import { decodePeerMessage, encodePeerMessage, encodePieceHeader } from '../../src/wire/peer-messages.js';
import { deferred, makeFile, spawnSeeder, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

/** A hung exchange fails its test instead of hanging the run. */
const limits = { timeout: 20_000 };

async function testFile(t: TestContext, size = MIN_CHUNK_SIZE * 3 + 1234): Promise<TestFile> {
  return makeFile(await tempDir(t), 'file.bin', size, 21);
}

/** A chunk server for `file` (through serveFileChunk), closed when the test ends. */
async function serve(
  t: TestContext,
  provider: ChunkProvider,
  options: Partial<ChunkServerOptions> = {},
): Promise<{ server: ChunkServer; port: number }> {
  const server = new ChunkServer({ provider, ...options });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

/** A server of `file` whose reads all wait until `release()` (called at the latest when the test ends). */
async function gatedServe(
  t: TestContext,
  file: TestFile,
): Promise<{ server: ChunkServer; port: number; release: () => void }> {
  const gate = deferred();
  t.after(() => gate.resolve());
  const served = await serve(t, async (fileId, index) => {
    await gate.promise;
    return fileProvider(file)(fileId, index);
  });
  return { ...served, release: () => gate.resolve() };
}

function fileProvider(file: TestFile): ChunkProvider {
  return (fileId, index) =>
    serveFileChunk(
      fileId.equals(file.manifest.id) ? { manifest: file.manifest, path: file.path } : undefined,
      index,
    );
}

async function client(
  t: TestContext,
  port: number,
  options: Parameters<typeof PeerClient.connect>[2] = {},
): Promise<PeerClient> {
  const c = await PeerClient.connect('127.0.0.1', port, options);
  t.after(() => c.close());
  return c;
}

/** A raw framed connection to the server, handshaken, for sending what a real client would not. */
async function rawClient(t: TestContext, port: number, handshake = true): Promise<FramedConnection> {
  const conn = new FramedConnection(await connectTls('127.0.0.1', port, 5000), { maxFrame: 1 << 24 });
  t.after(() => conn.destroy());
  if (handshake) await clientHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS);
  return conn;
}

const closed = (conn: FramedConnection): Promise<Error | undefined> =>
  conn.isClosed ? Promise.resolve(undefined) : new Promise((resolve) => conn.once('close', resolve));

test('serves exactly the bytes of every chunk, and REJECT for what it does not have', limits, async (t) => {
  const file = await testFile(t);
  const { server, port } = await serve(t, fileProvider(file));
  const peer = await client(t, port);
  for (let i = 0; i < chunkCount(file.manifest); i++) {
    assert.deepEqual(
      await peer.requestChunk(file.manifest.id, i),
      await readFileChunk(file.path, file.manifest, i),
    );
  }
  await assert.rejects(peer.requestChunk(file.manifest.id, 4), (err: unknown) => {
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'ERR_UNKNOWN_CHUNK');
    return true;
  });
  await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_UNKNOWN_CHUNK' });
  assert.equal(server.uploadedBytes, file.manifest.size);
  assert.equal(server.stats.rejectedRequests, 2);
  assert.equal(peer.inFlight, 0);
  assert.ok(!peer.isClosed);
});

test('a provider error becomes a REJECT with ERR_IO and the connection stays usable', limits, async (t) => {
  const file = await testFile(t);
  const { port } = await serve(t, async (fileId, index) => {
    if (index === 0) throw new Error('disk on fire at /secret/path');
    return fileProvider(file)(fileId, index);
  });
  const peer = await client(t, port);
  await assert.rejects(peer.requestChunk(file.manifest.id, 0), (err: unknown) => {
    assert.ok(err instanceof RemoteError && err.code === 'ERR_IO');
    assert.ok(!err.message.includes('/secret/path'));
    return true;
  });
  assert.equal((await peer.requestChunk(file.manifest.id, 1)).length, MIN_CHUNK_SIZE);
});

test(
  'many pipelined requests on one connection are answered concurrently and correctly',
  limits,
  async (t) => {
    const file = await testFile(t, MIN_CHUNK_SIZE * 8);
    let running = 0;
    let maxRunning = 0;
    const gate = deferred();
    const { port } = await serve(t, async (fileId, index) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gate.promise;
      running--;
      return fileProvider(file)(fileId, index);
    });
    const peer = await client(t, port);
    const indices = Array.from({ length: MAX_SERVED_REQUESTS_PER_CONNECTION }, (_, k) => k % 8);
    const replies = Promise.all(indices.map((i) => peer.requestChunk(file.manifest.id, i)));
    await waitFor(() => running > 1, 'several reads at once');
    assert.equal(peer.inFlight, MAX_SERVED_REQUESTS_PER_CONNECTION);
    gate.resolve();
    const chunks = await replies;
    for (const [k, data] of chunks.entries()) {
      assert.deepEqual(data, await readFileChunk(file.path, file.manifest, indices[k]!), `reply ${k}`);
    }
    assert.ok(maxRunning > 1 && maxRunning <= 8, `reads at once: ${maxRunning}`);
    // One more than the limit at once is refused locally, before it reaches the wire.
    const flood = Array.from({ length: MAX_SERVED_REQUESTS_PER_CONNECTION + 1 }, () =>
      peer.requestChunk(file.manifest.id, 0),
    );
    const results = await Promise.allSettled(flood);
    assert.equal(
      results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ERR_LIMIT')
        .length,
      1,
    );
  },
);

test(
  'a client with more requests in flight than allowed is disconnected; others are not',
  limits,
  async (t) => {
    const file = await testFile(t);
    const { server, port, release } = await gatedServe(t, file);
    const good = await client(t, port);
    const goodReply = good.requestChunk(file.manifest.id, 1);
    const greedy = await rawClient(t, port);
    greedy.onFrame(() => undefined);
    for (let req = 1; req <= MAX_SERVED_REQUESTS_PER_CONNECTION + 1; req++) {
      greedy.send(encodePeerMessage({ type: 'request', req, fileId: file.manifest.id, index: 0 }));
    }
    await closed(greedy);
    release();
    assert.equal((await goodReply).length, MIN_CHUNK_SIZE);
    assert.equal(server.stats.connections, 1);
  },
);

test('garbage and oversized frames close only that connection', limits, async (t) => {
  const file = await testFile(t);
  const { server, port } = await serve(t, fileProvider(file));
  const bystander = await client(t, port);

  const attacks: { name: string; handshake: boolean; send: (conn: FramedConnection) => void }[] = [
    {
      name: 'a 4 GiB length prefix',
      handshake: false,
      send: (c) => c.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])),
    },
    { name: 'a zero-length frame', handshake: false, send: (c) => c.socket.write(Buffer.alloc(4)) },
    {
      name: 'a frame just over the request size',
      handshake: true,
      send: (c) => c.send(Buffer.alloc(64 * 1024)),
    },
    { name: 'noise instead of HELLO', handshake: false, send: (c) => c.send(randomBytes(40)) },
    {
      name: 'an unknown message type',
      handshake: true,
      send: (c) => c.send(Buffer.from([0x7f, 0, 0, 0, 1])),
    },
    {
      name: 'a truncated REQUEST',
      handshake: true,
      send: (c) => c.send(Buffer.from([0x30, 0, 0, 0, 1, 2, 3])),
    },
    {
      name: 'a PIECE from the client',
      handshake: true,
      send: (c) => c.send(encodePieceHeader(1, 0), Buffer.alloc(10)),
    },
    {
      name: 'a duplicate request id',
      handshake: true,
      send: (c) => {
        const request = encodePeerMessage({ type: 'request', req: 9, fileId: file.manifest.id, index: 0 });
        c.send(request);
        c.send(request);
      },
    },
  ];
  for (const attack of attacks) {
    const conn = await rawClient(t, port, attack.handshake);
    conn.onFrame(() => undefined);
    attack.send(conn);
    await closed(conn);
    assert.deepEqual(
      await bystander.requestChunk(file.manifest.id, 0),
      await readFileChunk(file.path, file.manifest, 0),
      `after ${attack.name}`,
    );
  }
  await waitFor(() => server.stats.connections === 1, 'only the bystander left');
});

test('a client speaking another protocol is refused with a reason', limits, async (t) => {
  const { port } = await serve(t, async () => null);
  const conn = await rawClient(t, port, false);
  await assert.rejects(clientHandshake(conn, 'swarmshare-tracker', [1]), (err: unknown) => {
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'ERR_PROTOCOL');
    return true;
  });
  const other = await rawClient(t, port, false);
  await assert.rejects(clientHandshake(other, PEER_PROTOCOL, [999]), { code: 'ERR_UNSUPPORTED_VERSION' });
});

test(
  'a client that asks again the moment each PIECE arrives stays within the limit, at full speed',
  limits,
  async (t) => {
    // The server's write of a PIECE may report done only after the client has it and has asked
    // again (it does over TLS, with the server in another process): an answered request must not
    // count as in flight until then.
    const file = await testFile(t, MIN_CHUNK_SIZE * 8);
    const seeder = await spawnSeeder(t, file, 0);
    const c = await client(t, seeder.port, { maxInFlight: MAX_SERVED_REQUESTS_PER_CONNECTION });
    const total = chunkCount(file.manifest);
    let next = 0;
    const pull = async (): Promise<void> => {
      while (next < 3000) {
        const index = next++ % total;
        const data = await c.requestChunk(file.manifest.id, index);
        assert.equal(data.length, chunkLength(file.manifest, index));
      }
    };
    await Promise.all(Array.from({ length: MAX_SERVED_REQUESTS_PER_CONNECTION }, pull));
    assert.equal(c.isClosed, false);
  },
);

test('a cancelled request is not sent', limits, async (t) => {
  const file = await testFile(t);
  const { server, port, release } = await gatedServe(t, file);
  const peer = await client(t, port);
  const reply = peer.requestChunk(file.manifest.id, 2);
  await waitFor(() => server.stats.connections === 1, 'connection');
  assert.equal(peer.cancel(file.manifest.id, 2), 1);
  await assert.rejects(reply, { code: 'ERR_CANCELLED' });
  release();
  await waitFor(() => server.stats.cancelledRequests === 1, 'the server to drop the cancelled request');
  assert.equal(server.uploadedBytes, 0);
  assert.equal((await peer.requestChunk(file.manifest.id, 0)).length, MIN_CHUNK_SIZE);
  assert.equal(server.uploadedBytes, MIN_CHUNK_SIZE);
});

test('a request without an answer times out; the connection stays usable', limits, async (t) => {
  const file = await testFile(t);
  const { port } = await serve(t, async (fileId, index) => {
    if (index === 0) return new Promise<never>(() => undefined);
    return fileProvider(file)(fileId, index);
  });
  const peer = await client(t, port, { requestTimeoutMs: 150 });
  await assert.rejects(peer.requestChunk(file.manifest.id, 0), { code: 'ERR_TIMEOUT' });
  assert.equal((await peer.requestChunk(file.manifest.id, 1)).length, MIN_CHUNK_SIZE);
});

test('an idle connection is closed by the server', limits, async (t) => {
  const { port } = await serve(t, async () => null, { idleTimeoutMs: 100 });
  const peer = await client(t, port);
  await new Promise((resolve) => peer.once('close', resolve));
  assert.ok(peer.isClosed);
  await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_CLOSED' });
});

test('connections over the limit are turned away', limits, async (t) => {
  const { server, port } = await serve(t, async () => null, { maxConnections: 1 });
  await client(t, port);
  await assert.rejects(PeerClient.connect('127.0.0.1', port), { code: 'ERR_CLOSED' });
  assert.equal(server.stats.connections, 1);
});

test('closing the server fails outstanding requests with ERR_CLOSED', limits, async (t) => {
  const { server, port } = await serve(t, () => new Promise<never>(() => undefined));
  const peer = await client(t, port);
  const reply = peer.requestChunk(randomBytes(32), 0);
  await waitFor(() => server.stats.connections === 1, 'connection');
  await server.close();
  await assert.rejects(reply, { code: 'ERR_CLOSED' });
  assert.ok(peer.isClosed);
});

test('an unreachable peer is ERR_UNREACHABLE', limits, async () => {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  await assert.rejects(PeerClient.connect('127.0.0.1', port), { code: 'ERR_UNREACHABLE' });
});

// ---- The client against a misbehaving server ----------------------------------------------------

type Answer = (conn: FramedConnection, req: number, index: number) => void;

/** A fake chunk server that handshakes properly, then answers each REQUEST with `answer`. */
async function fakeServer(t: TestContext, answer: Answer): Promise<number> {
  const conns = new Set<FramedConnection>();
  const credentials = await ephemeralCredentials();
  const listener = createSecureServer({ credentials, handshakeTimeoutMs: 5000 }, (socket, remotePeerId) => {
    const conn = new FramedConnection(socket, { maxFrame: 1024, remotePeerId });
    conns.add(conn);
    void serverHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS).then(() =>
      conn.onFrame((body) => {
        const msg = decodePeerMessage(body);
        if (msg.type === 'request') answer(conn, msg.req, msg.index);
      }),
    );
  });
  t.after(() => {
    for (const conn of conns) conn.destroy();
    listener.close();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return (listener.address() as net.AddressInfo).port;
}

test(
  'a PIECE with the wrong chunk index is a protocol error that closes the connection',
  limits,
  async (t) => {
    const port = await fakeServer(t, (conn, req, index) =>
      conn.send(encodePieceHeader(req, index + 1), Buffer.alloc(8)),
    );
    const peer = await client(t, port);
    await assert.rejects(peer.requestChunk(randomBytes(32), 3), { code: 'ERR_PROTOCOL' });
    assert.ok(peer.isClosed);
  },
);

test('an unsolicited PIECE is a protocol error that closes the connection', limits, async (t) => {
  const port = await fakeServer(t, (conn, req, index) => {
    conn.send(encodePieceHeader(req + 1000, index), Buffer.alloc(8));
  });
  const peer = await client(t, port);
  await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_PROTOCOL' });
  assert.ok(peer.isClosed);
});

test('a late PIECE for a request that timed out is ignored', limits, async (t) => {
  let first: { conn: FramedConnection; req: number } | null = null;
  const port = await fakeServer(t, (conn, req, index) => {
    if (!first)
      first = { conn, req }; // answered later, after the client gave up on it
    else conn.send(encodePieceHeader(req, index), Buffer.from([index]));
  });
  const peer = await client(t, port, { requestTimeoutMs: 100 });
  await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_TIMEOUT' });
  const late = first as { conn: FramedConnection; req: number } | null;
  assert.ok(late);
  late.conn.send(encodePieceHeader(late.req, 0), Buffer.from([0]));
  assert.deepEqual(await peer.requestChunk(randomBytes(32), 5), Buffer.from([5]));
  assert.ok(!peer.isClosed);
});

test('a PIECE larger than the expected chunk size closes the connection', limits, async (t) => {
  const port = await fakeServer(t, (conn, req, index) =>
    conn.send(encodePieceHeader(req, index), Buffer.alloc(MIN_CHUNK_SIZE * 2)),
  );
  const peer = await client(t, port, { maxChunkSize: MIN_CHUNK_SIZE });
  await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_PROTOCOL' });
  assert.ok(peer.isClosed);
});

test(
  'a PIECE larger than both the chunk size and a control frame is refused before it is buffered',
  limits,
  async (t) => {
    // Only the frame header is sent: the client refuses on the announced length alone.
    const port = await fakeServer(t, (conn) => conn.socket.write(frameHeader(MAX_PEER_CONTROL_FRAME + 1)));
    const peer = await client(t, port, { maxChunkSize: MIN_CHUNK_SIZE });
    await assert.rejects(peer.requestChunk(randomBytes(32), 0), { code: 'ERR_PROTOCOL' });
    assert.ok(peer.isClosed);
  },
);

// ---- Clients that do not read, and the upload limit ---------------------------------------------

/**
 * A file of `chunks` chunks of the largest size, served from one buffer (the same bytes for every
 * chunk), and a provider that counts its reads. A socket whose peer does not read takes a few MiB
 * into the kernel's buffers, never a whole chunk of this size: every chunk read for such a client
 * stays in the server's memory.
 */
function bigFile(chunks: number) {
  const chunkSize = MAX_CHUNK_SIZE;
  const manifest: Manifest = {
    id: randomBytes(32),
    name: 'big.bin',
    size: chunks * chunkSize,
    chunkSize,
    hashes: Buffer.alloc(32 * chunks),
  };
  const chunk = randomBytes(chunkSize);
  const counter = { reads: 0 };
  const provider: ChunkProvider = async (fileId, index) => {
    counter.reads++;
    return fileId.equals(manifest.id) && index < chunks ? chunk : null;
  };
  const manifestOf = (fileId: Buffer): Manifest | null => (fileId.equals(manifest.id) ? manifest : null);
  return { manifest, chunk, counter, provider, manifestOf };
}

/** A raw client, handshaken, that pipelines a REQUEST for each chunk of `fileId`, then never reads. */
async function stuckClient(t: TestContext, port: number, fileId: Buffer, chunks: number) {
  const conn = await rawClient(t, port);
  conn.onFrame(() => undefined);
  await delay(0); // whatever setting a handler sets in motion (a resume) is over
  conn.socket.pause();
  for (let index = 0; index < chunks; index++) {
    conn.send(encodePeerMessage({ type: 'request', req: index + 1, fileId, index }));
  }
  return conn;
}

test(
  'clients that ask for chunks and never read them hold at most the server budget; others are still served',
  limits,
  async (t) => {
    const chunks = 8;
    const big = bigFile(chunks);
    const budgetChunks = 64;
    const { server, port } = await serve(t, big.provider, {
      manifest: big.manifestOf,
      maxUnflushedBytes: budgetChunks * MAX_CHUNK_SIZE,
      // The budget must hold whatever the upload slots: here every connection is served at once.
      uploadSlots: Infinity,
    });
    const stuck = 20;
    for (let c = 0; c < stuck; c++) await stuckClient(t, port, big.manifest.id, chunks);
    // Each is sent its first chunk at least: a connection that holds none may use the whole budget.
    await waitFor(() => big.counter.reads >= stuck, 'a chunk read for every client');
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, server.stats.unflushedBytes)), 1);
    t.after(() => clearInterval(sampler));

    const honest = await client(t, port);
    for (let index = 0; index < 3; index++) {
      assert.ok((await honest.requestChunk(big.manifest.id, index)).equals(big.chunk), `chunk ${index}`);
    }
    // Time for any read the server would still start for the clients that do not read.
    await delay(200);
    clearInterval(sampler);
    const stuckReads = big.counter.reads - 3;
    // 4 each (SERVED_READS_PER_CONNECTION) would be 80: over the budget of 64.
    assert.ok(stuckReads <= budgetChunks, `${stuckReads} chunks read for clients that never read`);
    const { unflushedBytes, unflushedChunks } = server.stats;
    assert.ok(peak <= budgetChunks * MAX_CHUNK_SIZE, `peak ${peak} bytes unflushed`);
    assert.equal(unflushedChunks, stuckReads, 'every chunk read for them is held until it is flushed');
    assert.equal(unflushedBytes, stuckReads * MAX_CHUNK_SIZE);

    // Their chunks are let go with their connections.
    await server.close();
    await waitFor(() => server.stats.unflushedBytes === 0, 'the budget given back');
    assert.equal(server.stats.unflushedChunks, 0);
  },
);

test(
  'a client that takes none of its chunks is closed after the idle timeout, even if it keeps sending',
  limits,
  async (t) => {
    const big = bigFile(2);
    const { server, port } = await serve(t, big.provider, { manifest: big.manifestOf, idleTimeoutMs: 500 });
    const conn = await stuckClient(t, port, big.manifest.id, 1);
    // Frames the server accepts and ignores (CANCEL of no request) keep the connection from being idle.
    const chatter = setInterval(() => conn.send(encodePeerMessage({ type: 'cancel', req: 999 })), 100);
    t.after(() => clearInterval(chatter));
    await waitFor(() => big.counter.reads === 1, 'the chunk read');
    const outcome = await Promise.race([closed(conn).then(() => 'closed'), delay(10_000).then(() => 'open')]);
    clearInterval(chatter);
    assert.equal(outcome, 'closed');
    await waitFor(() => server.stats.unflushedBytes === 0, 'the budget given back');
    assert.equal(server.stats.connections, 0);
  },
);

for (const lengthKnown of [true, false]) {
  test(
    `upload tokens taken for chunks nobody will receive go to the next request (length ${lengthKnown ? 'known' : 'unknown'} before the read)`,
    limits,
    async (t) => {
      const file = await testFile(t, MIN_CHUNK_SIZE * 4);
      // 16 KiB/s: one chunk is 16 s of the budget.
      const limiter = new RateLimiter(16 * 1024);
      t.after(() => limiter.close());
      const gate = deferred();
      t.after(() => gate.resolve());
      let reads = 0;
      const { server, port } = await serve(
        t,
        async (fileId, index) => {
          reads++;
          await gate.promise;
          return fileProvider(file)(fileId, index);
        },
        {
          uploadLimiter: limiter,
          ...(lengthKnown
            ? { manifest: (id: Buffer) => (id.equals(file.manifest.id) ? file.manifest : null) }
            : {}),
        },
      );
      // Four requests: the first gets what tokens there are (and more, as a debt), the others wait for
      // their turn (or are read first when the length is unknown); all are cancelled meanwhile.
      const greedy = await client(t, port);
      for (let index = 0; index < 4; index++) {
        greedy.requestChunk(file.manifest.id, index).catch(() => undefined);
      }
      await waitFor(() => reads >= 1, 'the first read');
      for (let index = 0; index < 4; index++) assert.equal(greedy.cancel(file.manifest.id, index), 1);
      // Answered after the CANCELs: the server has seen them.
      await greedy.getManifest(file.manifest.id).catch(() => undefined);
      gate.resolve();

      // Unrefunded, the cancelled chunks would keep the next request waiting 16 s each, 48 s at least.
      const honest = await client(t, port);
      const reply = honest.requestChunk(file.manifest.id, 1);
      const data = await Promise.race([reply, delay(8_000).then(() => null)]);
      assert.ok(data, 'the request waited for the tokens of chunks that were never sent');
      assert.deepEqual(data, await readFileChunk(file.path, file.manifest, 1));
      await waitFor(() => server.stats.cancelledRequests === 4, 'the cancelled requests dropped');
      assert.equal(server.uploadedBytes, MIN_CHUNK_SIZE);
    },
  );
}
