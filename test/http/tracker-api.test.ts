import { credentialsOfLabel } from '../helpers/secure.js';
/** The tracker's dashboard: every route, against a real tracker with real peer sessions. */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { FileAvailability } from '../../src/http/availability.js';
import type { CatalogFile, TrackerPeerView, TrackerSummary } from '../../src/http/tracker-dashboard.js';
import type { TrackerClient } from '../../src/tracker/client.js';
import { connectClient, fakeManifest, idOf } from '../tracker/fixtures.js';
import { EventStream, errorCodeOf, request, startTrackerWithDashboard } from './fixtures.js';

const T = { timeout: 30_000 };
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';

async function peerClient(
  t: TestContext,
  port: number,
  name: string,
  servePort: number,
): Promise<TrackerClient> {
  const client = await connectClient(t, port, { credentials: await credentialsOfLabel(name) });
  await client.register({ name, port: servePort });
  return client;
}

/** A tracker with its dashboard; alice seeds a movie and notes, bob holds chunks 0-2 of the movie. */
async function swarm(t: TestContext) {
  const setup = await startTrackerWithDashboard(t, { swarmIntervalMs: 50, catalogIntervalMs: 50 });
  const alice = await peerClient(t, setup.trackerPort, 'alice', 7001);
  const bob = await peerClient(t, setup.trackerPort, HOSTILE_NAME, 7002);
  const movie = fakeManifest('movie.mkv', 'movie', 10);
  const notes = fakeManifest('notes.txt', 'notes', 1);
  await alice.announce([movie, notes]);
  await bob.have(movie.id, [0, 1, 2]);
  return { ...setup, alice, bob, movie, notes, movieId: movie.id.toString('hex') };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await request(url);
  assert.equal(response.status, 200, `${url}: ${response.text.slice(0, 300)}`);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  return response.json as T;
}

describe('tracker dashboard API', () => {
  test('GET /api/summary', T, async (t) => {
    const { url } = await swarm(t);
    const summary = await getJson<TrackerSummary>(`${url}/api/summary`);
    assert.equal(summary.peers, 2);
    assert.equal(summary.files, 2);
    assert.equal(summary.connections, 2);
    assert.ok(Date.now() - Date.parse(summary.startedAt) < 60_000);
  });

  test('GET /api/files: the catalog, searchable, with sources and completeness', T, async (t) => {
    const { url, movieId, alice, movie } = await swarm(t);
    const all = await getJson<{ total: number; files: CatalogFile[] }>(`${url}/api/files`);
    assert.equal(all.total, 2);
    assert.deepEqual(
      all.files.find((f) => f.id === movieId),
      { id: movieId, name: 'movie.mkv', size: movie.size, chunks: 10, seeders: 1, peers: 2, completeness: 1 },
    );
    const found = await getJson<{ total: number; files: CatalogFile[] }>(`${url}/api/files?q=MOV`);
    assert.deepEqual(
      found.files.map((f) => f.name),
      ['movie.mkv'],
    );
    const page = await getJson<{ total: number; files: CatalogFile[] }>(`${url}/api/files?limit=1`);
    assert.equal(page.files.length, 1);
    assert.equal(page.total, 2);
    for (const bad of ['limit=0', 'limit=1001', 'limit=x', `q=${'a'.repeat(256)}`]) {
      const response = await request(`${url}/api/files?${bad}`);
      assert.equal(response.status, 400, bad);
      assert.equal(errorCodeOf(response), 'ERR_INVALID_ARGUMENT');
    }
    // Without a seeder, completeness is the share of chunks some peer still holds.
    await alice.unshare(movie.id);
    const after = await getJson<{ files: CatalogFile[] }>(`${url}/api/files?q=movie`);
    assert.equal(after.files[0]?.completeness, 0.3);
    assert.equal(after.files[0]?.seeders, 0);
  });

  test("GET /api/files/:id: the file's swarm, per chunk and per peer", T, async (t) => {
    const { url, movieId, movie } = await swarm(t);
    const map = await getJson<FileAvailability>(`${url}/api/files/${movieId.toUpperCase()}`);
    assert.equal(map.id, movieId);
    assert.equal(map.name, 'movie.mkv');
    assert.equal(map.size, movie.size);
    assert.equal(map.chunkSize, movie.chunkSize);
    assert.equal(map.chunks, 10);
    assert.equal(map.holders, 2);
    assert.equal(map.seeders, 1);
    assert.deepEqual(map.counts, [2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(map.minCount, 1);
    assert.equal(map.chunksAvailable, 10);
    assert.deepEqual(
      map.peers.map((p) => [p.name, p.address, p.chunks, p.bitfield]),
      [
        ['alice', '127.0.0.1:7001', 10, Buffer.from([0xff, 0xc0]).toString('base64')],
        [HOSTILE_NAME, '127.0.0.1:7002', 3, Buffer.from([0xe0, 0x00]).toString('base64')],
      ],
    );
    assert.equal(map.peers[0]?.peerId, idOf('alice').toString('hex'));

    const unknown = await request(`${url}/api/files/${'0'.repeat(64)}`);
    assert.equal(unknown.status, 404);
    assert.equal(errorCodeOf(unknown), 'ERR_UNKNOWN_FILE');
    const malformed = await request(`${url}/api/files/not-an-id`);
    assert.equal(malformed.status, 400);
    assert.equal(errorCodeOf(malformed), 'ERR_INVALID_ARGUMENT');
  });

  test(
    'GET /api/peers: name, id, address, files, bytes served (from heartbeats), connected since',
    T,
    async (t) => {
      const { url, alice } = await swarm(t);
      const { total, peers } = await getJson<{ total: number; peers: TrackerPeerView[] }>(`${url}/api/peers`);
      assert.equal(total, 2);
      assert.deepEqual(
        peers.map((p) => [p.name, p.peerId, p.address, p.files, p.uploadedBytes]),
        [
          ['alice', idOf('alice').toString('hex'), '127.0.0.1:7001', 2, 0],
          [HOSTILE_NAME, idOf(HOSTILE_NAME).toString('hex'), '127.0.0.1:7002', 1, 0],
        ],
      );
      for (const peer of peers) assert.ok(Date.now() - Date.parse(peer.connectedAt) < 60_000);

      await alice.ping(123_456_789_012);
      const updated = await getJson<{ peers: TrackerPeerView[] }>(`${url}/api/peers`);
      assert.equal(updated.peers[0]?.uploadedBytes, 123_456_789_012);
      assert.equal((await getJson<{ peers: unknown[] }>(`${url}/api/peers?limit=1`)).peers.length, 1);
      assert.equal((await request(`${url}/api/peers?limit=0`)).status, 400);
    },
  );

  test('GET /metrics: peers, files, requests by kind, refusals, bytes announced', T, async (t) => {
    const { url, bob, movie, notes } = await swarm(t);
    await assert.rejects(bob.have(idOf('nothing'), [0]), { code: 'ERR_UNKNOWN_FILE' });
    const response = await request(`${url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    const lines = response.text.split('\n');
    const expected = [
      'swarmshare_tracker_peers 2',
      'swarmshare_tracker_files 2',
      'swarmshare_tracker_connections 2',
      'swarmshare_tracker_requests_total{kind="register"} 2',
      'swarmshare_tracker_requests_total{kind="announce"} 1',
      'swarmshare_tracker_requests_total{kind="have"} 2',
      'swarmshare_tracker_refusals_total{kind="have",code="ERR_UNKNOWN_FILE"} 1',
      `swarmshare_tracker_announced_bytes_total ${movie.size + notes.size}`,
    ];
    for (const line of expected) assert.ok(lines.includes(line), `${line} in\n${response.text}`);
  });

  test('the page: the catalog and the peers rendered, names from the network escaped', T, async (t) => {
    const { url, movieId } = await swarm(t);
    const response = await request(`${url}/`);
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/html/);
    assert.match(response.text, /<title>swarmshare tracker<\/title>/);
    assert.ok(response.text.includes(`data-file="${movieId}">movie.mkv</button>`));
    assert.ok(response.text.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(!response.text.includes(HOSTILE_NAME), 'the raw markup never reaches the page');
    assert.match(response.text, /<script type="module" src="\/assets\/tracker.js"><\/script>/);
    for (const asset of ['tracker.js', 'common.js', 'map.js', 'style.css']) {
      const file = await request(`${url}/assets/${asset}`);
      assert.equal(file.status, 200, asset);
      assert.match(String(file.headers['content-type']), asset.endsWith('.js') ? /javascript/ : /text\/css/);
    }
    assert.equal(errorCodeOf(await request(`${url}/assets/secrets.txt`)), 'ERR_NOT_FOUND');
    assert.equal(errorCodeOf(await request(`${url}/assets/..%2Fpackage.json`)), 'ERR_NOT_FOUND');
  });

  test('unknown routes and methods answer a JSON error', T, async (t) => {
    const { url } = await startTrackerWithDashboard(t);
    const missing = await request(`${url}/api/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(errorCodeOf(missing), 'ERR_NOT_FOUND');
    const wrongMethod = await request(`${url}/api/files`, { method: 'DELETE' });
    assert.equal(wrongMethod.status, 404);
    assert.equal(errorCodeOf(wrongMethod), 'ERR_NOT_FOUND');
  });

  test('GET /api/events: catalog signals, and the swarm of a watched file as it fills in', T, async (t) => {
    const { url, trackerPort, movieId, movie } = await swarm(t);
    const watching = new EventStream(t, `${url}/api/events?file=${movieId}`);
    const browsing = new EventStream(t, `${url}/api/events`);
    // The watched file's swarm comes at once.
    const first = await watching.next<FileAvailability>('swarm');
    assert.deepEqual(first.counts, [2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(watching.headers['content-type'], 'text/event-stream; charset=utf-8');

    // A third peer fetches chunks: the map fills in, and the catalog changes.
    const carol = await peerClient(t, trackerPort, 'carol', 7003);
    for (let i = 0; i < 10; i++) await carol.have(movie.id, [i]);
    const full = await watching.next<FileAvailability>('swarm', (d) => d.minCount === 2);
    assert.deepEqual(full.counts, [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
    assert.equal(full.seeders, 2);
    await browsing.next<{ peers: number }>('catalog', (d) => d.peers === 3);
    assert.equal(browsing.count('swarm'), 0, 'only those watching a file get its swarm');
    // Ten HAVEs in a row: throttled, never one event each (the first, then one for the rest, and so on).
    assert.ok(watching.count('swarm') < 11, `${watching.count('swarm')} swarm events`);

    // The peer leaves: the swarm shrinks back.
    carol.close();
    await watching.next<FileAvailability>('swarm', (d) => d.holders === 2 && d.counts[9] === 1);
  });

  test('GET /docs and /docs/openapi.json: the API described', T, async (t) => {
    const { url } = await startTrackerWithDashboard(t);
    const spec = await getJson<{ openapi: string; paths: Record<string, unknown> }>(
      `${url}/docs/openapi.json`,
    );
    assert.equal(spec.openapi, '3.0.3');
    assert.deepEqual(Object.keys(spec.paths).sort(), [
      '/api/events',
      '/api/files',
      '/api/files/{id}',
      '/api/peers',
      '/api/summary',
      '/metrics',
    ]);
    const docs = await request(`${url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(docs.text, /\/api\/files\/\{id\}/);
    assert.match(docs.text, /href="\/docs\/openapi.json"/);
  });
});
