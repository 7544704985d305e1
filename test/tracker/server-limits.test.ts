/** The tracker under bad input, overload and silence: it closes the offender and carries on. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { setTimeout as delay } from 'node:timers/promises';
import {
  MAX_CHUNKS,
  MAX_SESSION_QUEUED_BYTES,
  MAX_TRACKER_FRAME,
  MAX_TRACKER_REQUESTS_IN_FLIGHT,
} from '../../src/constants.js';
import type { Manifest } from '../../src/storage/manifest.js';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import type { TrackerServer } from '../../src/tracker/server.js';
import { frameHeader } from '../../src/wire/framing.js';
import { encodeTrackerMessage } from '../../src/wire/tracker-messages.js';
import { waitFor } from '../helpers/wait.js';
import {
  RawSession,
  connectClient,
  errorCodeOf,
  fakeManifest,
  idOf,
  listedIds,
  registeredClient,
  startTracker,
  gatedListingStore,
} from './fixtures.js';

const T = { timeout: 15_000 };

/** A pino logger that keeps its records, to check that something was logged at a level. */
function capturingLogger(): { logger: pino.Logger; levels: () => number[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return {
    logger: pino({ level: 'debug' }, stream),
    levels: () => lines.map((line) => (JSON.parse(line) as { level: number }).level),
  };
}

/** A raw REGISTER + ANNOUNCE, so the peer has something the tracker must forget. */
async function rawPeer(
  t: Parameters<typeof RawSession.open>[0],
  port: number,
  label: string,
): Promise<RawSession> {
  const raw = await RawSession.open(t, port, true, label);
  assert.equal(
    (await raw.call({ type: 'register', req: 1, peerId: idOf(label), name: label, port: 1 })).type,
    'registered',
  );
  const announced = await raw.call({ type: 'announce', req: 2, manifests: [fakeManifest(label, label)] });
  assert.ok(announced.type === 'announced' && announced.results[0]!.code === '');
  return raw;
}

describe('bad input closes that connection only', () => {
  const offences: [string, (raw: RawSession) => void][] = [
    ['an unknown message type', (raw) => raw.conn.send(Buffer.from('7f00000009', 'hex'))],
    ['a reply sent as a request', (raw) => raw.send({ type: 'ok', req: 9 })],
    ['a frame that does not decode', (raw) => raw.conn.send(Buffer.from('16000000', 'hex'))],
    ['trailing bytes', (raw) => raw.conn.send(Buffer.from('1600000009ff', 'hex'))],
    ['an empty frame', (raw) => raw.sendBytes(frameHeader(0))],
    // Only the header: the tracker must not wait for (or allocate) the 4 MiB + 1 body.
    ['a frame over the cap', (raw) => raw.sendBytes(frameHeader(MAX_TRACKER_FRAME + 1))],
    ['a second handshake', (raw) => raw.conn.send(Buffer.from('0100016101' + '0001', 'hex'))],
    // (A file name over 255 bytes is refused file by file, the session kept: see names-and-paths.)
    ['a connection cut mid-frame', (raw) => raw.conn.socket.end(Buffer.from('000000101600', 'hex'))],
  ];
  for (const [what, offend] of offences) {
    test(what, T, async (t) => {
      const { logger, levels } = capturingLogger();
      const { server, port } = await startTracker(t, { logger });
      const bystander = await registeredClient(t, port, 'bystander');
      await bystander.announce([fakeManifest('kept', 'kept')]);
      const offender = await rawPeer(t, port, 'offender');
      assert.equal((await bystander.list()).total, 2);
      offend(offender);
      await offender.closed;
      await waitFor(async () => (await bystander.list()).total === 1, 'the offender to be removed');
      assert.deepEqual(await listedIds(bystander), [fakeManifest('kept', 'kept').id.toString('hex')]);
      await bystander.ping();
      assert.equal(server.stats.peers, 1);
      if (what !== 'a connection cut mid-frame') assert.ok(levels().includes(40), 'a warning was logged');
    });
  }
});

describe('bounds', () => {
  test('a session with too many requests in flight is closed', T, async (t) => {
    // A store whose listing waits for a gate, so requests pile up behind the first LIST.
    const { store, open } = gatedListingStore(t);
    const { port } = await startTracker(t, { store });
    const bystander = await registeredClient(t, port, 'bystander');
    const raw = await RawSession.open(t, port);
    raw.send({ type: 'list', req: 1, query: '', limit: 1 });
    for (let req = 2; req <= MAX_TRACKER_REQUESTS_IN_FLIGHT; req++)
      raw.send({ type: 'ping', req, uploadedBytes: 0 });
    // 64 requests wait: still within bounds.
    await bystander.ping();
    assert.equal(raw.conn.isClosed, false);
    raw.send({ type: 'ping', req: 999, uploadedBytes: 0 });
    await raw.closed;
    open();
    await bystander.ping();
  });

  test('requests are answered in order', T, async (t) => {
    const { port } = await startTracker(t);
    const raw = await RawSession.open(t, port);
    for (let req = 1; req <= MAX_TRACKER_REQUESTS_IN_FLIGHT; req++) {
      if (req % 3 === 0) raw.send({ type: 'list', req, query: '', limit: 10 });
      else if (req % 3 === 1) raw.send({ type: 'ping', req, uploadedBytes: 0 });
      else raw.send({ type: 'locate', req, fileId: idOf('none') });
    }
    for (let req = 1; req <= MAX_TRACKER_REQUESTS_IN_FLIGHT; req++) assert.equal((await raw.next()).req, req);
  });

  test('connections beyond the session bound are closed on arrival', T, async (t) => {
    const { server, port } = await startTracker(t, { maxSessions: 2 });
    const first = await connectClient(t, port);
    await connectClient(t, port);
    await assert.rejects(connectClient(t, port), (err: { code?: string }) =>
      ['ERR_UNREACHABLE', 'ERR_CLOSED', 'ECONNRESET'].includes(err.code ?? ''),
    );
    first.close();
    await waitFor(() => server.stats.connections === 1, 'the first connection to end');
    await (await connectClient(t, port)).ping();
  });

  test('a connection that never completes the handshake is closed at the deadline', T, async (t) => {
    const { server, port } = await startTracker(t, { handshakeTimeoutMs: 150 });
    const raw = await RawSession.open(t, port, false);
    await raw.closed;
    await waitFor(() => server.stats.connections === 0, 'the server to let the socket go');
  });
});

describe('expiry', () => {
  test('a peer that keeps its socket open but stops pinging is expired with its files', T, async (t) => {
    const { server, port } = await startTracker(t, { heartbeatMs: 100, expiryMs: 400 });
    const silent = await rawPeer(t, port, 'silent');
    assert.equal((await (await connectClient(t, port)).list()).total, 1);
    await silent.closed;
    // A fresh client: an idle one would expire too.
    assert.equal((await (await connectClient(t, port)).list()).total, 0);
    assert.equal(server.stats.peers, 0);
  });

  test('a peer that pings stays while a silent one expires', T, async (t) => {
    // Generous expiry: the pinging peer must survive event-loop stalls on a loaded machine.
    const { port } = await startTracker(t, { heartbeatMs: 50, expiryMs: 1000 });
    const alive = await registeredClient(t, port, 'alive');
    alive.startHeartbeat(50);
    await alive.announce([fakeManifest('alive', 'alive')]);
    const silent = await rawPeer(t, port, 'silent');
    const started = Date.now();
    await silent.closed;
    assert.ok(Date.now() - started >= 900, 'expired no earlier than the expiry');
    assert.deepEqual(await listedIds(alive), [fakeManifest('alive', 'alive').id.toString('hex')]);
    assert.equal(alive.isClosed, false);
  });
});

describe('backpressure: what waiting requests may cost', () => {
  const MiB = 1024 * 1024;
  /** One socket read: what a session may still take in after it stops reading. */
  const READ = 64 * 1024;
  // 32768 chunks: 1 MiB of hashes, so each ANNOUNCE of it is a frame of about 1 MiB.
  let bigManifest: Manifest | null = null;
  const oneMiB = (): Manifest => (bigManifest ??= fakeManifest('one-mib', 'one-mib', 32 * 1024));
  const announceFrame = (req: number): Buffer =>
    encodeTrackerMessage({ type: 'announce', req, manifests: [oneMiB()] });
  const FRAME = announceFrame(1).length;

  /** Watches the server's queued bytes for a while: none may pass `bound`. Returns the most seen. */
  async function queuedStaysWithin(server: TrackerServer, bound: number, ms = 1500): Promise<number> {
    let most = 0;
    const until = Date.now() + ms;
    do {
      const { queuedBytes } = server.stats;
      most = Math.max(most, queuedBytes);
      assert.ok(queuedBytes <= bound, `${queuedBytes} bytes queued, more than ${bound}`);
      await delay(20);
    } while (Date.now() < until);
    return most;
  }

  /** A store whose shareFile waits for a gate for peers whose name starts with `slow`. */
  function gatedStore(t: Parameters<typeof RawSession.open>[0]): {
    store: MemoryTrackerStore;
    open: () => void;
  } {
    const store = new MemoryTrackerStore();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    t.after(() => open());
    const shareFile = store.shareFile.bind(store);
    const slow = new Set(
      ['slow', 'slow-1', 'slow-2', 'slow-3', 'slow-4'].map((l) => idOf(l).toString('hex')),
    );
    store.shareFile = async (peerId: Buffer, manifest: Manifest): Promise<void> => {
      if (slow.has(peerId.toString('hex'))) await gate;
      return shareFile(peerId, manifest);
    };
    return { store, open };
  }

  async function registeredRaw(
    t: Parameters<typeof RawSession.open>[0],
    port: number,
    label: string,
  ): Promise<RawSession> {
    const raw = await RawSession.open(t, port, true, label);
    const reply = await raw.call({ type: 'register', req: 1, peerId: idOf(label), name: label, port: 1 });
    assert.equal(reply.type, 'registered');
    return raw;
  }

  test('a session whose peer does not read its replies is not read either', T, async (t) => {
    const { server, port } = await startTracker(t);
    const seeder = await registeredClient(t, port, 'seeder');
    // 2 MiB of hashes: each LOCATE of it is a 2 MiB reply, and a few fill the socket's buffers.
    const big = fakeManifest('big.iso', 'big', MAX_CHUNKS);
    assert.equal((await seeder.announce([big]))[0]!.code, '');
    const raw = await registeredRaw(t, port, 'reader-not');
    raw.conn.socket.pause(); // never reads again
    for (let req = 2; req < 18; req++) raw.send({ type: 'locate', req, fileId: big.id });
    for (let req = 18; req < 48; req++) raw.conn.send(announceFrame(req));
    await queuedStaysWithin(server, MAX_SESSION_QUEUED_BYTES + MAX_TRACKER_FRAME + READ);
    // Others are served meanwhile.
    await seeder.ping();
    assert.equal((await (await connectClient(t, port)).list()).total, 1);
  });

  test('requests waiting behind a slow store are bounded in bytes, then all answered', T, async (t) => {
    const { store, open } = gatedStore(t);
    const budget = 2 * MiB;
    const { server, port } = await startTracker(t, { store, maxSessionQueuedBytes: budget });
    const raw = await registeredRaw(t, port, 'slow');
    const count = 12;
    for (let req = 2; req < 2 + count; req++) raw.conn.send(announceFrame(req));
    await waitFor(() => server.stats.queuedBytes > budget, 'the budget to be reached');
    await queuedStaysWithin(server, budget + FRAME + READ);
    const honest = await registeredClient(t, port, 'honest');
    await honest.ping();
    assert.equal((await honest.announce([fakeManifest('small', 'small')]))[0]!.code, '');
    open();
    for (let req = 2; req < 2 + count; req++) {
      const reply = await raw.next();
      assert.ok(reply.type === 'announced' && reply.req === req && reply.results[0]!.code === '');
    }
    await waitFor(() => server.stats.queuedBytes === 0, 'the queue to empty');
  });

  test('ANNOUNCE from a session that is not registered is kept as its id alone', T, async (t) => {
    // A LIST that waits for a gate, so everything behind it stays queued.
    const { store, open } = gatedListingStore(t);
    const { server, port } = await startTracker(t, { store });
    const raw = await RawSession.open(t, port);
    raw.send({ type: 'list', req: 1, query: '', limit: 1 });
    const count = 30;
    for (let req = 2; req < 2 + count; req++) raw.conn.send(announceFrame(req));
    await waitFor(() => server.stats.queuedRequests === 1 + count, 'every request to be queued');
    assert.ok(server.stats.queuedBytes < FRAME, `${server.stats.queuedBytes} bytes queued`);
    open();
    assert.equal((await raw.next()).type, 'files');
    for (let req = 2; req < 2 + count; req++) {
      const reply = await raw.next();
      assert.equal(reply.req, req);
      assert.equal(errorCodeOf(reply), 'ERR_NOT_REGISTERED');
    }
    // A REGISTER sent with an ANNOUNCE right behind it, unanswered yet: the ANNOUNCE is kept whole.
    const pipelined = await RawSession.open(t, port, true, 'quick');
    pipelined.send({ type: 'register', req: 1, peerId: idOf('quick'), name: 'quick', port: 1 });
    pipelined.send({ type: 'announce', req: 2, manifests: [fakeManifest('quick', 'quick')] });
    assert.equal((await pipelined.next()).type, 'registered');
    const announced = await pipelined.next();
    assert.ok(announced.type === 'announced' && announced.results[0]!.code === '');
  });

  test('the server-wide budget pauses sessions with requests waiting; others are served', T, async (t) => {
    const { store, open } = gatedStore(t);
    const budget = 3 * MiB;
    const { server, port } = await startTracker(t, { store, maxQueuedBytes: budget });
    const labels = ['slow-1', 'slow-2', 'slow-3', 'slow-4'];
    const raws = await Promise.all(labels.map((label) => registeredRaw(t, port, label)));
    const count = 8;
    for (const raw of raws) for (let req = 2; req < 2 + count; req++) raw.conn.send(announceFrame(req));
    await waitFor(() => server.stats.queuedBytes > budget, 'the budget to be reached');
    // Each session may go past it by the frame it was taking in when it was reached.
    await queuedStaysWithin(server, budget + raws.length * (FRAME + READ));
    // A session with nothing waiting still gets its requests read and answered.
    const honest = await registeredClient(t, port, 'honest');
    await honest.ping();
    assert.equal((await honest.announce([fakeManifest('small', 'small')]))[0]!.code, '');
    assert.equal((await honest.list()).total, 1);
    open();
    for (const raw of raws) {
      for (let req = 2; req < 2 + count; req++) {
        const reply = await raw.next();
        assert.ok(reply.type === 'announced' && reply.req === req && reply.results[0]!.code === '');
      }
    }
    await waitFor(() => server.stats.queuedBytes === 0, 'the queues to empty');
  });
});
