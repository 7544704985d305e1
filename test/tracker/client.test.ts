import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { createSecureServer } from '../../src/transport/tls.js';
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { MAX_CHUNKS, MAX_TRACKER_FRAME, TRACKER_PROTOCOL } from '../../src/constants.js';
import { RemoteError } from '../../src/errors.js';
import { TrackerClient } from '../../src/tracker/client.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { serverHandshake } from '../../src/wire/handshake.js';
import {
  decodeTrackerMessage,
  encodeTrackerMessage,
  type TrackerMessage,
  type TrackerReply,
} from '../../src/wire/tracker-messages.js';
import { credentialsOfLabel } from '../helpers/secure.js';
import { waitFor } from '../helpers/wait.js';
import {
  HOST,
  connectClient,
  fakeManifest,
  gatedListingStore,
  idOf,
  registeredClient,
  startTracker,
} from './fixtures.js';

const T = { timeout: 15_000 };

/** A port with nothing listening on it (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A fake tracker: completes the handshake with `versions`, then answers each request with what
 * `answer` returns (nothing when it returns null).
 */
async function fakeTracker(
  t: TestContext,
  versions: number[],
  answer: (msg: TrackerMessage) => TrackerReply | Buffer | null,
): Promise<number> {
  const conns = new Set<FramedConnection>();
  const credentials = await ephemeralCredentials();
  const server = createSecureServer({ credentials, handshakeTimeoutMs: 5000 }, (socket, remotePeerId) => {
    const conn = new FramedConnection(socket, { maxFrame: MAX_TRACKER_FRAME, remotePeerId });
    conns.add(conn);
    serverHandshake(conn, TRACKER_PROTOCOL, versions).then(
      () =>
        conn.onFrame((body) => {
          const reply = answer(decodeTrackerMessage(body));
          if (reply) conn.send(Buffer.isBuffer(reply) ? reply : encodeTrackerMessage(reply));
        }),
      () => {},
    );
  });
  t.after(() => {
    for (const conn of conns) conn.destroy();
    server.close();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('TrackerClient.connect', () => {
  test('an unreachable tracker fails fast with ERR_UNREACHABLE naming host:port', T, async () => {
    const port = await freePort();
    const started = Date.now();
    await assert.rejects(TrackerClient.connect({ host: HOST, port }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_UNREACHABLE');
      assert.ok(err.message.includes(`${HOST}:${port}`), err.message);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });

  test('a tracker that refuses our version surfaces as a RemoteError with its code', T, async (t) => {
    const port = await fakeTracker(t, [2, 3], () => null);
    await assert.rejects(
      TrackerClient.connect({ host: HOST, port }),
      (err: unknown) => err instanceof RemoteError && err.code === 'ERR_UNSUPPORTED_VERSION',
    );
  });

  test('something that accepts but never answers the handshake is ERR_UNREACHABLE', T, async (t) => {
    const silent = net.createServer((socket) => socket.on('error', () => {}));
    const sockets: net.Socket[] = [];
    silent.on('connection', (socket) => sockets.push(socket));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    await new Promise<void>((resolve) => silent.listen(0, HOST, resolve));
    const { port } = silent.address() as net.AddressInfo;
    await assert.rejects(TrackerClient.connect({ host: HOST, port, connectTimeoutMs: 200 }), {
      code: 'ERR_UNREACHABLE',
    });
  });
});

describe('TrackerClient requests', () => {
  test('a one-shot client lists without registering', T, async (t) => {
    const { port } = await startTracker(t);
    const sharer = await registeredClient(t, port, 'sharer');
    await sharer.announce([fakeManifest('song.mp3', 'song')]);
    const client = await TrackerClient.connect({ host: HOST, port });
    const { total, files } = await client.list('SONG');
    client.close();
    assert.equal(total, 1);
    assert.equal(files[0]!.name, 'song.mp3');
  });

  test('overlapping requests, more than may be in flight, all get their own replies', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const manifests = Array.from({ length: 50 }, (_, i) => fakeManifest(`file-${i}`, `c${i}`, 1 + (i % 4)));
    await client.announce(manifests);
    const located = await Promise.all(
      [...manifests, ...manifests, ...manifests].map((m) => client.locate(m.id)),
    );
    located.forEach(({ manifest }, i) => assert.deepEqual(manifest.id, manifests[i % 50]!.id));
    const lists = await Promise.all(manifests.map((_, i) => client.list(`file-${i}`, 1)));
    lists.forEach((list, i) => assert.equal(list.files[0]!.name.startsWith(`file-${i}`), true));
  });

  test('announce splits large batches by count and by bytes, keeping result order', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const many = Array.from({ length: 600 }, (_, i) => fakeManifest(`m${i}`, `m${i}`, 1));
    const results = await client.announce(many);
    assert.deepEqual(
      results.map((r) => r.fileId),
      many.map((m) => m.id),
    );
    // Three manifests of 2 MiB of hashes each: 6 MiB, more than one frame may carry.
    const huge = [1, 2, 3].map((i) => fakeManifest(`huge${i}`, `huge${i}`, MAX_CHUNKS));
    const tooLong = fakeManifest('x'.repeat(300), 'long');
    const hugeResults = await client.announce([huge[0]!, tooLong, huge[1]!, huge[2]!]);
    assert.deepEqual(
      hugeResults.map((r) => r.code),
      ['', 'ERR_BAD_NAME', '', ''],
    );
    assert.equal((await client.list('', 0)).total, 603);
  });

  test('have splits long index lists', T, async (t) => {
    const { port } = await startTracker(t);
    const seeder = await registeredClient(t, port, 'seeder');
    const leecher = await registeredClient(t, port, 'leecher');
    const m = fakeManifest('f', 'f', 10_000);
    await seeder.announce([m]);
    await leecher.have(
      m.id,
      Array.from({ length: 9_999 }, (_, i) => i),
    );
    const holder = (await leecher.locate(m.id)).holders.find((h) => h.name === 'leecher')!;
    assert.equal(holder.chunks.setCount, 9_999);
    assert.equal(holder.chunks.has(9_999), false);
  });

  test('bad arguments are refused locally', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await connectClient(t, port, { credentials: await credentialsOfLabel('a') });
    for (const info of [
      { peerId: Buffer.alloc(31), name: 'a', port: 1 },
      { peerId: idOf('a'), name: 'x'.repeat(65), port: 1 },
      { peerId: idOf('a'), name: 'a', port: 0 },
      { peerId: idOf('a'), name: 'a', port: 70000 },
    ]) {
      await assert.rejects(client.register(info), { code: 'ERR_INVALID_ARGUMENT' });
    }
    await assert.rejects(client.list('q'.repeat(256)), { code: 'ERR_INVALID_ARGUMENT' });
    await assert.rejects(client.locate(Buffer.alloc(3)), { code: 'ERR_INVALID_ARGUMENT' });
    // None of that disturbed the session.
    await client.register({ name: 'a', port: 1 });
  });
});

describe('TrackerClient closing', () => {
  test('close() fails pending requests with ERR_CLOSED, once, and is idempotent', T, async (t) => {
    const { store } = gatedListingStore(t);
    const { port } = await startTracker(t, { store });
    const client = await connectClient(t, port);
    let closes = 0;
    client.on('close', () => closes++);
    const pending = client.list();
    client.close();
    client.close();
    await assert.rejects(pending, { code: 'ERR_CLOSED' });
    await assert.rejects(client.ping(), { code: 'ERR_CLOSED' });
    assert.equal(client.isClosed, true);
    assert.equal(closes, 1);
  });

  test('a request without a reply in time fails with ERR_TIMEOUT and closes the session', T, async (t) => {
    const { store } = gatedListingStore(t);
    const { port } = await startTracker(t, { store });
    const client = await connectClient(t, port, { requestTimeoutMs: 150 });
    const closed = new Promise((resolve) => client.once('close', resolve));
    const [listing, ping] = [client.list(), client.ping()];
    await assert.rejects(listing, { code: 'ERR_TIMEOUT' });
    await assert.rejects(ping, { code: 'ERR_CLOSED' });
    await closed;
  });

  test('a failed heartbeat closes the client', T, async (t) => {
    const port = await fakeTracker(t, [1], () => null);
    const client = await TrackerClient.connect({ host: HOST, port, requestTimeoutMs: 100 });
    t.after(() => client.close());
    const closed = new Promise((resolve) => client.once('close', resolve));
    client.startHeartbeat(20);
    await closed;
    assert.equal(client.isClosed, true);
  });

  test('the tracker going away closes the client', T, async (t) => {
    const { server, port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    await server.close();
    await waitFor(() => client.isClosed, 'the client to notice');
    await assert.rejects(client.leave(), { code: 'ERR_CLOSED' });
  });
});

describe('TrackerClient distrusts the tracker', () => {
  const m = fakeManifest('f', 'f', 2);

  test('a located manifest for another id is refused', T, async (t) => {
    const other = fakeManifest('other', 'other', 2);
    const port = await fakeTracker(t, [1], (msg) =>
      msg.type === 'locate' ? { type: 'location', req: msg.req, manifest: other, holders: [] } : null,
    );
    const client = await connectClient(t, port);
    await assert.rejects(client.locate(m.id), { code: 'ERR_BAD_MANIFEST' });
  });

  test('a located manifest whose hashes do not prove its id is refused', T, async (t) => {
    const forged = { ...m, hashes: Buffer.from(m.hashes) };
    forged.hashes[0]! ^= 1;
    const port = await fakeTracker(t, [1], (msg) =>
      msg.type === 'locate' ? { type: 'location', req: msg.req, manifest: forged, holders: [] } : null,
    );
    const client = await connectClient(t, port);
    await assert.rejects(client.locate(m.id), { code: 'ERR_BAD_MANIFEST' });
  });

  test('a reply of the wrong type, or to no request, is a protocol violation', T, async (t) => {
    const port = await fakeTracker(t, [1], (msg) =>
      msg.type === 'ping' ? { type: 'files', req: msg.req, total: 0, files: [] } : { type: 'ok', req: 12345 },
    );
    const wrongType = await connectClient(t, port);
    await assert.rejects(wrongType.ping(), { code: 'ERR_PROTOCOL' });
    assert.equal(wrongType.isClosed, true);
    const unknownId = await connectClient(t, port);
    await assert.rejects(unknownId.list(), { code: 'ERR_CLOSED' });
    assert.equal(unknownId.isClosed, true);
  });

  test('an ERROR reply with an unknown code is still a RemoteError', T, async (t) => {
    const port = await fakeTracker(t, [1], (msg) => ({
      type: 'error',
      req: msg.req,
      code: 'WHAT',
      message: 'x',
    }));
    const client = await connectClient(t, port);
    await assert.rejects(
      client.ping(),
      (err: unknown) => err instanceof RemoteError && err.code === 'ERR_PROTOCOL',
    );
  });
});
