/**
 * Encryption: what someone on the path between two nodes sees and can do. A relay written here sits
 * between real nodes on loopback, forwarding and recording every byte both ways (and, when asked,
 * flipping one).
 *
 * Hostile cases covered:
 * - an eavesdropper on a whole exchange (mesh handshake, offers, manifest, INFO, a download): no
 *   byte of a distinctive marker in the file's content, of a sample of its raw bytes, of the file name,
 *   of either peer's name or of either peer id (hex or raw) appears in the recorded bytes; after the
 *   handshake every TLS record both ways is application data (type 23, opaque);
 * - the negotiated protocol is TLSv1.3 with an AEAD suite, at a chunk server and at a tracker;
 * - a relay flipping one byte of every connection from a seeder mid-chunk: the downloader's TLS record
 *   authentication cuts the connection, no chunk from that source is ever taken, and the file
 *   completes from an honest second source with the right SHA-256; flipping a byte from client to
 *   server likewise fails the request rather than serving it;
 * - a TLS 1.2-only client (with an Ed25519 certificate) is refused: only TLS alerts come back, no
 *   application data; a plaintext client sending our HELLO to a tracker and to a chunk server gets
 *   no frame of ours (at most a TLS alert) and is closed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { MIN_CHUNK_SIZE, PEER_PROTOCOL, TRACKER_PROTOCOL } from '../../src/constants.js';
import { Download } from '../../src/peer/download.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { PeerNode } from '../../src/peer/peer-node.js';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { encodeFrame } from '../../src/wire/framing.js';
import { encodeHello, encodeWelcome } from '../../src/wire/handshake.js';
import { deferred, makeFile, sha256File, startSeeder } from '../helpers/peer-fixtures.js';
import { connectAs } from '../helpers/secure.js';
import { tempDir } from '../helpers/wait.js';
import { startTracker } from '../tracker/fixtures.js';

const T = { timeout: 90_000 };

// ---- A relay on the path -------------------------------------------------------------------------

interface RelayOptions {
  /** Flip the byte at this offset of every connection's server-to-client stream. */
  flipFromServerAt?: number;
}

interface Relay {
  port: number;
  /** Every byte recorded, per connection and direction. */
  connections: { fromClient: Buffer[]; fromServer: Buffer[] }[];
  /** How many bytes were flipped. */
  flips: number;
  /** Resolves at the first flip. */
  flipped: Promise<void>;
  /** Set to flip the first byte of the next data from a client (cleared once done). */
  flipNextFromClient: boolean;
}

/** A TCP relay on 127.0.0.1 to `targetPort`, recording both ways; closed when the test ends. */
async function startRelay(t: TestContext, targetPort: number, options: RelayOptions = {}): Promise<Relay> {
  const firstFlip = deferred();
  const relay: Relay = {
    port: 0,
    connections: [],
    flips: 0,
    flipped: firstFlip.promise,
    flipNextFromClient: false,
  };
  const flip = (bytes: Buffer, at: number): void => {
    bytes[at]! ^= 0x01;
    relay.flips++;
    firstFlip.resolve();
  };
  const sockets = new Set<net.Socket>();
  const forward = (from: net.Socket, to: net.Socket, record: Buffer[], fromClient: boolean): void => {
    let offset = 0;
    const flipAt = fromClient ? undefined : options.flipFromServerAt;
    from.on('data', (data: Buffer) => {
      const bytes = Buffer.from(data);
      if (flipAt !== undefined && flipAt >= offset && flipAt < offset + bytes.length)
        flip(bytes, flipAt - offset);
      if (fromClient && relay.flipNextFromClient) {
        relay.flipNextFromClient = false;
        flip(bytes, 0);
      }
      offset += bytes.length;
      record.push(bytes);
      to.write(bytes);
    });
    from.on('end', () => to.end());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const connection = { fromClient: [] as Buffer[], fromServer: [] as Buffer[] };
    relay.connections.push(connection);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    forward(client, upstream, connection.fromClient, true);
    forward(upstream, client, connection.fromServer, false);
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.port = (server.address() as net.AddressInfo).port;
  return relay;
}

/** The content types of the TLS records in a recorded stream (a partial last record is ignored). */
function recordTypes(stream: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 5 <= stream.length;) {
    types.push(stream[at]!);
    at += 5 + stream.readUInt16BE(at + 3);
  }
  return types;
}

const HANDSHAKE_RECORD = 22;
const CHANGE_CIPHER_SPEC_RECORD = 20;
const ALERT_RECORD = 21;
const APPLICATION_DATA_RECORD = 23;

// ---- What an eavesdropper sees -------------------------------------------------------------------

describe('an eavesdropper learns nothing', () => {
  test('a whole exchange through a recording relay shows no content, name or id', T, async (t) => {
    const marker = 'SWARMSHARE-CLEARTEXT-MARKER-4f1c9e';
    const fileName = 'confidential-plans-8d2b.bin';
    const seederName = 'seeder-alias-71aa';
    const fetcherName = 'fetcher-alias-93cc';
    const seedDir = await tempDir(t);
    const size = MIN_CHUNK_SIZE * 3 + 1234;
    const content = Buffer.alloc(size);
    for (let at = 0; at < size; at += marker.length) content.write(marker, at);
    await fs.writeFile(path.join(seedDir, fileName), content);

    const seeder = await PeerNode.start({ dir: seedDir, host: '127.0.0.1', name: seederName, lan: false });
    t.after(() => seeder.close());
    const relay = await startRelay(t, seeder.address.port);
    const fetcher = await PeerNode.start({
      dir: await tempDir(t),
      host: '127.0.0.1',
      name: fetcherName,
      lan: false,
      peers: [{ host: '127.0.0.1', port: relay.port }],
    });
    t.after(() => fetcher.close());
    await fetcher.discoverySettled();
    const result = await fetcher.get(fileName);
    assert.deepEqual(await fs.readFile(result.path), content);

    const fromClient = Buffer.concat(relay.connections.flatMap((c) => c.fromClient));
    const fromServer = Buffer.concat(relay.connections.flatMap((c) => c.fromServer));
    // The file itself went through the relay: what we inspect is the real exchange.
    assert.ok(fromServer.length >= size, `only ${fromServer.length} bytes came through the relay`);
    const recorded = Buffer.concat([fromClient, fromServer]);
    const secrets: [string, Buffer][] = [
      ['the content marker', Buffer.from(marker)],
      ['the first 32 content bytes', content.subarray(0, 32)],
      ['the file name', Buffer.from(fileName)],
      ["the seeder's name", Buffer.from(seederName)],
      ["the fetcher's name", Buffer.from(fetcherName)],
      ["the seeder's id (hex)", Buffer.from(seeder.peerIdHex)],
      ["the fetcher's id (hex)", Buffer.from(fetcher.peerIdHex)],
      ["the seeder's id", seeder.peerId],
      ["the fetcher's id", fetcher.peerId],
    ];
    for (const [what, bytes] of secrets) {
      assert.equal(recorded.indexOf(bytes), -1, `${what} appears in the recorded bytes`);
    }
    // Past the first flight (ClientHello; ServerHello, and the compatibility ChangeCipherSpec), every
    // record is opaque application data: TLS 1.3 encrypts even the certificates.
    for (const connection of relay.connections) {
      for (const direction of [connection.fromClient, connection.fromServer]) {
        const types = recordTypes(Buffer.concat(direction));
        assert.equal(types[0], HANDSHAKE_RECORD);
        const rest = types.slice(1).filter((type) => type !== CHANGE_CIPHER_SPEC_RECORD);
        assert.ok(
          rest.every((type) => type === APPLICATION_DATA_RECORD),
          `records in the clear: ${JSON.stringify(types)}`,
        );
      }
    }
  });

  test('chunk servers and trackers negotiate TLS 1.3 with an AEAD suite', T, async (t) => {
    const file = await makeFile(await tempDir(t), 'f.bin', MIN_CHUNK_SIZE + 1, 3);
    const seeder = await startSeeder(t, file);
    const { port: trackerPort } = await startTracker(t);
    for (const port of [seeder.port, trackerPort]) {
      const { socket } = await connectAs('127.0.0.1', port);
      t.after(() => socket.destroy());
      assert.equal(socket.getProtocol(), 'TLSv1.3');
      assert.match(
        socket.getCipher().standardName,
        /^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/,
      );
    }
  });
});

// ---- What a tampering relay achieves -------------------------------------------------------------

describe('a tampering relay only cuts connections', () => {
  test(
    'one byte flipped mid-chunk: that source never delivers, the file completes elsewhere',
    T,
    async (t) => {
      // Whole chunks only: each is longer than what a connection carries before the flip (a short last
      // chunk asked first on a fresh connection could arrive whole before it).
      const file = await makeFile(await tempDir(t), 'tampered.bin', MIN_CHUNK_SIZE * 4, 11);
      const relayed = await startSeeder(t, file, { name: 'relayed' });
      // Mid-way through the first chunk of every connection (the TLS handshake takes a few KiB).
      const relay = await startRelay(t, relayed.port, { flipFromServerAt: MIN_CHUNK_SIZE / 2 });
      // The honest source waits until the relay has tampered, so the download does try the relayed one.
      const honest = await startSeeder(t, file, { name: 'honest', gate: relay.flipped });

      const dir = await tempDir(t);
      const from = new Map<string, number>();
      const download = new Download({
        manifest: file.manifest,
        dir,
        stateDir: path.join(dir, '.swarmshare'),
        findSources: async () => [{ ...relayed.source(), port: relay.port }, honest.source()],
        onChunk: (_index, peerId) => from.set(peerId, (from.get(peerId) ?? 0) + 1),
        relocateIntervalMs: 50,
      });
      t.after(() => download.cancel());
      const result = await download.start();
      assert.ok(relay.flips >= 1);
      assert.equal(await sha256File(result.path), file.sha256);
      assert.deepEqual([...from.keys()], [honest.peerId], 'a chunk was taken from the tampered connection');
    },
  );

  for (const direction of ['server to client', 'client to server'] as const) {
    test(`one byte flipped ${direction}: the request fails, no data is accepted`, T, async (t) => {
      const file = await makeFile(await tempDir(t), 'f.bin', MIN_CHUNK_SIZE * 2, 13);
      const seeder = await startSeeder(t, file);
      // Past the handshake (a few KiB), before the end of the chunk.
      const relay = await startRelay(
        t,
        seeder.port,
        direction === 'server to client' ? { flipFromServerAt: 16 * 1024 } : {},
      );
      const client = await PeerClient.connect('127.0.0.1', relay.port, {
        expectedPeerId: Buffer.from(seeder.peerId, 'hex'),
      });
      t.after(() => client.close());
      if (direction === 'client to server') {
        // One request goes through untouched; the next is tampered with on its way.
        assert.equal((await client.requestChunk(file.manifest.id, 0)).length, MIN_CHUNK_SIZE);
        relay.flipNextFromClient = true;
        const reads = seeder.reads();
        await assert.rejects(client.requestChunk(file.manifest.id, 1));
        assert.equal(seeder.reads(), reads, 'the tampered request was served');
      } else {
        await assert.rejects(client.requestChunk(file.manifest.id, 0));
      }
      assert.equal(relay.flips, 1);
      assert.ok(client.isClosed);
    });
  }
});

// ---- Clients that do not speak TLS 1.3 -----------------------------------------------------------

/** What a raw client sending `bytes` (or doing nothing) gets back before the server closes. */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server kept a plaintext client open for 20 s'));
    }, 20_000);
    socket.on('data', (data: Buffer) => received.push(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received));
    });
  });
}

describe('clients without TLS 1.3 learn nothing', () => {
  test('a TLS 1.2-only client gets only alerts back', T, async (t) => {
    const credentials = await ephemeralCredentials();
    const file = await makeFile(await tempDir(t), 'f.bin', MIN_CHUNK_SIZE, 17);
    const seeder = await startSeeder(t, file);
    const { port: trackerPort } = await startTracker(t);
    for (const port of [seeder.port, trackerPort]) {
      const relay = await startRelay(t, port);
      const outcome = await new Promise<{ secure: boolean; data: number }>((resolve) => {
        let secure = false;
        let data = 0;
        const socket = tls.connect({
          host: '127.0.0.1',
          port: relay.port,
          cert: credentials.certificate,
          key: credentials.privateKey,
          minVersion: 'TLSv1.2',
          maxVersion: 'TLSv1.2',
          rejectUnauthorized: false,
        });
        socket.on('secureConnect', () => {
          secure = true;
          socket.write(encodeFrame(encodeHello({ protocol: PEER_PROTOCOL, versions: [1] })));
        });
        socket.on('data', (d: Buffer) => (data += d.length));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ secure, data }));
      });
      assert.equal(outcome.secure, false, 'a TLS 1.2 handshake completed');
      assert.equal(outcome.data, 0);
      const fromServer = Buffer.concat(relay.connections.flatMap((c) => c.fromServer));
      const types = recordTypes(fromServer);
      assert.ok(types.length > 0 && types.every((type) => type === ALERT_RECORD), JSON.stringify(types));
    }
    assert.equal(seeder.reads(), 0);
  });

  test('a plaintext client saying HELLO gets no frame of ours and is closed', T, async (t) => {
    const file = await makeFile(await tempDir(t), 'f.bin', MIN_CHUNK_SIZE, 19);
    const seeder = await startSeeder(t, file);
    const { port: trackerPort } = await startTracker(t);
    const welcome = encodeFrame(encodeWelcome(1));
    for (const [port, protocol] of [
      [seeder.port, PEER_PROTOCOL],
      [trackerPort, TRACKER_PROTOCOL],
    ] as const) {
      const received = await rawExchange(port, encodeFrame(encodeHello({ protocol, versions: [1] })));
      assert.equal(received.indexOf(welcome), -1);
      assert.equal(received.indexOf(Buffer.from(protocol)), -1);
      const types = recordTypes(received);
      assert.ok(
        types.every((type) => type === ALERT_RECORD),
        `${protocol}: ${received.toString('hex')}`,
      );
    }
  });
});
