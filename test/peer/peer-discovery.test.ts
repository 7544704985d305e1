/**
 * The discovery messages between a ChunkServer and a PeerClient: INFO both ways, OFFERS (on
 * connect, and replaced after broadcastOffers), HAVE, PEERS, GET_MANIFEST; and bad input either way.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import type { Endpoint } from '../../src/address.js';
import {
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_OFFERS,
  MAX_PEER_FRAME,
  MIN_CHUNK_SIZE,
  PEER_PROTOCOL,
  PEER_VERSIONS,
} from '../../src/constants.js';
import { RemoteError } from '../../src/errors.js';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import { PeerClient, type PeerClientOptions } from '../../src/peer/peer-client.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { Writer } from '../../src/wire/codec.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { connectAs } from '../helpers/secure.js';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { clientHandshake } from '../../src/wire/handshake.js';
import { PeerType, decodePeerMessage, encodePeerMessage, type Offer } from '../../src/wire/peer-messages.js';
import { fakeManifest, offerOf, rawPeer, startTestPeer, type TestPeer } from '../discovery/mesh-fixtures.js';
import { waitFor } from '../helpers/wait.js';

const limits = { timeout: 20_000 };

/** A PeerClient to `peer` that records every discovery event in order; closed when the test ends. */
async function watch(t: TestContext, endpoint: Endpoint, options: PeerClientOptions = {}) {
  const client = await PeerClient.connect(endpoint.host, endpoint.port, options);
  t.after(() => client.close());
  const events: string[] = [];
  const offers: Offer[][] = [];
  const haves: [string, number][] = [];
  const peers: Endpoint[][] = [];
  client.on('info', () => events.push('info'));
  client.on('offers', (o) => {
    events.push('offers');
    offers.push(o);
  });
  client.on('have', (fileId, index) => {
    events.push('have');
    haves.push([fileId.toString('hex'), index]);
  });
  client.on('peers', (p) => {
    events.push('peers');
    peers.push(p);
  });
  return { client, events, offers, haves, peers };
}

const ids = (offers: Offer[]): string[] => offers.map((o) => o.fileId.toString('hex')).sort();

test('INFO goes both ways: each side learns who the other is and where it serves', limits, async (t) => {
  const peer = await startTestPeer(t, { name: 'server' });
  const credentials = await ephemeralCredentials();
  const clientId = credentials.peerId;
  const { client } = await watch(t, peer.endpoint, {
    credentials,
    self: { name: 'client', port: 4242 },
  });
  const info = await waitFor(() => client.peerInfo, 'the server INFO');
  assert.deepEqual(info, { peerId: peer.peerId, name: 'server', port: peer.endpoint.port });
  await waitFor(() => peer.introduced.length === 1, 'the client INFO');
  assert.deepEqual(peer.introduced[0], { peerId: clientId, name: 'client', host: '127.0.0.1', port: 4242 });

  // A client that does not serve (port 0), and the server itself, are not passed on as peers. The
  // server answers a client's INFO after deciding, so its own INFO arriving is the barrier.
  const oneShot = await watch(t, peer.endpoint);
  const itself = await watch(t, peer.endpoint, {
    credentials: peer.credentials,
    self: { name: 'me', port: 5000 },
  });
  await waitFor(() => oneShot.client.peerInfo && itself.client.peerInfo, 'both answered');
  assert.equal(peer.introduced.length, 1);
});

test(
  'OFFERS on connect, then fresh OFFERS replacing them after a burst of broadcastOffers',
  limits,
  async (t) => {
    let provided = 0;
    let peer: TestPeer | null = null;
    const [a, b] = [fakeManifest('a.bin', 2), fakeManifest('b.bin', 3)];
    peer = await startTestPeer(t, {
      files: [{ manifest: a }, { manifest: b, chunks: new Bitfield(3) }],
      extra: {
        offers: () => {
          provided++;
          return [...peer!.holdings.values()].map(offerOf);
        },
      },
    });
    const { offers, events } = await watch(t, peer.endpoint);
    await waitFor(() => offers.length === 1, 'the first OFFERS');
    assert.deepEqual(events.slice(0, 3), ['info', 'offers', 'peers']);
    assert.deepEqual(ids(offers[0]!), [a.id.toString('hex'), b.id.toString('hex')].sort());
    const partial = offers[0]!.find((o) => o.name === 'b.bin')!;
    assert.equal(partial.chunks.size, 3);
    assert.equal(partial.chunks.setCount, 0);
    assert.equal(offers[0]!.find((o) => o.name === 'a.bin')!.chunks.complete, true);

    const c = fakeManifest('c.bin', 1);
    peer.holdings.delete(a.id.toString('hex'));
    peer.holdings.set(c.id.toString('hex'), { manifest: c, chunks: Bitfield.full(1) });
    for (let i = 0; i < 5; i++) peer.server.broadcastOffers();
    await waitFor(() => offers.length === 2, 'the fresh OFFERS');
    assert.deepEqual(ids(offers[1]!), [b.id.toString('hex'), c.id.toString('hex')].sort());
    // Once at the greeting, once for the whole burst.
    assert.equal(provided, 2);
  },
);

test('HAVE reaches every connected client', limits, async (t) => {
  const file = fakeManifest('partial.bin', 4);
  const peer = await startTestPeer(t, { files: [{ manifest: file, chunks: new Bitfield(4) }] });
  const first = await watch(t, peer.endpoint);
  const second = await watch(t, peer.endpoint);
  await waitFor(() => first.offers.length && second.offers.length, 'both greeted');
  peer.holdings.get(file.id.toString('hex'))!.chunks.set(2);
  peer.server.broadcastHave(file.id, 2);
  await waitFor(() => first.haves.length && second.haves.length, 'HAVE at both clients');
  assert.deepEqual(first.haves, [[file.id.toString('hex'), 2]]);
  assert.deepEqual(second.haves, [[file.id.toString('hex'), 2]]);
});

test(
  'PEERS follows OFFERS, comes again every pexIntervalMs, and never names the client itself',
  limits,
  async (t) => {
    const others = [
      { host: '127.0.0.1', port: 7001 },
      { host: '10.1.2.3', port: 7002 },
    ];
    const clientPort = 7003;
    const peer = await startTestPeer(t, {
      known: [
        ...others,
        { host: '127.0.0.1', port: clientPort },
        { host: '', port: 1 },
        { host: 'x', port: 0 },
      ],
      extra: { pexIntervalMs: 50 },
    });
    const { peers, events } = await watch(t, peer.endpoint, {
      self: { name: 'c', port: clientPort },
    });
    await waitFor(() => peers.length >= 3, 'PEERS three times');
    assert.deepEqual(events.slice(0, 3), ['info', 'offers', 'peers']);
    for (const list of peers) assert.deepEqual(list, others);
  },
);

test('PEERS names at most 50 peers, chosen among all it knows', limits, async (t) => {
  const known = Array.from({ length: 120 }, (_, i) => ({ host: '10.0.0.1', port: 1000 + i }));
  const peer = await startTestPeer(t, { known });
  const { peers } = await watch(t, peer.endpoint);
  await waitFor(() => peers.length === 1, 'PEERS');
  assert.equal(peers[0]!.length, 50);
  for (const p of peers[0]!) assert.ok(known.some((k) => k.port === p.port));
});

test('GET_MANIFEST: the manifest of a held file, ERR_UNKNOWN_FILE otherwise', limits, async (t) => {
  const file = fakeManifest('m.bin', 3);
  const peer = await startTestPeer(t, { files: [{ manifest: file }] });
  const { client } = await watch(t, peer.endpoint);
  assert.deepEqual(await client.getManifest(file.id), file);
  await assert.rejects(client.getManifest(randomBytes(32)), (err: unknown) => {
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'ERR_UNKNOWN_FILE');
    return true;
  });
  // A server without a manifest provider knows no manifest either.
  const bare = new ChunkServer({ provider: async () => null });
  t.after(() => bare.close());
  const { port } = await bare.listen(0, '127.0.0.1');
  const bareClient = await watch(t, { host: '127.0.0.1', port });
  await assert.rejects(bareClient.client.getManifest(file.id), { code: 'ERR_UNKNOWN_FILE' });
  assert.ok(!client.isClosed && !bareClient.client.isClosed);
});

test('GET_MANIFEST of the largest manifest, through a client expecting small chunks', limits, async (t) => {
  const file = fakeManifest('huge.bin', MAX_CHUNKS);
  const peer = await startTestPeer(t, { files: [{ manifest: file }] });
  const { client } = await watch(t, peer.endpoint, { maxChunkSize: MIN_CHUNK_SIZE });
  assert.deepEqual(await client.getManifest(file.id), file);
});

test(
  'a manifest of another file, or whose hashes do not match its id, is ERR_BAD_MANIFEST; its name is taken as given',
  limits,
  async (t) => {
    const asked = fakeManifest('asked.bin', 2);
    const other = fakeManifest('other.bin', 2);
    const liar = await startTestPeer(t, { files: [{ manifest: asked }], lie: other });
    const { client } = await watch(t, liar.endpoint);
    await assert.rejects(client.getManifest(asked.id), { code: 'ERR_BAD_MANIFEST' });

    const forged = { ...asked, hashes: randomBytes(asked.hashes.length) };
    const forger = await startTestPeer(t, { files: [{ manifest: asked }], lie: forged });
    const forgerClient = await watch(t, forger.endpoint);
    await assert.rejects(forgerClient.client.getManifest(asked.id), { code: 'ERR_BAD_MANIFEST' });
    // A name is only the peer's word, not part of the id: taken as it is, and made safe when a
    // download saves the file (see test/security/names-and-paths.test.ts).
    const badName = { ...asked, name: '../escape' };
    const renamer = await startTestPeer(t, { files: [{ manifest: asked }], lie: badName });
    const renamerClient = await watch(t, renamer.endpoint);
    assert.equal((await renamerClient.client.getManifest(asked.id)).name, '../escape');
    assert.ok(!client.isClosed);
  },
);

test('a server without the discovery options sends nothing unsolicited, as before', limits, async (t) => {
  const server = new ChunkServer({
    provider: async (_id, index) => (index === 0 ? Buffer.from('zero') : null),
  });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  const { client, events } = await watch(t, { host: '127.0.0.1', port });
  // The server reads our INFO before our REQUEST: anything it sent in answer would come first.
  assert.deepEqual(await client.requestChunk(randomBytes(32), 0), Buffer.from('zero'));
  assert.deepEqual(events, []);
  assert.equal(client.peerInfo, null);
});

test(
  'an OFFERS larger than a chunk reaches a client expecting small chunks; over 1000 are cut',
  limits,
  async (t) => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    // 1200 offers of 2400-chunk files: 300-byte bitfields, 1000 of them (the cap) ~360 KB in all.
    const many: Offer[] = Array.from({ length: MAX_OFFERS + 200 }, (_, i) => ({
      fileId: randomBytes(32),
      name: `file-${i}`,
      size: 2400 * MIN_CHUNK_SIZE,
      chunkSize: MIN_CHUNK_SIZE,
      chunks: Bitfield.full(2400),
    }));
    const peer = await startTestPeer(t, { extra: { offers: () => many, logger } });
    const { client, offers } = await watch(t, peer.endpoint, { maxChunkSize: MIN_CHUNK_SIZE });
    await waitFor(() => offers.length === 1, 'OFFERS');
    assert.equal(offers[0]!.length, MAX_OFFERS);
    assert.equal(offers[0]![999]!.name, 'file-999');
    assert.ok(!client.isClosed);
    assert.ok(lines.some((line) => line.includes('too many files for one OFFERS')));
  },
);

/** A raw client, handshaken, for sending what a PeerClient would not. */
async function rawClient(t: TestContext, endpoint: Endpoint): Promise<FramedConnection> {
  const { socket, credentials, remotePeerId } = await connectAs(endpoint.host, endpoint.port);
  const conn = new FramedConnection(socket, { maxFrame: 1 << 22, remotePeerId });
  ownIds.set(conn, credentials.peerId);
  t.after(() => conn.destroy());
  await clientHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS);
  conn.onFrame(() => undefined);
  return conn;
}

/** The peer id each raw client proved: its INFO must carry it. */
const ownIds = new WeakMap<FramedConnection, Buffer>();

const closed = (conn: FramedConnection): Promise<void> =>
  conn.isClosed ? Promise.resolve() : new Promise((resolve) => conn.once('close', () => resolve()));

test('a client that breaks the discovery rules is disconnected; the server serves on', limits, async (t) => {
  const peer = await startTestPeer(t, { files: [{ manifest: fakeManifest('f', 1) }] });
  const twice = await rawClient(t, peer.endpoint);
  const info = encodePeerMessage({ type: 'info', peerId: ownIds.get(twice)!, name: 'x', port: 1 });
  twice.send(info);
  twice.send(info);
  await closed(twice);
  const offering = await rawClient(t, peer.endpoint);
  offering.send(encodePeerMessage({ type: 'offers', offers: [] }));
  await closed(offering);
  const bigInfo = await rawClient(t, peer.endpoint);
  bigInfo.send(Buffer.alloc(2048, PeerType.INFO)); // over the client frame cap
  await closed(bigInfo);
  const { client } = await watch(t, peer.endpoint);
  await waitFor(() => client.peerInfo, 'a good client is served');
});

test(
  'a server that sends a bad OFFERS, a second INFO or a client message is disconnected',
  limits,
  async (t) => {
    const spareBit = new Writer().u8(PeerType.OFFERS).u16(1).fixed(randomBytes(32), 32).str('f', 255);
    spareBit
      .u64(5)
      .u32(MIN_CHUNK_SIZE)
      .blob(Buffer.from([0xff]), 1);
    const info = (peerId: Buffer): Buffer => encodePeerMessage({ type: 'info', peerId, name: 's', port: 1 });
    const bad: ((selfId: Buffer) => Buffer[])[] = [
      (selfId) => [info(selfId), spareBit.finish()],
      (selfId) => [info(selfId), info(selfId)],
      () => [info(randomBytes(32))], // an INFO that names another peer than the certificate
      () => [encodePeerMessage({ type: 'get_manifest', req: 1, fileId: randomBytes(32) })],
    ];
    for (const frames of bad) {
      // It answers our INFO, as a real server does, so our frame handler is in place.
      const { endpoint } = await rawPeer(t, (conn, selfId) =>
        conn.onFrame(() => frames(selfId).forEach((f) => conn.send(f))),
      );
      const client = await PeerClient.connect(endpoint.host, endpoint.port);
      t.after(() => client.close());
      const reason = await new Promise<Error | undefined>((resolve) => client.once('close', resolve));
      assert.equal((reason as { code?: string } | undefined)?.code, 'ERR_PROTOCOL');
    }
  },
);

test(
  'a client that does not read is sent no pile of HAVE and PEERS: they are coalesced for when it does',
  limits,
  async (t) => {
    const file = fakeManifest('growing.bin', 2000);
    const chunks = new Bitfield(2000);
    let peersAsked = 0;
    const big = randomBytes(MAX_CHUNK_SIZE); // more than the kernel takes from a socket nobody reads
    const server = new ChunkServer({
      provider: async () => big,
      self: { name: 'server' },
      offers: () => [offerOf({ manifest: file, chunks })],
      knownPeers: () => {
        peersAsked++;
        return [{ host: '10.0.0.1', port: 7000 }];
      },
      pexIntervalMs: 10,
    });
    t.after(() => server.close());
    const { port } = await server.listen(0, '127.0.0.1');
    const { socket, credentials } = await connectAs('127.0.0.1', port);
    const conn = new FramedConnection(socket, { maxFrame: MAX_PEER_FRAME });
    t.after(() => conn.destroy());
    await clientHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS);
    const received: string[] = [];
    conn.onFrame((body) => void received.push(decodePeerMessage(body).type));
    conn.send(encodePeerMessage({ type: 'info', peerId: credentials.peerId, name: 'slow', port: 0 }));
    await waitFor(() => received.includes('peers'), 'the greeting');

    // It asks for a chunk and stops reading: the PIECE stays in the server's socket buffer.
    conn.socket.pause();
    conn.send(encodePeerMessage({ type: 'request', req: 1, fileId: file.id, index: 0 }));
    await waitFor(() => server.stats.servedChunks === 1, 'the PIECE written');
    const asked = peersAsked;
    for (let index = 0; index < 1000; index++) {
      chunks.set(index);
      server.broadcastHave(file.id, index);
    }
    // Some thirty PEERS intervals, and time for the HAVE batch to meet the client that does not read.
    await delay(300);
    assert.equal(peersAsked, asked, 'PEERS made for a client that does not read');

    received.length = 0;
    conn.socket.resume();
    await waitFor(() => received.includes('piece'), 'the PIECE');
    conn.send(encodePeerMessage({ type: 'get_manifest', req: 2, fileId: randomBytes(32) }));
    await waitFor(() => received.includes('reject'), 'the answer to GET_MANIFEST');
    const afterPiece = received.slice(received.indexOf('piece') + 1, received.indexOf('reject'));
    // 1000 HAVEs became one OFFERS with every chunk they announced.
    assert.equal(afterPiece.filter((type) => type === 'have').length, 0);
    assert.equal(afterPiece.filter((type) => type === 'offers').length, 1);
    assert.ok(!conn.isClosed);
  },
);
