/**
 * LanDiscovery on one host. Multicast on loopback needs a namespace of our own (the machine's
 * `lo` is never touched), so this file re-runs itself inside a fresh one, where several
 * instances meet on 127.0.0.1 and nothing they send can leave; each test then shows up as a
 * subtest of the outer one.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  LAN_MULTICAST_GROUP,
  LAN_SEALED_OFFER_MAX_SKEW_MS,
  MAX_LAN_DATAGRAM,
  MAX_LAN_FILES_PER_PEER,
} from '../../src/constants.js';
import { LanDiscovery, type LanDiscoveryOptions, type LanOffer } from '../../src/discovery/lan.js';
import { SwarmKey } from '../../src/transport/swarm-secret.js';
import { encodeLanOffer, type LanOfferFile } from '../../src/wire/lan-offer.js';
import { SEALED_LAN_OFFER_PURPOSE, sealLanOffer } from '../../src/wire/sealed-lan-offer.js';
import { insideTestNamespace, runTestFileInNamespace } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const LOOPBACK = '127.0.0.1';
const T = { timeout: 20_000 };

if (!insideTestNamespace()) {
  test('LAN discovery, in a fresh network namespace with multicast on loopback', { timeout: 90_000 }, (t) =>
    runTestFileInNamespace(t, fileURLToPath(import.meta.url)),
  );
} else {
  defineTests();
}

/** Each test its own UDP port, so nothing one test sent reaches the next. */
let nextPort = 17_700;

function peerId(n: number): Buffer {
  return Buffer.alloc(32, n);
}

function file(i: number, name = `file-${i}.bin`): LanOfferFile {
  const fileId = Buffer.alloc(32, 0xf0);
  fileId.writeUInt32BE(i, 28);
  return { fileId, name, size: 1000 + i };
}

interface Started {
  lan: LanDiscovery;
  offers: LanOffer[];
  expired: LanOffer[];
}

/** A started LanDiscovery on loopback, closed at teardown, recording its events. */
async function startLan(
  t: TestContext,
  port: number,
  self: { id: number; name?: string; tcpPort?: number },
  options: Partial<LanDiscoveryOptions> = {},
): Promise<Started> {
  const lan = new LanDiscovery({
    self: {
      peerId: peerId(self.id),
      name: self.name ?? `peer-${self.id}`,
      port: self.tcpPort ?? 4000 + self.id,
    },
    offers: () => [],
    port,
    interfaceAddress: LOOPBACK,
    intervalMs: 100,
    ...options,
  });
  t.after(() => lan.close());
  const started: Started = { lan, offers: [], expired: [] };
  lan.on('offer', (offer) => started.offers.push(offer));
  lan.on('expired', (offer) => started.expired.push(offer));
  await lan.start();
  return started;
}

/** A raw UDP socket sending to the group on loopback, as any program on the LAN could. */
async function rawSender(t: TestContext, port: number): Promise<(datagram: Buffer) => Promise<void>> {
  const socket = dgram.createSocket('udp4');
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  socket.bind(0, LOOPBACK);
  await once(socket, 'listening');
  socket.setMulticastInterface(LOOPBACK);
  return (datagram) =>
    new Promise((resolve, reject) =>
      socket.send(datagram, port, LAN_MULTICAST_GROUP, (err) => (err ? reject(err) : resolve())),
    );
}

function offerFrom(
  id: number,
  options: { tcpPort?: number; files?: LanOfferFile[]; tag?: number } = {},
): Buffer {
  const header = {
    peerId: peerId(id),
    name: `fake-${id}`,
    port: options.tcpPort ?? 5000,
    catalogTag: options.tag ?? 1,
  };
  return encodeLanOffer(header, options.files ?? []).datagram;
}

/** A raw UDP socket in the group on loopback, recording every datagram, as any host on the LAN could. */
async function rawListener(t: TestContext, port: number): Promise<Buffer[]> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const heard: Buffer[] = [];
  socket.on('message', (datagram) => heard.push(datagram));
  socket.bind(port, LAN_MULTICAST_GROUP);
  await once(socket, 'listening');
  socket.addMembership(LAN_MULTICAST_GROUP, LOOPBACK);
  return heard;
}

/** Swarm keys, derived once (scrypt is slow on purpose). */
const swarmKeys = new Map<string, Promise<SwarmKey>>();
function swarmKey(secret: string): Promise<SwarmKey> {
  let key = swarmKeys.get(secret);
  if (!key) swarmKeys.set(secret, (key = SwarmKey.derive(Buffer.from(secret))));
  return key;
}

function defineTests(): void {
  test(
    'three peers on one host see each other, each at the source address of its datagrams',
    T,
    async (t) => {
      const port = nextPort++;
      const files = [file(1), file(2)];
      const peers = await Promise.all(
        [1, 2, 3].map((id) => startLan(t, port, { id }, { offers: () => (id === 1 ? files : []) })),
      );
      for (const [i, { lan }] of peers.entries()) {
        const seen = await waitFor(
          () => {
            const found = lan.peers();
            return found.length === 2 ? found : null;
          },
          `peer ${i + 1} to see the two others`,
        );
        const others = [1, 2, 3].filter((id) => id !== i + 1);
        assert.deepEqual(
          seen.map((p) => p.peerId).sort(),
          others.map((id) => peerId(id).toString('hex')).sort(),
        );
        for (const offer of seen) {
          assert.equal(offer.host, LOOPBACK);
          const id = others.find((n) => peerId(n).toString('hex') === offer.peerId)!;
          assert.equal(offer.port, 4000 + id);
          assert.equal(offer.name, `peer-${id}`);
        }
      }
      const fromOne = peers[1]!.lan.peers().find((p) => p.peerId === peerId(1).toString('hex'))!;
      assert.equal(fromOne.totalFiles, 2);
      assert.deepEqual(
        fromOne.files.map((f) => [f.fileId, f.name, f.size]),
        files.map((f) => [f.fileId.toString('hex'), f.name, f.size]),
      );
    },
  );

  test(
    'with no interface given, peers of a host without a network find each other on loopback',
    T,
    async (t) => {
      const port = nextPort++;
      const [a, b] = await Promise.all(
        [1, 2].map((id) => startLan(t, port, { id }, { interfaceAddress: undefined })),
      );
      await waitFor(() => a!.offers.length === 1 && b!.offers.length === 1, 'each to see the other');
      assert.equal(a!.offers[0]!.host, LOOPBACK);
      assert.equal(a!.offers[0]!.peerId, peerId(2).toString('hex'));
    },
  );

  test('a peer ignores its own offers', T, async (t) => {
    const { lan, offers } = await startLan(t, nextPort++, { id: 1 });
    await waitFor(() => lan.stats().ownEchoes >= 3, 'three of our own offers to come back');
    assert.deepEqual(lan.peers(), []);
    assert.deepEqual(offers, []);
  });

  test('offer fires for a new peer and for a changed offer, not for repeats', T, async (t) => {
    const port = nextPort++;
    const watcher = await startLan(t, port, { id: 1 }, { intervalMs: 60_000 });
    let shared = [file(1)];
    const announcer = await startLan(t, port, { id: 2 }, { offers: () => shared, intervalMs: 20 });
    await waitFor(() => watcher.lan.stats().offers >= 10, 'ten offers from the announcer');
    assert.equal(watcher.offers.length, 1, 'one event for ten identical offers');
    assert.deepEqual(
      watcher.offers[0]!.files.map((f) => f.name),
      ['file-1.bin'],
    );
    shared = [file(1), file(2)];
    announcer.lan.announceNow();
    await waitFor(() => watcher.offers.length === 2, 'an event for the changed offer');
    assert.deepEqual(watcher.offers[1]!.files.map((f) => f.name).sort(), ['file-1.bin', 'file-2.bin']);
    const before = watcher.lan.stats().offers;
    await waitFor(() => watcher.lan.stats().offers >= before + 10, 'ten more offers');
    assert.equal(watcher.offers.length, 2);
    assert.deepEqual(watcher.expired, []);
  });

  test('a new TCP port withdraws the old endpoint before reporting the new one', T, async (t) => {
    const port = nextPort++;
    const { lan, offers, expired } = await startLan(t, port, { id: 1 }, { intervalMs: 60_000 });
    const send = await rawSender(t, port);
    await send(offerFrom(7, { tcpPort: 6000 }));
    await waitFor(() => offers.length === 1, 'the first offer');
    await send(offerFrom(7, { tcpPort: 6001 }));
    await waitFor(() => offers.length === 2, 'the offer on the new port');
    assert.deepEqual(
      expired.map((o) => o.port),
      [6000],
    );
    assert.deepEqual(
      lan.peers().map((o) => o.port),
      [6001],
    );
  });

  test('a peer that stops announcing expires', T, async (t) => {
    const port = nextPort++;
    const watcher = await startLan(t, port, { id: 1 }, { intervalMs: 50, expiryMs: 1_000 });
    const leaving = await startLan(t, port, { id: 2 }, { intervalMs: 50 });
    await waitFor(() => watcher.lan.peers().length === 1, 'the offer of the peer that will leave');
    await leaving.lan.close();
    await leaving.lan.close(); // idempotent
    await waitFor(() => watcher.lan.peers().length === 0, 'the expiry');
    assert.ok(watcher.expired.length >= 1);
    assert.ok(watcher.expired.every((offer) => offer.peerId === peerId(2).toString('hex')));
  });

  test('garbage, truncated, corrupted and oversized datagrams are counted and ignored', T, async (t) => {
    const port = nextPort++;
    const { lan, offers } = await startLan(t, port, { id: 1 }, { intervalMs: 60_000 });
    const send = await rawSender(t, port);
    const valid = offerFrom(7, { files: [file(1)] });
    const bad = [
      Buffer.from('hello'),
      Buffer.alloc(0),
      valid.subarray(0, valid.length - 1),
      Buffer.concat([valid, Buffer.from([0])]),
      Buffer.concat([Buffer.from('XXXX'), valid.subarray(4)]),
      Buffer.concat([valid, Buffer.alloc(MAX_LAN_DATAGRAM + 1 - valid.length)]),
      Buffer.alloc(8_000, 0x53),
    ];
    for (const datagram of bad) await send(datagram);
    await waitFor(() => lan.stats().garbage === bad.length, 'every bad datagram to be counted');
    assert.deepEqual(offers, []);
    await send(valid);
    await waitFor(() => offers.length === 1, 'a good offer after the garbage');
    assert.equal(lan.stats().garbage, bad.length);
  });

  test('at most maxNewPeersPerInterval new peers per interval; the others when they repeat', T, async (t) => {
    // A long interval: the whole burst falls in one window.
    const strictPort = nextPort++;
    const strict = await startLan(
      t,
      strictPort,
      { id: 1 },
      { intervalMs: 60_000, maxNewPeersPerInterval: 5 },
    );
    const sendStrict = await rawSender(t, strictPort);
    for (let id = 10; id < 30; id++) await sendStrict(offerFrom(id));
    await waitFor(() => strict.lan.stats().offers === 20, 'the 20 offers to arrive');
    assert.equal(strict.offers.length, 5);
    assert.equal(strict.lan.peers().length, 5);
    assert.equal(strict.lan.stats().refusedNewPeers, 15);

    // A short interval: repeated offers get everyone in, a few per interval.
    const port = nextPort++;
    const lenient = await startLan(t, port, { id: 1 }, { intervalMs: 100, maxNewPeersPerInterval: 5 });
    const send = await rawSender(t, port);
    await waitFor(
      async () => {
        for (let id = 10; id < 30; id++) await send(offerFrom(id));
        return lenient.lan.peers().length === 20;
      },
      'all 20 peers, over several intervals',
      15_000,
      100,
    );
    assert.equal(lenient.offers.length, 20);
  });

  test('a listener that throws does not stop discovery', T, async (t) => {
    const port = nextPort++;
    const { lan, offers } = await startLan(t, port, { id: 1 }, { intervalMs: 60_000 });
    lan.on('offer', () => {
      throw new Error('a buggy listener');
    });
    const send = await rawSender(t, port);
    await send(offerFrom(7));
    await send(offerFrom(8));
    await waitFor(() => offers.length === 2, 'both offers despite the failing listener');
    assert.equal(lan.peers().length, 2);
  });

  test('at most maxPeers peers are remembered', T, async (t) => {
    const port = nextPort++;
    const { lan, offers } = await startLan(t, port, { id: 1 }, { intervalMs: 60_000, maxPeers: 3 });
    const send = await rawSender(t, port);
    for (let id = 10; id < 20; id++) await send(offerFrom(id));
    await waitFor(() => lan.stats().offers === 10, 'the 10 offers to arrive');
    assert.equal(lan.peers().length, 3);
    assert.equal(offers.length, 3);
    assert.equal(lan.stats().refusedNewPeers, 7);
  });

  test('a flood of datagrams is read at a bounded rate, the rest dropped unread', T, async (t) => {
    const port = nextPort++;
    const rate = 20;
    const { lan } = await startLan(t, port, { id: 1 }, { intervalMs: 60_000, maxDatagramsPerSecond: rate });
    const send = await rawSender(t, port);
    const begun = Date.now();
    for (let i = 0; i < 100; i++) await send(Buffer.from(`flood ${i}`));
    // 101: the flood and our own announcement.
    await waitFor(() => lan.stats().received >= 101, 'the flood to arrive');
    const seconds = (Date.now() - begun) / 1000;
    const { received, rateLimited, garbage, ownEchoes } = lan.stats();
    assert.equal(garbage + rateLimited + ownEchoes, received);
    assert.ok(garbage <= rate + Math.ceil(seconds * rate) + 1, `${garbage} read in ${seconds} s`);
    assert.ok(rateLimited >= 100 - garbage, `${rateLimited} dropped`);
  });

  test('a big catalogue rotates through successive offers, and a change starts afresh', T, async (t) => {
    const port = nextPort++;
    const watcher = await startLan(t, port, { id: 1 }, { intervalMs: 60_000 });
    let shared = Array.from({ length: 100 }, (_, i) => file(i, `a-rather-long-file-name-${i}.bin`));
    const announcer = await startLan(t, port, { id: 2 }, { offers: () => shared, intervalMs: 20 });
    const full = await waitFor(() => {
      const offer = watcher.lan.peers()[0];
      return offer && offer.files.length === MAX_LAN_FILES_PER_PEER ? offer : null;
    }, 'the rotation to fill the file list');
    assert.equal(full.totalFiles, 100);
    assert.ok(watcher.offers.length > 1, 'the list grew over several offers');
    shared = [file(500)];
    announcer.lan.announceNow();
    const fresh = await waitFor(() => {
      const offer = watcher.lan.peers()[0];
      return offer && offer.totalFiles === 1 ? offer : null;
    }, 'the changed catalogue');
    assert.deepEqual(
      fresh.files.map((f) => f.name),
      ['file-500.bin'],
    );
  });

  test('start fails cleanly on a bad interface; close before start and twice is fine', T, async (t) => {
    const lan = new LanDiscovery({
      self: { peerId: peerId(1), name: 'x', port: 1 },
      offers: () => [],
      port: nextPort++,
      interfaceAddress: '192.0.2.1', // no such interface here
    });
    t.after(() => lan.close());
    await assert.rejects(lan.start(), { code: 'ERR_IO' });
    await lan.close();
    const unused = new LanDiscovery({ self: { peerId: peerId(1), name: 'x', port: 1 }, offers: () => [] });
    await unused.close();
    await unused.close();
    await assert.rejects(unused.start(), { code: 'ERR_CLOSED' });
    assert.throws(
      () => new LanDiscovery({ self: { peerId: Buffer.alloc(3), name: 'x', port: 1 }, offers: () => [] }),
      { code: 'ERR_INVALID_ARGUMENT' },
    );
  });

  test("members of a private swarm read each other's sealed offers", T, async (t) => {
    const port = nextPort++;
    const key = await swarmKey('the first swarm secret');
    const files = [file(1), file(2)];
    const a = await startLan(t, port, { id: 1 }, { swarmKey: key, offers: () => files });
    const b = await startLan(t, port, { id: 2 }, { swarmKey: key });
    await waitFor(() => a.offers.length === 1 && b.offers.length === 1, 'each member to see the other');
    assert.equal(b.offers[0]!.peerId, peerId(1).toString('hex'));
    assert.equal(b.offers[0]!.port, 4001);
    assert.equal(b.offers[0]!.host, LOOPBACK);
    assert.deepEqual(
      b.offers[0]!.files.map((f) => [f.fileId, f.name, f.size]),
      files.map((f) => [f.fileId.toString('hex'), f.name, f.size]),
    );
    assert.equal(b.lan.stats().unauthentic, 0);
    assert.equal(b.lan.stats().stale, 0);
  });

  test(
    'an open node, a member of another swarm and an eavesdropper learn nothing of a sealed offer',
    T,
    async (t) => {
      const port = nextPort++;
      const heard = await rawListener(t, port);
      const secretName = 'the-secret-plan.pdf';
      const member = await startLan(
        t,
        port,
        { id: 1, name: 'member-name' },
        { swarmKey: await swarmKey('the first swarm secret'), offers: () => [file(1, secretName)] },
      );
      const open = await startLan(t, port, { id: 2 });
      const stranger = await startLan(
        t,
        port,
        { id: 3 },
        { swarmKey: await swarmKey('another swarm secret') },
      );
      await waitFor(
        () =>
          open.lan.stats().sealedIgnored >= 3 &&
          stranger.lan.stats().unauthentic >= 3 &&
          member.lan.stats().openIgnored >= 3 &&
          member.lan.stats().unauthentic >= 3,
        'each to hear and ignore three offers it cannot or must not read',
      );
      assert.deepEqual(open.lan.peers(), []);
      assert.deepEqual(open.offers, []);
      assert.deepEqual(stranger.lan.peers(), []);
      assert.deepEqual(member.lan.peers(), [], 'a member connects to no open node nor a stranger');
      for (const { lan } of [open, stranger, member]) assert.equal(lan.stats().garbage, 0);
      const fromMember = heard.filter((d) => d.subarray(0, 4).toString('latin1') === 'SWSS');
      assert.ok(fromMember.length >= 1, 'the eavesdropper heard sealed offers');
      for (const datagram of fromMember) {
        assert.ok(datagram.length <= MAX_LAN_DATAGRAM);
        for (const secret of [Buffer.from(secretName), Buffer.from('member-name'), peerId(1)]) {
          assert.equal(datagram.indexOf(secret), -1, 'a sealed datagram shows what it carries');
        }
      }
    },
  );

  test('a member refuses a sealed offer with a flipped byte, and reads the intact one', T, async (t) => {
    const port = nextPort++;
    const key = await swarmKey('the first swarm secret');
    const { lan, offers } = await startLan(t, port, { id: 1 }, { swarmKey: key, intervalMs: 60_000 });
    const send = await rawSender(t, port);
    const sealed = sealLanOffer(
      key.subkey(SEALED_LAN_OFFER_PURPOSE),
      offerFrom(7, { files: [file(1)] }),
      Date.now(),
    );
    for (const at of [4, 10, 40, sealed.length - 1]) {
      const flipped = Buffer.from(sealed);
      flipped[at]! ^= 0x01;
      await send(flipped);
    }
    await waitFor(() => lan.stats().unauthentic + lan.stats().garbage === 4, 'the four flipped datagrams');
    assert.equal(lan.stats().garbage, 1, 'the version byte flipped: not a version we read');
    assert.deepEqual(offers, []);
    await send(sealed);
    await waitFor(() => offers.length === 1, 'the intact offer');
    assert.equal(lan.peers()[0]!.peerId, peerId(7).toString('hex'));
  });

  test(
    'a member refuses replayed sealed offers: too old, too far ahead, or older than the last',
    T,
    async (t) => {
      const port = nextPort++;
      const key = await swarmKey('the first swarm secret');
      const sealKey = key.subkey(SEALED_LAN_OFFER_PURPOSE);
      const { lan, offers } = await startLan(t, port, { id: 1 }, { swarmKey: key, intervalMs: 60_000 });
      const send = await rawSender(t, port);
      const now = Date.now();
      await send(
        sealLanOffer(sealKey, offerFrom(7, { tcpPort: 6000 }), now - LAN_SEALED_OFFER_MAX_SKEW_MS - 10_000),
      );
      await send(
        sealLanOffer(sealKey, offerFrom(8, { tcpPort: 6000 }), now + LAN_SEALED_OFFER_MAX_SKEW_MS + 10_000),
      );
      await waitFor(() => lan.stats().stale === 2, 'the two offers out of their time');
      assert.deepEqual(offers, []);
      // A fresh offer, then one sealed earlier (a replay within the window) naming another port.
      await send(sealLanOffer(sealKey, offerFrom(7, { tcpPort: 6001 }), now));
      await waitFor(() => offers.length === 1, 'the fresh offer');
      await send(sealLanOffer(sealKey, offerFrom(7, { tcpPort: 6000 }), now - 1_000));
      await waitFor(() => lan.stats().stale === 3, 'the earlier offer refused');
      assert.deepEqual(
        lan.peers().map((p) => p.port),
        [6001],
      );
      assert.equal(offers.length, 1);
    },
  );

  test('a big catalogue rotates through sealed offers that fit the datagram', T, async (t) => {
    const port = nextPort++;
    const heard = await rawListener(t, port);
    const key = await swarmKey('the first swarm secret');
    const watcher = await startLan(t, port, { id: 1 }, { swarmKey: key, intervalMs: 60_000 });
    const shared = Array.from({ length: 100 }, (_, i) => file(i, `a-rather-long-file-name-${i}.bin`));
    await startLan(t, port, { id: 2 }, { swarmKey: key, offers: () => shared, intervalMs: 20 });
    const full = await waitFor(() => {
      const offer = watcher.lan.peers()[0];
      return offer && offer.files.length === MAX_LAN_FILES_PER_PEER ? offer : null;
    }, 'the rotation to fill the file list');
    assert.equal(full.totalFiles, 100);
    const sealed = heard.filter((d) => d.subarray(0, 4).toString('latin1') === 'SWSS');
    assert.ok(sealed.length > 1);
    assert.ok(sealed.every((d) => d.length <= MAX_LAN_DATAGRAM));
    assert.ok(Math.max(...sealed.map((d) => d.length)) > MAX_LAN_DATAGRAM - 100, 'datagrams are filled');
  });
}
