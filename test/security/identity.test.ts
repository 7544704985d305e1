/**
 * Identity: every node is whom its TLS certificate proves, and nobody can act under another's peer id.
 * Real parts throughout: trackers, chunk servers and peer nodes on loopback, the real CLI in child
 * processes; the hostile ends are written here over real TLS.
 *
 * Hostile cases covered:
 * - a peer node's certificate proves the id it reports (PeerNode.peerId), which is the SHA-256 of the
 *   public key in its identity.pem, computed here independently; a tracker's likewise;
 * - a tracker session registering under another peer's id: ERR_PEER_AUTH; it then cannot ANNOUNCE,
 *   UNSHARE or HAVE in that peer's name, nor (registered under its own id) unshare the victim's file:
 *   the victim's files stay listed, its holder record (name, address, chunks) unchanged;
 * - a second live session with the same key registering: ERR_DUPLICATE_PEER, the first kept;
 * - a client whose INFO names another peer id is cut off by the chunk server, and the claimed id never
 *   reaches onPeerInfo (an honest INFO does);
 * - a download whose source address answers with another peer's key: the impostor is refused
 *   (ERR_PEER_AUTH), asked for no chunk, and the file completes from the honest source;
 * - a client with no certificate, one with an ECDSA P-256 certificate and one with an RSA certificate:
 *   no protocol frame ever comes back from a tracker or a chunk server, the connection is closed;
 * - `swarmshare list --tracker WRONGID@host:port`: exit 1, the message names the id found and the id
 *   asked for; the right id works;
 * - `swarmshare tracker --state DIR` restarted prints the same id; another state folder, another id.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { MIN_CHUNK_SIZE, PEER_PROTOCOL, TRACKER_PROTOCOL } from '../../src/constants.js';
import { ChunkServer, serveFileChunk } from '../../src/peer/chunk-server.js';
import { Download } from '../../src/peer/download.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { PeerNode } from '../../src/peer/peer-node.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { IDENTITY_FILE_NAME } from '../../src/storage/identity.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { credentialsFor } from '../../src/transport/credentials.js';
import { encodeFrame } from '../../src/wire/framing.js';
import { encodeHello } from '../../src/wire/handshake.js';
import { encodePeerMessage } from '../../src/wire/peer-messages.js';
import { runCli, startTrackerProcess } from '../helpers/cli.js';
import { Hostile, closedWithin } from '../helpers/hostile-clients.js';
import { makeFile, sha256File, startSeeder, type TestFile } from '../helpers/peer-fixtures.js';
import { connectAs, credentialsOfLabel, identityOfLabel } from '../helpers/secure.js';
import { tempDir, waitFor } from '../helpers/wait.js';
import {
  HOST,
  RawSession,
  errorCodeOf,
  fakeManifest,
  idOf,
  listedIds,
  registeredClient,
  startTracker,
} from '../tracker/fixtures.js';

const T = { timeout: 60_000 };

/** The peer id of a PEM private key, computed from first principles: SHA-256 of the raw public key. */
function peerIdOfPem(pem: string): Buffer {
  const jwk = createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' });
  assert.equal(jwk.crv, 'Ed25519');
  return createHash('sha256').update(Buffer.from(jwk.x!, 'base64url')).digest();
}

async function smallFile(t: TestContext, name = 'small.bin'): Promise<TestFile> {
  return makeFile(await tempDir(t), name, MIN_CHUNK_SIZE * 3 + 100, 5);
}

describe('a certificate proves the id a node reports', () => {
  test('a peer node: its TLS key is the one in identity.pem, its id the key hash', T, async (t) => {
    const dir = await tempDir(t);
    const node = await PeerNode.start({ dir, host: '127.0.0.1', lan: false });
    t.after(() => node.close());
    const pem = await fs.readFile(path.join(dir, '.swarmshare', IDENTITY_FILE_NAME), 'utf8');
    const { socket, remotePeerId } = await connectAs('127.0.0.1', node.address.port);
    t.after(() => socket.destroy());
    assert.equal(remotePeerId.toString('hex'), node.peerIdHex);
    assert.equal(remotePeerId.toString('hex'), peerIdOfPem(pem).toString('hex'));
  });

  test('a tracker: the id it proves is the id of its credentials', T, async (t) => {
    const credentials = await credentialsOfLabel('tracker');
    const { port } = await startTracker(t, { credentials });
    const { socket, remotePeerId } = await connectAs(HOST, port);
    t.after(() => socket.destroy());
    assert.ok(remotePeerId.equals(idOf('tracker')));
    assert.ok(remotePeerId.equals(peerIdOfPem(credentials.privateKey)));
  });
});

describe('nobody acts under another peer id at a tracker', () => {
  test('REGISTER under another id is ERR_PEER_AUTH; the victim stays listed, unchanged', T, async (t) => {
    const { port } = await startTracker(t);
    const victim = await registeredClient(t, port, 'victim', 7001);
    const manifest = fakeManifest('victim-file.bin', 'victim content');
    await victim.announce([manifest]);
    const before = await victim.locate(manifest.id);

    const attacker = await RawSession.open(t, port, true, 'attacker');
    const register = await attacker.call({
      type: 'register',
      req: 1,
      peerId: idOf('victim'),
      name: 'victim',
      port: 7002,
    });
    assert.equal(errorCodeOf(register), 'ERR_PEER_AUTH');
    // Not registered: nothing in anyone's name.
    const other = fakeManifest('attacker-file.bin', 'attacker content');
    const inVictimsName = [
      await attacker.call({ type: 'unshare', req: 2, fileId: manifest.id }),
      await attacker.call({ type: 'announce', req: 3, manifests: [other] }),
      await attacker.call({ type: 'have', req: 4, fileId: manifest.id, indices: [0] }),
    ];
    for (const reply of inVictimsName) assert.equal(errorCodeOf(reply), 'ERR_NOT_REGISTERED');

    // Registered under its own id, its UNSHARE of the victim's file touches only its own entries.
    const own = await attacker.call({
      type: 'register',
      req: 5,
      peerId: attacker.peerId,
      name: 'x',
      port: 7003,
    });
    assert.equal(own.type, 'registered');
    await attacker.call({ type: 'unshare', req: 6, fileId: manifest.id });

    assert.deepEqual(await listedIds(victim), [manifest.id.toString('hex')]);
    const after = await victim.locate(manifest.id);
    const victimHolder = (holders: typeof after.holders) =>
      holders.filter((h) => h.peerId.equals(idOf('victim')));
    assert.equal(victimHolder(after.holders).length, 1);
    const [was] = victimHolder(before.holders);
    const [is] = victimHolder(after.holders);
    assert.equal(is!.name, was!.name);
    assert.equal(is!.port, was!.port);
    assert.equal(is!.chunks.setCount, was!.chunks.setCount);
    assert.equal(is!.chunks.setCount, chunkCount(manifest));
    assert.ok(!after.holders.some((h) => h.peerId.equals(idOf('attacker'))));
  });

  test('a second live session with the same key is ERR_DUPLICATE_PEER; the first is kept', T, async (t) => {
    const { port } = await startTracker(t);
    const first = await registeredClient(t, port, 'twin', 7001);
    const manifest = fakeManifest('twin.bin', 'twin content');
    await first.announce([manifest]);
    await assert.rejects(registeredClient(t, port, 'twin', 7009), { code: 'ERR_DUPLICATE_PEER' });
    const { holders } = await first.locate(manifest.id);
    assert.equal(holders.length, 1);
    assert.equal(holders[0]!.port, 7001);
    await first.ping();
  });
});

describe('a chunk server believes only the id a client proved', () => {
  test('an INFO naming another peer id is cut off and never passed on', T, async (t) => {
    const file = await smallFile(t);
    const infos: Buffer[] = [];
    const server = new ChunkServer({
      provider: (fileId, index) =>
        serveFileChunk(
          fileId.equals(file.manifest.id) ? { manifest: file.manifest, path: file.path } : undefined,
          index,
        ),
      onPeerInfo: (info) => infos.push(info.peerId),
    });
    t.after(() => server.close());
    const { port } = await server.listen(0, '127.0.0.1');

    const liar = await Hostile.open(t, port);
    await liar.handshake(PEER_PROTOCOL);
    liar.send(encodePeerMessage({ type: 'info', peerId: idOf('victim'), name: 'victim', port: 7001 }));
    assert.ok(await closedWithin(liar, 15_000), 'a client naming another id is still connected');

    // An honest INFO on the same server is passed on: the test above could have seen one.
    const honest = await Hostile.open(t, port);
    await honest.handshake(PEER_PROTOCOL);
    honest.send(encodePeerMessage({ type: 'info', peerId: honest.peerId!, name: 'honest', port: 7002 }));
    await waitFor(() => infos.length > 0, 'the honest INFO to be passed on');
    assert.deepEqual(
      infos.map((id) => id.toString('hex')),
      [honest.peerId!.toString('hex')],
    );
  });

  test('a download refuses a source address answering with another key, and completes', T, async (t) => {
    const file = await smallFile(t, 'wanted.bin');
    const honest = await startSeeder(t, file, { name: 'honest' });
    const impostor = await startSeeder(t, file, { name: 'impostor' });
    const total = chunkCount(file.manifest);

    // Straight: whoever answers at the impostor's address is not the honest peer.
    await assert.rejects(
      PeerClient.connect('127.0.0.1', impostor.port, { expectedPeerId: Buffer.from(honest.peerId, 'hex') }),
      { code: 'ERR_PEER_AUTH' },
    );

    // In a download: a tracker (or a peer) claims the honest id lives at the impostor's address too.
    const dir = await tempDir(t);
    const from = new Map<string, number>();
    const victimId = identityOfLabel('absent victim').peerId.toString('hex');
    const download = new Download({
      manifest: file.manifest,
      dir,
      stateDir: path.join(dir, '.swarmshare'),
      findSources: async () => [
        {
          peerId: victimId,
          name: 'victim',
          host: '127.0.0.1',
          port: impostor.port,
          chunks: Bitfield.full(total),
        },
        honest.source(),
      ],
      onChunk: (_index, peerId) => from.set(peerId, (from.get(peerId) ?? 0) + 1),
      relocateIntervalMs: 50,
    });
    t.after(() => download.cancel());
    const result = await download.start();
    assert.equal(await sha256File(result.path), file.sha256);
    assert.deepEqual([...from.keys()], [honest.peerId]);
    assert.equal(impostor.reads(), 0, 'the impostor was asked for chunks');
  });
});

// ---- Certificates that are not ours --------------------------------------------------------------

/** Connects with `options` (a certificate of another kind, or none), says HELLO, and reports what came back. */
function foreignClient(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ received: Buffer; error: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error = '';
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    const timer = setTimeout(() => socket.destroy(new Error('still open after 20 s')), 20_000);
    socket.on('secureConnect', () =>
      socket.write(encodeFrame(encodeHello({ protocol: TRACKER_PROTOCOL, versions: [1] }))),
    );
    socket.on('data', (data: Buffer) => chunks.push(data));
    socket.on('error', (err) => (error ||= err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), error });
    });
  });
}

/** A self-signed certificate for a key of another algorithm. */
async function foreignCertificate(
  algorithm: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams,
): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=foreign',
    notBefore: new Date('2000-01-01T00:00:00Z'),
    notAfter: new Date('2100-01-01T00:00:00Z'),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: algorithm as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]['signingAlgorithm'],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  return { cert: certificate.toString('pem'), key };
}

test('clients without an Ed25519 certificate never get a frame back', T, async (t) => {
  // Made by credentials.ts first, so @peculiar/x509 is set up with node's webcrypto.
  await credentialsFor(identityOfLabel('setup'));
  const ecdsa = await foreignCertificate({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' });
  const rsa = await foreignCertificate({
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  });
  const { port: trackerPort } = await startTracker(t);
  const file = await smallFile(t);
  const seeder = await startSeeder(t, file);
  const clients: [string, tls.ConnectionOptions][] = [
    ['no certificate', {}],
    ['an ECDSA certificate', { ...ecdsa, sigalgs: 'ecdsa_secp256r1_sha256:ed25519' }],
    ['an RSA certificate', { ...rsa, sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256:ed25519' }],
  ];
  for (const [port, server] of [
    [trackerPort, 'tracker'],
    [seeder.port, 'chunk server'],
  ] as const) {
    for (const [what, options] of clients) {
      const { received, error } = await foreignClient(port, options);
      assert.equal(
        received.length,
        0,
        `a client with ${what} got ${received.length} bytes from the ${server}`,
      );
      assert.ok(!/still open/.test(error), `a client with ${what} is still connected to the ${server}`);
    }
  }
  assert.equal(seeder.reads(), 0);
  // The same servers serve an honest client.
  const client = await PeerClient.connect('127.0.0.1', seeder.port);
  t.after(() => client.close());
  assert.equal((await client.requestChunk(file.manifest.id, 0)).length, MIN_CHUNK_SIZE);
});

// ---- The command line ----------------------------------------------------------------------------

describe('the command line pins and keeps tracker identities', () => {
  test('--tracker WRONGID@host:port fails naming the mismatch; the right id works', T, async (t) => {
    const { proc, address } = await startTrackerProcess(t, ['--state', await tempDir(t)]);
    const id = (await proc.waitForOutput(/\(id ([0-9a-f]{64})/))[1]!;
    const wrong = identityOfLabel('not the tracker').peerId.toString('hex');

    const refused = await runCli(['list', '--tracker', `${wrong}@${address}`]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`${address}.*is peer ${id.slice(0, 16)}, not the ${wrong.slice(0, 16)}`),
    );
    assert.equal(refused.stdout, '');

    const accepted = await runCli(['list', '--tracker', `${id}@${address}`]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /catalog is empty/);
  });

  test(
    'a tracker restarted with the same --state has the same id; another state, another id',
    T,
    async (t) => {
      const state = await tempDir(t);
      const idOfRun = async (dir: string): Promise<string> => {
        const { proc } = await startTrackerProcess(t, ['--state', dir]);
        const id = (await proc.waitForOutput(/\(id ([0-9a-f]{64})/))[1]!;
        proc.kill();
        await proc.exited;
        return id;
      };
      const first = await idOfRun(state);
      const again = await idOfRun(state);
      assert.equal(again, first);
      const pem = await fs.readFile(path.join(state, IDENTITY_FILE_NAME), 'utf8');
      assert.equal(peerIdOfPem(pem).toString('hex'), first);
      assert.notEqual(await idOfRun(await tempDir(t)), first);
    },
  );
});
