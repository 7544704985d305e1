import { ephemeralCredentials } from '../../src/transport/credentials.js';
/**
 * PeerMesh over real chunk servers on 127.0.0.1: peer exchange, the catalog and sources it builds
 * from OFFERS and HAVE, reconnection, self and duplicate links, removeHost, the bounds, manifests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { formatEndpoint, type Endpoint } from '../../src/address.js';
import { MESH_DIALS_PER_SECOND, MIN_CHUNK_SIZE } from '../../src/constants.js';
import type { MeshPeer, PeerMesh } from '../../src/discovery/mesh.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { encodePeerMessage } from '../../src/wire/peer-messages.js';
import { fakeManifest, rawPeer, startMesh, startTestPeer } from './mesh-fixtures.js';
import { waitFor } from '../helpers/wait.js';

const limits = { timeout: 20_000 };

const key = (endpoint: Endpoint): string => formatEndpoint(endpoint);
const connectedTo = (mesh: PeerMesh): string[] =>
  mesh
    .peers()
    .map((p) => key(p))
    .sort();
const hex = (id: Buffer): string => id.toString('hex');

function bits(size: number, ...set: number[]): Bitfield {
  const field = new Bitfield(size);
  for (const index of set) field.set(index);
  return field;
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function recordEvents(mesh: PeerMesh): { up: MeshPeer[]; down: MeshPeer[]; offers: MeshPeer[] } {
  const events = { up: [] as MeshPeer[], down: [] as MeshPeer[], offers: [] as MeshPeer[] };
  mesh.on('peer-up', (p) => events.up.push(p));
  mesh.on('peer-down', (p) => events.down.push(p));
  mesh.on('offers', (p) => events.offers.push(p));
  return events;
}

test(
  'given one address, a mesh learns the others by peer exchange and connects to all three',
  limits,
  async (t) => {
    const c = await startTestPeer(t, { name: 'c' });
    const d = await startTestPeer(t, { name: 'd' });
    const b = await startTestPeer(t, { name: 'b', known: [c.endpoint, d.endpoint] });
    const mesh = startMesh(t);
    const events = recordEvents(mesh);
    mesh.addHost(b.endpoint, 'static');
    await waitFor(() => mesh.peers().length === 3, 'three peers');
    assert.deepEqual(connectedTo(mesh), [b, c, d].map((p) => key(p.endpoint)).sort());
    assert.deepEqual(
      mesh
        .peers()
        .map((p) => p.name)
        .sort(),
      ['b', 'c', 'd'],
    );
    assert.deepEqual(
      mesh
        .knownHosts()
        .map((h) => `${key(h)} ${h.origins.join(',')} ${h.connected}`)
        .sort(),
      [`${key(b.endpoint)} static true`, `${key(c.endpoint)} pex true`, `${key(d.endpoint)} pex true`].sort(),
    );
    assert.equal(events.up.length, 3);
    assert.equal(mesh.peers().find((p) => p.name === 'b')!.peerId, hex(b.peerId));
  },
);

test(
  'the catalog is the union of what connected peers offer, with seeders and peers counted',
  limits,
  async (t) => {
    const [f1, f2, f3, f4] = [
      fakeManifest('movie.mkv', 3),
      fakeManifest('song.ogg', 1),
      fakeManifest('Report.PDF', 2),
      fakeManifest('wanted.iso', 2),
    ];
    const b = await startTestPeer(t, { files: [{ manifest: f1 }] });
    const c = await startTestPeer(t, {
      files: [{ manifest: f1, chunks: bits(3, 0) }, { manifest: f2 }, { manifest: f4, chunks: bits(2) }],
    });
    const d = await startTestPeer(t, { files: [{ manifest: f3, chunks: bits(2, 1) }] });
    const mesh = startMesh(t);
    for (const peer of [b, c, d]) mesh.addHost(peer.endpoint, 'static');
    await mesh.settled(10_000);
    assert.equal(mesh.peers().length, 3);

    const summary = (f: typeof f1, seeders: number, peers: number, chunks: number) => ({
      id: f.id,
      name: f.name,
      size: f.size,
      chunks,
      seeders,
      peers,
    });
    // Sorted by name; a file nobody holds a chunk of (f4, wanted but not yet had) is not listed.
    assert.deepEqual(mesh.catalog(), [summary(f3, 0, 1, 2), summary(f1, 1, 2, 3), summary(f2, 1, 1, 1)]);
    assert.deepEqual(mesh.catalog('rEpOrT'), [summary(f3, 0, 1, 2)]);
    assert.deepEqual(mesh.catalog('.o'), [summary(f2, 1, 1, 1)]);
    assert.deepEqual(mesh.catalog('nothing'), []);

    const sources = mesh.sources(f1.id).sort((x, y) => x.port - y.port);
    assert.deepEqual(
      sources.map((s) => [s.peerId, s.host, s.port, [...s.chunks.indices()]]),
      [
        [hex(b.peerId), '127.0.0.1', b.endpoint.port, [0, 1, 2]],
        [hex(c.peerId), '127.0.0.1', c.endpoint.port, [0]],
      ].sort((x, y) => (x[2] as number) - (y[2] as number)),
    );
    assert.deepEqual(mesh.sources(f4.id), []);
    assert.deepEqual(mesh.sources(randomBytes(32)), []);
  },
);

test('sources() follow HAVE and OFFERS; a HAVE for a file not offered changes nothing', limits, async (t) => {
  const file = fakeManifest('growing.bin', 4);
  const other = fakeManifest('other.bin', 1);
  const c = await startTestPeer(t, { files: [{ manifest: file, chunks: bits(4, 0) }] });
  const mesh = startMesh(t);
  const events = recordEvents(mesh);
  mesh.addHost(c.endpoint, 'static');
  await waitFor(() => mesh.sources(file.id).length === 1, 'a source');
  const before = events.offers.length;
  const chunksOf = (): number[] => [...(mesh.sources(file.id)[0]?.chunks.indices() ?? [])];

  c.holdings.get(hex(file.id))!.chunks.set(2);
  c.server.broadcastHave(other.id, 0); // not offered: ignored (and arrives first)
  c.server.broadcastHave(file.id, 2);
  await waitFor(() => chunksOf().includes(2), 'chunk 2 after HAVE');
  assert.deepEqual(chunksOf(), [0, 2]);
  assert.equal(events.offers.length, before + 1);
  // sources() hands out copies: changing one changes nothing in the mesh.
  mesh.sources(file.id)[0]!.chunks.set(3);
  assert.deepEqual(chunksOf(), [0, 2]);

  // OFFERS replace the whole view: the file is gone, the other is there.
  c.holdings.delete(hex(file.id));
  c.holdings.set(hex(other.id), { manifest: other, chunks: Bitfield.full(1) });
  c.server.broadcastOffers();
  await waitFor(() => mesh.sources(file.id).length === 0, 'the file withdrawn');
  assert.equal(mesh.sources(other.id).length, 1);
  assert.deepEqual(
    mesh.catalog().map((f) => f.name),
    ['other.bin'],
  );
});

test(
  'a peer that goes away drops out, and is reconnected when it listens on the same port again',
  limits,
  async (t) => {
    const file = fakeManifest('f.bin', 1);
    const b = await startTestPeer(t, { name: 'b', files: [{ manifest: file }] });
    const mesh = startMesh(t);
    const events = recordEvents(mesh);
    mesh.addHost(b.endpoint, 'static');
    await waitFor(() => mesh.peers().length === 1, 'connected');

    await b.close();
    await waitFor(() => mesh.peers().length === 0 && events.down.length === 1, 'dropped out');
    assert.equal(events.down[0]!.peerId, hex(b.peerId));
    assert.deepEqual(mesh.catalog(), []);
    assert.deepEqual(mesh.knownHosts()[0], { ...b.endpoint, origins: ['static'], connected: false });

    const again = await startTestPeer(t, {
      name: 'b',
      credentials: b.credentials,
      port: b.endpoint.port,
      files: [{ manifest: file }],
    });
    const started = performance.now();
    await waitFor(() => mesh.peers().length === 1, 'reconnected');
    assert.ok(performance.now() - started < 10_000);
    assert.equal(events.up.length, 2);
    assert.equal(mesh.catalog().length, 1);
    assert.equal(again.server.stats.connections, 1);
  },
);

test('a link to ourselves is recognised by our peer id and never dialled again', limits, async (t) => {
  const credentials = await ephemeralCredentials();
  const ourServer = await startTestPeer(t, { credentials, name: 'me' });
  const mesh = startMesh(t, {
    credentials,
    self: { peerId: credentials.peerId, name: 'me', port: ourServer.endpoint.port },
  });
  const dead = { host: '127.0.0.1', port: await closedPort() };
  mesh.addHost(ourServer.endpoint, 'static');
  mesh.addHost(dead, 'static');
  // The unreachable host is retried over and over meanwhile: at least three attempts after ours.
  await waitFor(() => mesh.dialAttempts >= 5, 'several attempts');
  assert.equal(ourServer.server.stats.acceptedConnections, 1);
  assert.deepEqual(mesh.peers(), []);
  assert.deepEqual(ourServer.introduced, []); // the server ignores its own peer id too
  assert.ok(mesh.knownHosts().every((h) => !h.connected));
});

test(
  'one link per peer: a second address of a linked peer is used only once the first is gone',
  limits,
  async (t) => {
    const credentials = await ephemeralCredentials();
    const first = await startTestPeer(t, { credentials, name: 'twin' });
    const second = await startTestPeer(t, { credentials, name: 'twin' });
    const mesh = startMesh(t);
    mesh.addHost(first.endpoint, 'static');
    await waitFor(() => mesh.peers().length === 1, 'linked');
    mesh.addHost(second.endpoint, 'lan');
    await waitFor(
      () => second.server.stats.acceptedConnections === 1 && second.server.stats.connections === 0,
      'the second address tried and let go',
    );
    assert.deepEqual(connectedTo(mesh), [key(first.endpoint)]);

    await first.close();
    await waitFor(() => connectedTo(mesh)[0] === key(second.endpoint), 'linked through the second address');
    assert.equal(mesh.peers().length, 1);
  },
);

test('removeHost forgets a host for one origin; with none left its link closes', limits, async (t) => {
  const b = await startTestPeer(t);
  const mesh = startMesh(t);
  const events = recordEvents(mesh);
  mesh.addHost(b.endpoint, 'static');
  mesh.addHost(b.endpoint, 'lan');
  mesh.addHost(b.endpoint, 'lan'); // idempotent
  await waitFor(() => mesh.peers().length === 1, 'linked');
  mesh.removeHost(b.endpoint, 'lan');
  assert.deepEqual(mesh.knownHosts(), [{ ...b.endpoint, origins: ['static'], connected: true }]);
  mesh.removeHost(b.endpoint, 'static');
  assert.deepEqual(mesh.knownHosts(), []);
  await waitFor(() => events.down.length === 1 && b.server.stats.connections === 0, 'link closed');
  assert.deepEqual(mesh.peers(), []);
  assert.equal(b.server.stats.acceptedConnections, 1);
});

/** A peer that answers our INFO with its INFO, no offers, and PEERS listing `count` addresses. */
async function pexLiar(t: Parameters<typeof rawPeer>[0], count: number) {
  const addresses = Array.from({ length: count }, (_, i) => ({
    host: `127.0.1.${1 + (i % 250)}`,
    port: 9 + Math.floor(i / 250),
  }));
  const peer = await rawPeer(t, (conn, selfId) =>
    conn.onFrame(() => {
      conn.send(encodePeerMessage({ type: 'info', peerId: selfId, name: 'liar', port: 1 }));
      conn.send(encodePeerMessage({ type: 'offers', offers: [] }));
      for (let i = 0; i < count; i += 50) {
        conn.send(encodePeerMessage({ type: 'peers', peers: addresses.slice(i, i + 50) }));
      }
    }),
  );
  return peer.endpoint;
}

test('200 addresses from peer exchange do not cause 200 immediate connection attempts', limits, async (t) => {
  // One PEERS message carries at most 50 addresses: the liar sends four at once.
  const liar = await pexLiar(t, 200);
  const mesh = startMesh(t, { connectTimeoutMs: 1_000 });
  const started = performance.now();
  mesh.addHost(liar, 'static');
  await waitFor(() => mesh.knownHosts().length === 201, 'the addresses learned');
  // A token bucket: at most a burst of MESH_DIALS_PER_SECOND, then that many per second.
  let worst = 0;
  await waitFor(() => {
    const seconds = (performance.now() - started) / 1000;
    worst = Math.max(worst, mesh.dialAttempts - (MESH_DIALS_PER_SECOND * (1 + seconds) + 1));
    return mesh.dialAttempts >= 2 * MESH_DIALS_PER_SECOND + 5;
  }, 'attempts continuing at the bounded rate');
  assert.ok(worst <= 0, `${worst} attempts over the bound`);
});

test('known hosts are bounded; a host a person configured is kept beyond the bound', limits, async (t) => {
  const liar = await pexLiar(t, 200);
  const mesh = startMesh(t, { maxHosts: 20, dialsPerSecond: 1 });
  mesh.addHost(liar, 'static');
  await waitFor(() => mesh.peers().length === 1 && mesh.knownHosts().length === 20, 'full');
  const extra = { host: '127.0.2.1', port: 9 };
  mesh.addHost(extra, 'pex');
  mesh.addHost({ host: '127.0.2.2', port: 9 }, 'lan');
  assert.equal(mesh.knownHosts().length, 20);
  mesh.addHost({ host: '127.0.2.3', port: 9 }, 'file');
  assert.equal(mesh.knownHosts().length, 21);
  // Addresses that cannot be dialled are not kept at all.
  for (const bad of [
    { host: '', port: 1 },
    { host: 'a b', port: 1 },
    { host: '0.0.0.0', port: 1 },
    { host: 'h', port: 0 },
    { host: 'h', port: 70000 },
  ]) {
    mesh.addHost(bad, 'static');
  }
  assert.equal(mesh.knownHosts().length, 21);
});

test('fetchManifest skips a lying peer and gets the right manifest from an honest one', limits, async (t) => {
  const file = fakeManifest('wanted.bin', 3);
  const liar = await startTestPeer(t, {
    name: 'liar',
    files: [{ manifest: file }],
    lie: fakeManifest('x', 3),
  });
  const honest = await startTestPeer(t, { name: 'honest', files: [{ manifest: file }] });
  const mesh = startMesh(t);
  // The liar is linked first, so it is asked first.
  mesh.addHost(liar.endpoint, 'static');
  await waitFor(() => mesh.sources(file.id).length === 1, 'the liar linked');
  mesh.addHost(honest.endpoint, 'static');
  await waitFor(() => mesh.sources(file.id).length === 2, 'both linked');
  assert.deepEqual(await mesh.fetchManifest(file.id), file);
  assert.equal(liar.manifestRequests(), 1);
  assert.equal(honest.manifestRequests(), 1);
  await assert.rejects(mesh.fetchManifest(randomBytes(32)), { code: 'ERR_NOT_FOUND' });
  await honest.close();
  await waitFor(() => mesh.sources(file.id).length === 1, 'only the liar left');
  await assert.rejects(mesh.fetchManifest(file.id), { code: 'ERR_NOT_FOUND' });
});

test(
  'settled() waits until every known host, even one learned meanwhile, has been tried',
  limits,
  async (t) => {
    const file = fakeManifest('x.bin', 1);
    const c = await startTestPeer(t, { name: 'c', files: [{ manifest: fakeManifest('y.bin', 1) }] });
    const b = await startTestPeer(t, { name: 'b', files: [{ manifest: file }], known: [c.endpoint] });
    const mesh = startMesh(t);
    mesh.addHost(b.endpoint, 'static');
    mesh.addHost({ host: '127.0.0.1', port: await closedPort() }, 'static');
    await mesh.settled(10_000);
    assert.deepEqual(
      mesh.catalog().map((f) => f.name),
      ['x.bin', 'y.bin'],
    );
    assert.equal(mesh.peers().length, 2);
  },
);

test('settled() never waits past its timeout', limits, async (t) => {
  // A host that accepts the connection and then says nothing at all.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const mesh = startMesh(t, { connectTimeoutMs: 15_000 });
  mesh.addHost({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }, 'static');
  const started = performance.now();
  await mesh.settled(200);
  const waited = performance.now() - started;
  assert.ok(waited >= 150 && waited < 5_000, `waited ${waited} ms`);
  assert.equal(mesh.peers().length, 0);
});

test('a peer that sends a HAVE beyond its file is disconnected', limits, async (t) => {
  const file = fakeManifest('two.bin', 2);
  const offers = [
    { fileId: file.id, name: file.name, size: file.size, chunkSize: MIN_CHUNK_SIZE, chunks: bits(2) },
  ];
  let connections = 0;
  const { endpoint } = await rawPeer(t, (conn, selfId) =>
    conn.onFrame(() => {
      connections++;
      conn.send(encodePeerMessage({ type: 'info', peerId: selfId, name: 'bad', port: 1 }));
      conn.send(encodePeerMessage({ type: 'offers', offers }));
      conn.send(encodePeerMessage({ type: 'peers', peers: [] }));
      if (connections === 1) conn.send(encodePeerMessage({ type: 'have', fileId: file.id, index: 2 }));
    }),
  );
  const mesh = startMesh(t);
  const events = recordEvents(mesh);
  mesh.addHost(endpoint, 'static');
  await waitFor(() => events.down.length === 1, 'disconnected');
  // It is dialled again later, like any peer that went away, and this time behaves.
  await waitFor(() => mesh.peers().length === 1, 'reconnected');
  assert.equal(mesh.sources(file.id).length, 0);
});
