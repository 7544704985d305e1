import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import type { PeerRecord } from '../../src/tracker/store.js';
import { fakeManifest, idOf } from './fixtures.js';

function peer(label: string, port = 7000): PeerRecord {
  return { peerId: idOf(label), name: label, host: '10.0.0.1', port };
}

async function storeWith(...labels: string[]): Promise<MemoryTrackerStore> {
  const store = new MemoryTrackerStore();
  for (const label of labels) await store.addPeer(peer(label));
  return store;
}

describe('MemoryTrackerStore', () => {
  test('refuses a second live peer with the same id, accepts it again once removed', async () => {
    const store = await storeWith('a');
    await assert.rejects(store.addPeer(peer('a', 9)), { code: 'ERR_DUPLICATE_PEER' });
    assert.equal(await store.removePeer(idOf('a')), true);
    assert.equal(await store.removePeer(idOf('a')), false);
    await store.addPeer(peer('a', 9));
    assert.deepEqual(await store.stats(), { peers: 1, files: 0 });
  });

  test('holdings need a registered peer', async () => {
    const store = await storeWith();
    const m = fakeManifest('x', 'x');
    await assert.rejects(store.shareFile(idOf('ghost'), m), { code: 'ERR_NOT_REGISTERED' });
    await store.addPeer(peer('a'));
    await store.shareFile(idOf('a'), m);
    await assert.rejects(store.addChunks(idOf('ghost'), m.id, [0]), { code: 'ERR_NOT_REGISTERED' });
  });

  test('same content under two names is one file with both names; the first is displayed', async () => {
    const store = await storeWith('a', 'b');
    await store.shareFile(idOf('a'), fakeManifest('first.bin', 'same'));
    await store.shareFile(idOf('b'), fakeManifest('Second.bin', 'same'));
    const all = await store.listFiles('', 10);
    assert.equal(all.total, 1);
    assert.equal(all.files[0]!.name, 'first.bin');
    assert.equal(all.files[0]!.seeders, 2);
    assert.equal((await store.listFiles('second', 10)).total, 1);
    assert.equal((await store.locate(fakeManifest('', 'same').id, 10))!.manifest.name, 'first.bin');
  });

  test('names per file are capped', async () => {
    const store = new MemoryTrackerStore({ maxNamesPerFile: 2 });
    await store.addPeer(peer('a'));
    for (const name of ['n1', 'n2', 'n3']) await store.shareFile(idOf('a'), fakeManifest(name, 'same'));
    assert.equal((await store.listFiles('n2', 10)).total, 1);
    assert.equal((await store.listFiles('n3', 10)).total, 0);
  });

  test('seeders count complete holders, peers count any holder', async () => {
    const store = await storeWith('seed', 'leech');
    const m = fakeManifest('f', 'f', 3);
    await store.shareFile(idOf('seed'), m);
    await store.addChunks(idOf('leech'), m.id, [0, 2]);
    let [summary] = (await store.listFiles('', 10)).files;
    assert.deepEqual([summary!.seeders, summary!.peers, summary!.chunks], [1, 2, 3]);
    await store.addChunks(idOf('leech'), m.id, [1, 1]);
    [summary] = (await store.listFiles('', 10)).files;
    assert.deepEqual([summary!.seeders, summary!.peers], [2, 2]);
    // Re-announcing a file already held whole changes nothing.
    await store.shareFile(idOf('leech'), m);
    [summary] = (await store.listFiles('', 10)).files;
    assert.deepEqual([summary!.seeders, summary!.peers], [2, 2]);
  });

  test('a downloader announcing the whole file becomes a seeder once', async () => {
    const store = await storeWith('a');
    const m = fakeManifest('f', 'f', 4);
    await store.addChunks(idOf('a'), m.id, []).then(
      () => assert.fail('unknown file accepted'),
      (err: { code: string }) => assert.equal(err.code, 'ERR_UNKNOWN_FILE'),
    );
    await store.addPeer(peer('b'));
    await store.shareFile(idOf('b'), m);
    await store.addChunks(idOf('a'), m.id, [1]);
    await store.shareFile(idOf('a'), m);
    const [summary] = (await store.listFiles('', 10)).files;
    assert.deepEqual([summary!.seeders, summary!.peers], [2, 2]);
  });

  test('an empty file has a seeder per holder', async () => {
    const store = await storeWith('a', 'b');
    const m = fakeManifest('empty', 'empty', 0);
    await store.shareFile(idOf('a'), m);
    await store.shareFile(idOf('b'), m);
    const [summary] = (await store.listFiles('', 10)).files;
    assert.deepEqual([summary!.seeders, summary!.peers, summary!.chunks], [2, 2, 0]);
    await store.removePeer(idOf('a'));
    assert.equal((await store.listFiles('', 10)).files[0]!.seeders, 1);
  });

  test('an out-of-range chunk records nothing', async () => {
    const store = await storeWith('seed', 'leech');
    const m = fakeManifest('f', 'f', 3);
    await store.shareFile(idOf('seed'), m);
    await assert.rejects(store.addChunks(idOf('leech'), m.id, [0, 3]), { code: 'ERR_UNKNOWN_CHUNK' });
    await assert.rejects(store.addChunks(idOf('leech'), m.id, [-1]), { code: 'ERR_UNKNOWN_CHUNK' });
    await assert.rejects(store.addChunks(idOf('leech'), m.id, [0.5]), { code: 'ERR_UNKNOWN_CHUNK' });
    assert.equal((await store.locate(m.id, 10))!.holders.length, 1);
  });

  test('a file with no holder left is dropped; removing a peer drops its holdings', async () => {
    const store = await storeWith('a', 'b');
    const shared = fakeManifest('shared', 'shared');
    const own = fakeManifest('own', 'own');
    await store.shareFile(idOf('a'), shared);
    await store.shareFile(idOf('a'), own);
    await store.addChunks(idOf('b'), shared.id, [0]);
    assert.equal(await store.removeHolding(idOf('b'), own.id), false);
    await store.removePeer(idOf('a'));
    assert.deepEqual(await store.stats(), { peers: 1, files: 1 });
    assert.equal(await store.locate(own.id, 10), null);
    assert.equal(await store.removeHolding(idOf('b'), shared.id), true);
    assert.deepEqual(await store.stats(), { peers: 1, files: 0 });
    assert.equal(await store.locate(shared.id, 10), null);
  });

  test('list matches a case-insensitive substring of any name, counts every match, honours the limit', async () => {
    const store = await storeWith('a');
    for (let i = 0; i < 5; i++) await store.shareFile(idOf('a'), fakeManifest(`Holiday-${i}.JPG`, `h${i}`));
    await store.shareFile(idOf('a'), fakeManifest('notes.txt', 'notes'));
    const page = await store.listFiles('.jpg', 2);
    assert.equal(page.total, 5);
    assert.deepEqual(
      page.files.map((f) => f.name),
      ['Holiday-0.JPG', 'Holiday-1.JPG'],
    );
    assert.equal((await store.listFiles('', 100)).total, 6);
    assert.equal((await store.listFiles('nothing', 100)).total, 0);
    assert.equal((await store.listFiles('', 0)).files.length, 0);
  });

  test('locate puts holders with more chunks first and caps their number', async () => {
    const store = await storeWith('one', 'all', 'two');
    const m = fakeManifest('f', 'f', 4);
    await store.shareFile(idOf('all'), m);
    await store.addChunks(idOf('one'), m.id, [3]);
    await store.addChunks(idOf('two'), m.id, [0, 1]);
    const location = (await store.locate(m.id, 2))!;
    assert.deepEqual(
      location.holders.map((h) => [h.name, h.chunks.setCount]),
      [
        ['all', 4],
        ['two', 2],
      ],
    );
    assert.deepEqual([...location.holders[1]!.chunks.indices()], [0, 1]);
  });

  test('what it returns is a snapshot: later changes do not show through it', async () => {
    const store = await storeWith('seed', 'leech');
    const m = fakeManifest('f', 'f', 4);
    await store.shareFile(idOf('seed'), m);
    await store.addChunks(idOf('leech'), m.id, [0]);
    // The store kept its own copy of what it was given.
    m.hashes.fill(0);
    m.id.fill(0);
    const intact = fakeManifest('f', 'f', 4);
    const before = (await store.locate(intact.id, 10))!;
    assert.deepEqual(before.manifest, intact);
    await store.addChunks(idOf('leech'), intact.id, [2]);
    const after = (await store.locate(intact.id, 10))!;
    assert.deepEqual([...before.holders[1]!.chunks.indices()], [0]);
    assert.deepEqual([...after.holders[1]!.chunks.indices()], [0, 2]);
    // Ids are copies: changing one changes nothing in the store.
    after.holders[1]!.peerId.fill(0);
    const again = (await store.locate(intact.id, 10))!;
    assert.deepEqual(again.holders[1]!.peerId, idOf('leech'));
    assert.deepEqual(again.holders[1]!.chunks, after.holders[1]!.chunks);
    await store.addChunks(idOf('leech'), intact.id, [1, 3]);
    const complete = (await store.locate(intact.id, 10))!;
    assert.equal(complete.holders[1]!.chunks.complete, true);
    assert.deepEqual([...before.holders[1]!.chunks.indices()], [0]);
  });

  test('limits: peers, files per peer, files', async () => {
    const store = new MemoryTrackerStore({ maxPeers: 2, maxFilesPerPeer: 2, maxFiles: 3 });
    await store.addPeer(peer('a'));
    await store.addPeer(peer('b'));
    await assert.rejects(store.addPeer(peer('c')), { code: 'ERR_LIMIT' });
    await store.shareFile(idOf('a'), fakeManifest('1', '1'));
    await store.shareFile(idOf('a'), fakeManifest('2', '2'));
    await assert.rejects(store.shareFile(idOf('a'), fakeManifest('3', '3')), { code: 'ERR_LIMIT' });
    await store.shareFile(idOf('a'), fakeManifest('2 again', '2')); // already held: no new room needed
    await store.shareFile(idOf('b'), fakeManifest('3', '3'));
    await assert.rejects(store.shareFile(idOf('b'), fakeManifest('4', '4')), { code: 'ERR_LIMIT' });
    await assert.rejects(store.addChunks(idOf('a'), fakeManifest('3', '3').id, [0]), { code: 'ERR_LIMIT' });
    // A refused file left nothing behind.
    assert.deepEqual(await store.stats(), { peers: 2, files: 3 });
  });

  test('manifest bytes per peer: each file it holds counts whole, once, until it lets go', async () => {
    // 4 chunks: 128 bytes of hashes per file; a peer may hold two such files.
    const store = new MemoryTrackerStore({ maxManifestBytesPerPeer: 300 });
    await store.addPeer(peer('a'));
    await store.addPeer(peer('b'));
    const [f1, f2, f3] = ['1', '2', '3'].map((c) => fakeManifest(c, c, 4));
    await store.shareFile(idOf('a'), f1!);
    await store.shareFile(idOf('a'), f2!);
    await assert.rejects(store.shareFile(idOf('a'), f3!), { code: 'ERR_LIMIT' });
    // Nothing was left of the refused file.
    assert.deepEqual(await store.stats(), { peers: 2, files: 2 });
    assert.equal(await store.locate(f3!.id, 10), null);
    // The same file again, under another name, costs nothing more.
    await store.shareFile(idOf('a'), fakeManifest('1 again', '1', 4));
    assert.deepEqual(store.manifestUsage(idOf('a')), { catalog: 256, peer: 256 });
    // Another holder pays for what it holds from its own budget, whoever announced it first;
    // the catalog counts each file once.
    await store.shareFile(idOf('b'), f1!);
    await store.addChunks(idOf('b'), f2!.id, [0]);
    assert.deepEqual(store.manifestUsage(idOf('b')), { catalog: 256, peer: 256 });
    await assert.rejects(store.shareFile(idOf('b'), f3!), { code: 'ERR_LIMIT' });
    // Letting go of a file gives its bytes back to that peer.
    assert.equal(await store.removeHolding(idOf('a'), f1!.id), true);
    await store.shareFile(idOf('a'), f3!);
    assert.deepEqual(store.manifestUsage(idOf('a')), { catalog: 384, peer: 256 });
    await store.removePeer(idOf('b'));
    await store.addPeer(peer('b'));
    assert.deepEqual(store.manifestUsage(idOf('b')), { catalog: 256, peer: 0 });
    await store.shareFile(idOf('b'), f3!);
  });

  test('manifest bytes in the catalog: each file id counted once, freed when it leaves', async () => {
    const store = new MemoryTrackerStore({ maxManifestBytes: 300 });
    for (const label of ['a', 'b', 'c']) await store.addPeer(peer(label));
    const [f1, f2, f3] = ['1', '2', '3'].map((c) => fakeManifest(c, c, 4));
    await store.shareFile(idOf('a'), f1!);
    // A second holder of a file adds nothing to the catalog.
    await store.shareFile(idOf('b'), f1!);
    await store.addChunks(idOf('c'), f1!.id, [1]);
    await store.shareFile(idOf('b'), f2!);
    assert.equal(store.manifestUsage().catalog, 256);
    await assert.rejects(store.shareFile(idOf('c'), f3!), { code: 'ERR_LIMIT' });
    assert.deepEqual(await store.stats(), { peers: 3, files: 2 });
    // f1 stays while anyone holds it.
    await store.removePeer(idOf('a'));
    await store.removePeer(idOf('b'));
    assert.equal(store.manifestUsage().catalog, 128);
    await store.shareFile(idOf('c'), f3!);
    assert.equal(await store.removeHolding(idOf('c'), f1!.id), true);
    assert.equal(await store.removeHolding(idOf('c'), f3!.id), true);
    assert.deepEqual(store.manifestUsage(), { catalog: 0, peer: 0 });
    assert.deepEqual(await store.stats(), { peers: 1, files: 0 });
  });
});
