import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { TrackerLink, type Holdings, type TrackerLinkOptions } from '../../src/tracker/link.js';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import { TrackerServer } from '../../src/tracker/server.js';
import { credentialsOfLabel } from '../helpers/secure.js';
import { waitFor } from '../helpers/wait.js';
import { HOST, RawSession, connectClient, fakeManifest, idOf, listedIds, startTracker } from './fixtures.js';

const T = { timeout: 20_000 };
/** The link's identity in every test: its peer id is idOf('linked'). */
const linked = await credentialsOfLabel('linked');

function startLink(
  t: TestContext,
  port: number,
  holdings: () => Holdings,
  options: Partial<TrackerLinkOptions> = {},
): TrackerLink {
  const link = new TrackerLink({
    host: HOST,
    port,
    identity: { name: 'linked', port: 7100 },
    credentials: linked,
    holdings,
    reconnectMinMs: 20,
    reconnectMaxMs: 100,
    ...options,
  });
  t.after(() => link.stop());
  link.start();
  return link;
}

const complete = fakeManifest('complete.bin', 'complete', 4);
const partial = fakeManifest('partial.bin', 'partial', 4);

describe('TrackerLink', () => {
  test('registers and announces complete and partial holdings', T, async (t) => {
    const { port } = await startTracker(t);
    const seeder = await connectClient(t, port, { credentials: await credentialsOfLabel('seeder') });
    await seeder.register({ name: 'seeder', port: 7000 });
    await seeder.announce([partial]);
    const link = startLink(t, port, () => ({
      complete: [complete],
      partial: [{ fileId: partial.id, indices: [1, 3] }],
    }));
    const client = await link.ready(5000);
    assert.equal(link.client, client);
    const mine = (await client.locate(partial.id)).holders.find((h) => h.name === 'linked')!;
    assert.deepEqual([...mine.chunks.indices()], [1, 3]);
    assert.deepEqual(await listedIds(seeder, 'complete'), [complete.id.toString('hex')]);
  });

  test('reconnects to a new tracker on the same port and re-announces everything', T, async (t) => {
    const first = await startTracker(t, { heartbeatMs: 100, expiryMs: 1000 });
    const port = first.port;
    // The partial file needs a holder on the new tracker too, or it would not be in its catalog.
    const holdings: Holdings = { complete: [complete], partial: [{ fileId: partial.id, indices: [0] }] };
    const link = startLink(t, port, () => holdings);
    let ups = 0;
    const downs: unknown[] = [];
    link.on('up', () => ups++);
    link.on('down', (reason) => downs.push(reason));
    await link.ready(5000);
    assert.equal(ups, 1);

    await first.server.close();
    await waitFor(() => downs.length === 1, 'the link to notice the loss');
    assert.equal(link.client, null);
    // While down, calls succeed quietly.
    assert.equal(await link.announce([fakeManifest('while-down', 'while-down')]), null);
    await link.have(partial.id, [2]);
    await link.unshare(complete.id);
    holdings.partial = [{ fileId: partial.id, indices: [0, 2] }];

    // The new tracker's store already has another holder of the partial file (as a tracker
    // sharing a store with others would), so the partial holding has a catalog entry to join.
    const store = new MemoryTrackerStore();
    await store.addPeer({ peerId: idOf('seeder'), name: 'seeder', host: '10.0.0.9', port: 7000 });
    await store.shareFile(idOf('seeder'), partial);
    const second = new TrackerServer({ store, heartbeatMs: 100, expiryMs: 1000 });
    t.after(() => second.close());
    await second.listen(port, HOST);
    await waitFor(() => ups === 2, 'the link to come back up', 10_000);
    const observer = await connectClient(t, port);
    assert.deepEqual(await listedIds(observer, 'complete'), [complete.id.toString('hex')]);
    assert.deepEqual(await listedIds(observer, 'while-down'), []);
    const mine = (await observer.locate(partial.id)).holders.find((h) => h.name === 'linked')!;
    assert.deepEqual([...mine.chunks.indices()], [0, 2]);
    assert.equal(mine.port, 7100);
  });
});

describe('TrackerLink.have', () => {
  test('thousands of unawaited single-chunk reports all arrive, coalesced', T, async (t) => {
    const { port } = await startTracker(t);
    const big = fakeManifest('big', 'big', 5000);
    const seeder = await connectClient(t, port, { credentials: await credentialsOfLabel('seeder') });
    await seeder.register({ name: 'seeder', port: 7000 });
    await seeder.announce([big]);
    const link = startLink(t, port, () => ({ complete: [], partial: [] }));
    await link.ready(5000);
    // More than the client could have in flight and waiting, were each a request of its own.
    const reports: Promise<void>[] = [];
    for (let index = 0; index < 4999; index++) reports.push(link.have(big.id, [index]));
    await Promise.all(reports);
    const mine = (await seeder.locate(big.id)).holders.find((h) => h.name === 'linked')!;
    assert.equal(mine.chunks.setCount, 4999);
    assert.equal(mine.chunks.has(4999), false);
  });

  test('a refused report is logged, not thrown', T, async (t) => {
    const { port } = await startTracker(t);
    const link = startLink(t, port, () => ({ complete: [], partial: [] }));
    await link.ready(5000);
    await link.have(fakeManifest('unknown', 'unknown').id, [0]);
    assert.notEqual(link.client, null);
  });
});

describe('TrackerLink while starting, refused and stopping', () => {
  test('ready() rejects ERR_UNREACHABLE after its timeout when no tracker answers', T, async (t) => {
    const { server, port } = await startTracker(t);
    await server.close();
    const link = startLink(t, port, () => ({ complete: [], partial: [] }));
    await assert.rejects(link.ready(300), { code: 'ERR_UNREACHABLE' });
    assert.equal(link.client, null);
    assert.equal(await link.announce([complete]), null);
    await link.have(complete.id, [0]);
    await link.unshare(complete.id);
  });

  test('keeps retrying while the tracker still has our old session, then comes up', T, async (t) => {
    const { port } = await startTracker(t);
    const stale = await RawSession.open(t, port, true, 'linked');
    const registered = await stale.call({
      type: 'register',
      req: 1,
      peerId: idOf('linked'),
      name: 'old',
      port: 1,
    });
    assert.equal(registered.type, 'registered');
    const link = startLink(t, port, () => ({ complete: [complete], partial: [] }));
    const observer = await connectClient(t, port);
    // Several attempts are refused while the old session lives...
    await assert.rejects(link.ready(300), { code: 'ERR_UNREACHABLE' });
    assert.equal(link.client, null);
    // ...and the link comes up once it has gone.
    stale.conn.destroy();
    await link.ready(5000);
    const holders = (await observer.locate(complete.id)).holders;
    assert.deepEqual(
      holders.map((h) => [h.name, h.port]),
      [['linked', 7100]],
    );
  });

  test('calls made while a new session is being filled are applied after it', T, async (t) => {
    const { port } = await startTracker(t);
    const later = fakeManifest('later.bin', 'later');
    const calls: Promise<unknown>[] = [];
    const link: TrackerLink = startLink(t, port, () => {
      // The peer changes its mind while the link re-sends the snapshot: unshares a file the
      // snapshot still has, and shares a new one. Both must win over the snapshot.
      setImmediate(() => calls.push(link.unshare(complete.id), link.announce([later])));
      return { complete: [complete], partial: [] };
    });
    await link.ready(5000);
    await waitFor(() => calls.length === 2, 'the calls to be made');
    const [, announced] = await Promise.all(calls);
    assert.deepEqual(
      (announced as { code: string }[]).map((r) => r.code),
      [''],
    );
    const observer = await connectClient(t, port);
    assert.deepEqual(await listedIds(observer), [later.id.toString('hex')]);
  });

  test('stop() leaves: the peer is gone as soon as it resolves, and it stays gone', T, async (t) => {
    const { port } = await startTracker(t);
    const link = startLink(t, port, () => ({ complete: [complete], partial: [] }));
    await link.ready(5000);
    const observer = await connectClient(t, port);
    assert.equal((await observer.list()).total, 1);
    let downs = 0;
    link.on('down', () => downs++);
    await link.stop();
    assert.equal((await observer.list()).total, 0);
    assert.equal(link.client, null);
    assert.equal(downs, 1);
    await assert.rejects(link.ready(100), { code: 'ERR_CLOSED' });
    link.start();
    // Nothing reconnects: a fresh registration with the same id is accepted.
    const again = await connectClient(t, port, { credentials: linked });
    await again.register({ name: 'linked', port: 7100 });
  });

  test('stop() fails a pending ready() with ERR_CLOSED', T, async (t) => {
    const { server, port } = await startTracker(t);
    await server.close();
    const link = startLink(t, port, () => ({ complete: [], partial: [] }));
    const waiting = link.ready(10_000);
    await link.stop();
    await assert.rejects(waiting, { code: 'ERR_CLOSED' });
  });
});
