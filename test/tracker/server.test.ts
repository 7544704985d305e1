import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIN_CHUNK_SIZE, TRACKER_PROTOCOL } from '../../src/constants.js';
import { RemoteError } from '../../src/errors.js';
import { chunkSizeFor, validateManifest } from '../../src/storage/manifest.js';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import { TrackerServer } from '../../src/tracker/server.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { connectTls, credentialsOfLabel } from '../helpers/secure.js';
import { clientHandshake, decodeHandshakeReply, encodeHello } from '../../src/wire/handshake.js';
import type { TrackerRequest } from '../../src/wire/tracker-messages.js';
import { waitFor } from '../helpers/wait.js';
import {
  HOST,
  RawSession,
  connectClient,
  errorCodeOf,
  fakeManifest,
  idOf,
  listedIds,
  registeredClient,
  startTracker,
} from './fixtures.js';

const T = { timeout: 15_000 };
const remote = (code: string) => (err: unknown) => err instanceof RemoteError && err.code === code;

describe('tracker handshake', () => {
  test('another protocol is refused with a clear error and the connection closes', T, async (t) => {
    const { port } = await startTracker(t);
    const conn = new FramedConnection(await connectTls(HOST, port, 5000), { maxFrame: 1 << 16 });
    t.after(() => conn.destroy());
    await assert.rejects(clientHandshake(conn, 'swarmshare-peer', [1]), remote('ERR_PROTOCOL'));
    assert.equal(conn.isClosed, true);
  });

  test(
    'an unsupported version is refused naming the supported ones, then the connection closes',
    T,
    async (t) => {
      const { port } = await startTracker(t);
      const conn = new FramedConnection(await connectTls(HOST, port, 5000), { maxFrame: 1 << 16 });
      t.after(() => conn.destroy());
      const closed = new Promise((resolve) => conn.once('close', resolve));
      const reply = new Promise<Buffer>((resolve) => conn.onFrame((body) => resolve(Buffer.from(body))));
      conn.send(encodeHello({ protocol: TRACKER_PROTOCOL, versions: [2, 3] }));
      const answer = decodeHandshakeReply(await reply);
      assert.ok('refusal' in answer);
      assert.equal(answer.refusal.code, 'ERR_UNSUPPORTED_VERSION');
      assert.deepEqual(answer.refusal.versions, [1]);
      await closed;
    },
  );
});

describe('REGISTER', () => {
  test('records the address the tracker saw and answers with its timings', T, async (t) => {
    const { port } = await startTracker(t, { heartbeatMs: 1234, expiryMs: 5678 });
    const client = await connectClient(t, port, { credentials: await credentialsOfLabel('a') });
    const registration = await client.register({ name: 'alice', port: 6001 });
    assert.deepEqual(registration, { host: '127.0.0.1', port: 6001, heartbeatMs: 1234, expiryMs: 5678 });
    const m = fakeManifest('f', 'f');
    await client.announce([m]);
    const { holders } = await client.locate(m.id);
    assert.equal(holders.length, 1);
    assert.deepEqual(
      { peerId: holders[0]!.peerId, name: holders[0]!.name, host: holders[0]!.host, port: holders[0]!.port },
      { peerId: idOf('a'), name: 'alice', host: '127.0.0.1', port: 6001 },
    );
  });

  test('registering twice on one session is refused; the session keeps working', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    await assert.rejects(
      client.register({ peerId: idOf('b'), name: 'b', port: 1 }),
      remote('ERR_ALREADY_REGISTERED'),
    );
    await client.ping();
  });

  test('a second live session with the same peer id is refused; the first keeps working', T, async (t) => {
    const { port } = await startTracker(t);
    const first = await registeredClient(t, port, 'a');
    const second = await connectClient(t, port, { credentials: await credentialsOfLabel('a') });
    await assert.rejects(second.register({ name: 'impostor', port: 9 }), remote('ERR_DUPLICATE_PEER'));
    const m = fakeManifest('f', 'f');
    assert.equal((await first.announce([m]))[0]!.code, '');
    assert.equal((await first.locate(m.id)).holders[0]!.name, 'a');
    // Once the first has left, the id is free again.
    await first.leave();
    await second.register({ name: 'a again', port: 9 });
  });

  test('refuses a peer name with control characters and a port of 0', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await connectClient(t, port, { credentials: await credentialsOfLabel('a') });
    await assert.rejects(client.register({ name: 'bad\nname', port: 1 }), remote('ERR_BAD_NAME'));
    const raw = await RawSession.open(t, port, true, 'a');
    const reply = await raw.call({ type: 'register', req: 1, peerId: idOf('a'), name: 'a', port: 0 });
    assert.equal(errorCodeOf(reply), 'ERR_INVALID_ARGUMENT');
    // Neither attempt registered anything.
    await client.register({ name: 'a', port: 1 });
  });
});

describe('requests before REGISTER', () => {
  test('ANNOUNCE, UNSHARE and HAVE need REGISTER; LIST, LOCATE and PING do not', T, async (t) => {
    const { port } = await startTracker(t);
    const sharer = await registeredClient(t, port, 'sharer');
    const m = fakeManifest('f', 'f');
    await sharer.announce([m]);
    const raw = await RawSession.open(t, port);
    const refused: TrackerRequest[] = [
      { type: 'announce', req: 1, manifests: [fakeManifest('g', 'g')] },
      { type: 'unshare', req: 2, fileId: m.id },
      { type: 'have', req: 3, fileId: m.id, indices: [0] },
    ];
    for (const request of refused) {
      assert.equal(errorCodeOf(await raw.call(request)), 'ERR_NOT_REGISTERED', request.type);
    }
    assert.equal((await raw.call({ type: 'ping', req: 4, uploadedBytes: 0 })).type, 'ok');
    const files = await raw.call({ type: 'list', req: 5, query: '', limit: 10 });
    assert.ok(files.type === 'files' && files.total === 1);
    const location = await raw.call({ type: 'locate', req: 6, fileId: m.id });
    assert.ok(location.type === 'location' && location.holders.length === 1);
    // Nothing refused was recorded.
    assert.deepEqual(await listedIds(sharer), [m.id.toString('hex')]);
    assert.equal((await sharer.locate(m.id)).holders.length, 1);
  });

  test('LEAVE without REGISTER is a polite goodbye', T, async (t) => {
    const { port } = await startTracker(t);
    const raw = await RawSession.open(t, port);
    assert.equal((await raw.call({ type: 'leave', req: 1 })).type, 'ok');
    await raw.closed;
  });
});

describe('ANNOUNCE', () => {
  test('answers one result per file, in order; refused files are not listed', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const good = fakeManifest('good.bin', 'good');
    const forged = fakeManifest('forged.bin', 'forged');
    forged.hashes[5]! ^= 1;
    const results = await client.announce([good, forged, fakeManifest('..', 'dots')]);
    assert.deepEqual(
      results.map((r) => [r.fileId.toString('hex'), r.code]),
      [
        [good.id.toString('hex'), ''],
        [forged.id.toString('hex'), 'ERR_BAD_MANIFEST'],
        [fakeManifest('..', 'dots').id.toString('hex'), 'ERR_BAD_NAME'],
      ],
    );
    assert.deepEqual(await listedIds(client), [good.id.toString('hex')]);
  });

  test('refuses names that are not one safe path component', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const bad = [
      '..',
      '.',
      '',
      'a/b',
      '/etc/passwd',
      'a\\b',
      'C:x',
      'c:',
      'tab\there',
      'nul\0',
      'del\x7f',
      'x'.repeat(256),
    ];
    const results = await client.announce(bad.map((name, i) => fakeManifest(name, `bad${i}`)));
    assert.deepEqual(
      results.map((r) => r.code),
      bad.map(() => 'ERR_BAD_NAME'),
    );
    // 255 bytes is fine, multi-byte characters included; so are dots and spaces inside a name.
    const fine = ['é'.repeat(127) + 'a', '..hidden', 'a b.c', 'C', '日本語.txt'];
    const ok = await client.announce(fine.map((name, i) => fakeManifest(name, `fine${i}`)));
    assert.deepEqual(
      ok.map((r) => r.code),
      fine.map(() => ''),
    );
    assert.equal((await client.list()).total, fine.length);
  });

  test('the same content under two names is one file with two sources', T, async (t) => {
    const { port } = await startTracker(t);
    const a = await registeredClient(t, port, 'a', 7001);
    const b = await registeredClient(t, port, 'b', 7002);
    await a.announce([fakeManifest('holiday.jpg', 'photo')]);
    await b.announce([fakeManifest('IMG_0001.JPG', 'photo')]);
    const { total, files } = await a.list();
    assert.equal(total, 1);
    assert.deepEqual(
      { name: files[0]!.name, seeders: files[0]!.seeders, peers: files[0]!.peers },
      { name: 'holiday.jpg', seeders: 2, peers: 2 },
    );
    assert.equal((await a.list('img_')).total, 1);
    const { holders } = await a.locate(files[0]!.id);
    assert.deepEqual(holders.map((h) => h.port).sort(), [7001, 7002]);
  });

  test('different content under one name is two files', T, async (t) => {
    const { port } = await startTracker(t);
    const a = await registeredClient(t, port, 'a');
    const b = await registeredClient(t, port, 'b');
    await a.announce([fakeManifest('report.pdf', 'v1')]);
    await b.announce([fakeManifest('report.pdf', 'v2')]);
    const { total, files } = await a.list('report');
    assert.equal(total, 2);
    assert.deepEqual(
      files.map((f) => [f.name, f.seeders]),
      [
        ['report.pdf', 1],
        ['report.pdf', 1],
      ],
    );
    assert.notDeepEqual(files[0]!.id, files[1]!.id);
  });
});

describe('ANNOUNCE: manifests the tracker keeps', () => {
  test('a chunk size other than the one chunkSizeFor picks is refused, file by file', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    // Valid manifests that no swarmshare peer makes: peers still accept them from each other.
    const doubled = fakeManifest('doubled', 'doubled', 3, 2 * MIN_CHUNK_SIZE);
    const tooMany = fakeManifest('too-many', 'too-many', 5000, MIN_CHUNK_SIZE);
    for (const m of [doubled, tooMany]) {
      validateManifest(m);
      assert.notEqual(m.chunkSize, chunkSizeFor(m.size));
    }
    const honest = [fakeManifest('small', 'small', 3), fakeManifest('huge', 'huge', 5000)];
    const results = await client.announce([honest[0]!, doubled, tooMany, honest[1]!]);
    assert.deepEqual(
      results.map((r) => r.code),
      ['', 'ERR_BAD_MANIFEST', 'ERR_BAD_MANIFEST', ''],
    );
    assert.deepEqual(await listedIds(client), honest.map((m) => m.id.toString('hex')).sort());
  });

  test('manifest bytes are bounded per peer and in all: ERR_LIMIT per file', T, async (t) => {
    // 4096 chunks: 128 KiB of hashes per file. A peer may hold 2 of them, the catalog 3.
    const perFile = 4096 * 32;
    const store = new MemoryTrackerStore({
      maxManifestBytesPerPeer: 2 * perFile + 1000,
      maxManifestBytes: 3 * perFile + 1000,
    });
    const { port } = await startTracker(t, { store });
    const files = Array.from({ length: 5 }, (_, i) => fakeManifest(`f${i}`, `f${i}`, 4096));
    const a = await registeredClient(t, port, 'a');
    assert.deepEqual(
      (await a.announce(files.slice(0, 3))).map((r) => r.code),
      ['', '', 'ERR_LIMIT'],
    );
    // Another peer holding one of a's files adds nothing to the catalog; one new file fills it.
    const b = await registeredClient(t, port, 'b');
    assert.deepEqual(
      (await b.announce([files[0]!, files[2]!])).map((r) => r.code),
      ['', ''],
    );
    assert.equal((await b.list()).total, 3);
    const c = await registeredClient(t, port, 'c');
    assert.deepEqual(
      (await c.announce([files[3]!])).map((r) => r.code),
      ['ERR_LIMIT'],
    );
    // A peer that leaves takes its bytes with it (f1 was a's alone); what b holds stays.
    a.close();
    await waitFor(async () => (await b.list()).total === 2, 'a to be removed');
    assert.deepEqual(
      (await c.announce([files[3]!, files[4]!])).map((r) => r.code),
      ['', 'ERR_LIMIT'],
    );
  });
});

describe('LIST', () => {
  test('matches a case-insensitive substring; total counts all matches; limit is clamped', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const manifests = Array.from({ length: 1005 }, (_, i) => fakeManifest(`Track-${i}.flac`, `t${i}`, 1));
    manifests.push(fakeManifest('cover.PNG', 'cover', 1));
    const results = await client.announce(manifests);
    assert.ok(results.every((r) => r.code === ''));
    const flac = await client.list('TRACK-', 5);
    assert.equal(flac.total, 1005);
    assert.equal(flac.files.length, 5);
    assert.ok(flac.files.every((f) => f.name.startsWith('Track-')));
    assert.deepEqual(
      (await client.list('.png')).files.map((f) => f.name),
      ['cover.PNG'],
    );
    assert.equal((await client.list('nothing like it')).total, 0);
    const raw = await RawSession.open(t, port);
    const all = await raw.call({ type: 'list', req: 1, query: '', limit: 65535 });
    assert.ok(all.type === 'files');
    assert.equal(all.total, 1006);
    assert.equal(all.files.length, 1000);
  });
});

describe('LOCATE and HAVE', () => {
  test('holders come with their bitfields, the most complete first', T, async (t) => {
    const { port } = await startTracker(t);
    const seeder = await registeredClient(t, port, 'seeder', 7001);
    const leecher = await registeredClient(t, port, 'leecher', 7002);
    const m = fakeManifest('big.iso', 'big', 10);
    await seeder.announce([m]);
    await leecher.have(m.id, [9, 0, 4]);
    const { manifest, holders } = await leecher.locate(m.id);
    assert.deepEqual(manifest, m);
    assert.deepEqual(
      holders.map((h) => [h.port, [...h.chunks.indices()]]),
      [
        [7001, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
        [7002, [0, 4, 9]],
      ],
    );
  });

  test('HAVE makes a downloader a source of those chunks at once', T, async (t) => {
    const { port } = await startTracker(t);
    const seeder = await registeredClient(t, port, 'seeder');
    const downloader = await registeredClient(t, port, 'downloader', 7777);
    const observer = await connectClient(t, port);
    const m = fakeManifest('f', 'f', 3);
    await seeder.announce([m]);
    await downloader.have(m.id, [1]);
    let holder = (await observer.locate(m.id)).holders.find((h) => h.port === 7777);
    assert.deepEqual([...holder!.chunks.indices()], [1]);
    assert.deepEqual(
      (await observer.list()).files.map((f) => [f.seeders, f.peers]),
      [[1, 2]],
    );
    await downloader.have(m.id, [0, 2]);
    holder = (await observer.locate(m.id)).holders.find((h) => h.port === 7777);
    assert.equal(holder!.chunks.complete, true);
    assert.deepEqual(
      (await observer.list()).files.map((f) => [f.seeders, f.peers]),
      [[2, 2]],
    );
  });

  test('unknown files and chunks are refused with their own codes', T, async (t) => {
    const { port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const other = await registeredClient(t, port, 'b');
    const unknown = fakeManifest('nope', 'nope').id;
    await assert.rejects(client.locate(unknown), remote('ERR_UNKNOWN_FILE'));
    await assert.rejects(client.have(unknown, [0]), remote('ERR_UNKNOWN_FILE'));
    await assert.rejects(client.unshare(unknown), remote('ERR_UNKNOWN_FILE'));
    const m = fakeManifest('f', 'f', 3);
    await other.announce([m]);
    await assert.rejects(client.have(m.id, [3]), remote('ERR_UNKNOWN_CHUNK'));
    // Unsharing a file someone else shares, but we do not, is refused too.
    await assert.rejects(client.unshare(m.id), remote('ERR_UNKNOWN_FILE'));
    assert.equal((await client.locate(m.id)).holders.length, 1);
  });
});

describe('UNSHARE, LEAVE and disconnects', () => {
  test('UNSHARE removes the peer as a source; the last source takes the file with it', T, async (t) => {
    const { port } = await startTracker(t);
    const a = await registeredClient(t, port, 'a');
    const b = await registeredClient(t, port, 'b');
    const shared = fakeManifest('shared', 'shared');
    await a.announce([shared]);
    await b.announce([shared]);
    await a.unshare(shared.id);
    assert.deepEqual(
      (await a.locate(shared.id)).holders.map((h) => h.name),
      ['b'],
    );
    await b.unshare(shared.id);
    assert.deepEqual(await listedIds(a), []);
    await assert.rejects(a.locate(shared.id), remote('ERR_UNKNOWN_FILE'));
  });

  test('LEAVE removes the peer before answering, then the connection closes', T, async (t) => {
    const { server, port } = await startTracker(t);
    const leaver = await registeredClient(t, port, 'leaver');
    const observer = await connectClient(t, port);
    await leaver.announce([fakeManifest('f', 'f')]);
    const closed = new Promise((resolve) => leaver.once('close', resolve));
    await leaver.leave();
    assert.deepEqual(await listedIds(observer), []);
    assert.equal(leaver.isClosed, true);
    await closed;
    await waitFor(() => server.stats.peers === 0, 'the session to end');
  });

  test('a peer whose connection drops disappears with its files', T, async (t) => {
    const { server, port } = await startTracker(t);
    const dropper = await registeredClient(t, port, 'dropper');
    const stayer = await registeredClient(t, port, 'stayer');
    const observer = await connectClient(t, port);
    const shared = fakeManifest('shared', 'shared');
    await dropper.announce([fakeManifest('own', 'own'), shared]);
    await stayer.announce([shared]);
    assert.equal((await observer.list()).total, 2);
    dropper.close();
    await waitFor(async () => (await observer.list()).total === 1, 'the dropped peer to go');
    assert.deepEqual(
      (await observer.locate(shared.id)).holders.map((h) => h.name),
      ['stayer'],
    );
    assert.equal(server.stats.peers, 1);
  });

  test('listening on a port in use fails with ERR_IO', T, async (t) => {
    const { port } = await startTracker(t);
    const second = new TrackerServer();
    t.after(() => second.close());
    await assert.rejects(second.listen(port, HOST), { code: 'ERR_IO' });
  });

  test('close() ends every session', T, async (t) => {
    const { server, port } = await startTracker(t);
    const client = await registeredClient(t, port, 'a');
    const closed = new Promise((resolve) => client.once('close', resolve));
    await server.close();
    await closed;
    await assert.rejects(client.ping(), { code: 'ERR_CLOSED' });
    assert.equal(server.address(), null);
    assert.deepEqual(await server.store.stats(), { peers: 0, files: 0 });
  });
});
