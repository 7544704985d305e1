/**
 * The peer's dashboard and control API: every route, against real peers and a real tracker on
 * loopback.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { DownloadView, SharedFileView } from '../../src/http/peer-dashboard.js';
import { sha256File } from '../helpers/peer-fixtures.js';
import {
  EventStream,
  errorCodeOf,
  fileIn,
  request,
  startDashboardOf,
  startPeer,
  startTracker,
  tempDir,
  waitFor,
} from './fixtures.js';

const T = { timeout: 40_000 };
const HOSTILE_NAME = '<img src=x onerror=alert(1)>.txt';
const MOVIE_SIZE = 2 * 1024 * 1024 + 5;

/**
 * A tracker; a seeder sharing movie.bin and two different files named dup.bin (uploading at
 * `uploadLimit`); a downloader sharing local.bin, with its dashboard.
 */
async function swarm(t: TestContext, uploadLimit?: number) {
  const { tracker } = await startTracker(t);
  const trackerPort = tracker.address()!.port;
  const seedDir = await tempDir(t);
  const movie = await fileIn(seedDir, 'movie.bin', MOVIE_SIZE, 11);
  await fileIn(seedDir, 'dup.bin', 1000, 1);
  await fs.mkdir(path.join(seedDir, 'sub'));
  await fileIn(path.join(seedDir, 'sub'), 'dup.bin', 1000, 2);
  const seeder = await startPeer(t, { dir: seedDir, trackerPort, name: 'seeder', uploadLimit });
  const dir = await tempDir(t);
  await fileIn(dir, 'local.bin', 3000);
  const node = await startPeer(t, { dir, trackerPort, name: 'downloader' });
  const dashboard = await startDashboardOf(t, node, { eventIntervalMs: 50 });
  return {
    tracker,
    seeder,
    node,
    dir,
    movie,
    url: dashboard.url,
    movieId: movie.manifest.id.toString('hex'),
  };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await request(url);
  assert.equal(response.status, 200, `${url}: ${response.text.slice(0, 300)}`);
  return response.json as T;
}

function post(url: string, body?: unknown): ReturnType<typeof request> {
  return request(url, { method: 'POST', ...(body === undefined ? {} : { body }) });
}

describe('peer dashboard API', () => {
  test('GET /api/status', T, async (t) => {
    const { url, node, dir } = await swarm(t);
    const status = await getJson<Record<string, unknown>>(`${url}/api/status`);
    assert.equal(status.peerId, node.peerIdHex);
    assert.equal(status.name, 'downloader');
    assert.equal(status.address, `127.0.0.1:${node.address.port}`);
    assert.equal(status.dir, await fs.realpath(dir));
    assert.equal(status.sharedFiles, 1);
    assert.equal(status.downloads, 0);
    assert.equal(status.uploadedBytes, 0);
    assert.deepEqual(status.trackers, [{ label: node.trackerStates()[0]!.label, connected: true }]);
  });

  test('shared files: list, share by path inside the folder only, unshare', T, async (t) => {
    const { url, dir, node } = await swarm(t);
    const events = new EventStream(t, `${url}/api/events`);
    await events.next('downloads');
    const listed = await getJson<{ total: number; files: SharedFileView[] }>(`${url}/api/shared`);
    assert.deepEqual(
      listed.files.map((f) => [f.name, f.path, f.size]),
      [['local.bin', 'local.bin', 3000]],
    );

    await fs.mkdir(path.join(dir, 'later'));
    const added = await fileIn(path.join(dir, 'later'), HOSTILE_NAME, 5000);
    const shared = await post(`${url}/api/shared`, { path: `later/${HOSTILE_NAME}` });
    assert.equal(shared.status, 201, shared.text);
    const [file] = (shared.json as { files: (SharedFileView & { refused: unknown })[] }).files;
    assert.deepEqual(file, {
      id: added.manifest.id.toString('hex'),
      name: HOSTILE_NAME,
      size: 5000,
      chunks: 1,
      path: `later/${HOSTILE_NAME}`,
      refused: null,
    });
    await events.next('shared');
    assert.equal(node.sharedFiles().length, 2);
    const page = await request(`${url}/`);
    assert.ok(page.text.includes('&lt;img src=x onerror=alert(1)&gt;.txt'));
    assert.ok(!page.text.includes(HOSTILE_NAME));

    const refusals: [unknown, number, string][] = [
      [{ path: '../outside.bin' }, 400, 'ERR_OUTSIDE_DIR'],
      [{ path: '/etc/hostname' }, 400, 'ERR_OUTSIDE_DIR'],
      [{ path: 'missing.bin' }, 404, 'ERR_NOT_FOUND'],
      [{ path: '.swarmshare' }, 400, 'ERR_OUTSIDE_DIR'],
      [{}, 400, 'ERR_INVALID_ARGUMENT'],
      [{ path: '' }, 400, 'ERR_INVALID_ARGUMENT'],
      [{ path: 'local.bin', extra: true }, 400, 'ERR_INVALID_ARGUMENT'],
      [{ path: ['a', 'b'] }, 400, 'ERR_INVALID_ARGUMENT'],
      ['{"path": ', 400, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [body, status, code] of refusals) {
      const response =
        typeof body === 'string'
          ? await request(`${url}/api/shared`, {
              method: 'POST',
              body,
              headers: { 'content-type': 'application/json' },
            })
          : await post(`${url}/api/shared`, body);
      assert.equal(response.status, status, `${JSON.stringify(body)}: ${response.text}`);
      assert.equal(errorCodeOf(response), code, JSON.stringify(body));
    }
    const plain = await request(`${url}/api/shared`, {
      method: 'POST',
      body: 'local.bin',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(plain.status, 415);
    assert.equal(errorCodeOf(plain), 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const huge = await post(`${url}/api/shared`, { path: 'x'.repeat(100_000) });
    assert.equal(huge.status, 413);
    assert.equal(errorCodeOf(huge), 'ERR_PAYLOAD_TOO_LARGE');

    const unshared = await request(`${url}/api/shared/local.bin`, { method: 'DELETE' });
    assert.equal(unshared.status, 200);
    assert.equal((unshared.json as { file: SharedFileView }).file.name, 'local.bin');
    const again = await request(`${url}/api/shared/local.bin`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(errorCodeOf(again), 'ERR_NOT_FOUND');
    const byId = await request(`${url}/api/shared/${file!.id.slice(0, 10)}`, { method: 'DELETE' });
    assert.equal(byId.status, 200);
    assert.equal((await getJson<{ total: number }>(`${url}/api/shared`)).total, 0);
  });

  test('GET /api/catalog: what the swarm offers, searchable', T, async (t) => {
    const { url, movieId } = await swarm(t);
    const all = await getJson<{ total: number; files: { id: string; name: string; seeders: number }[] }>(
      `${url}/api/catalog`,
    );
    assert.deepEqual(all.files.map((f) => f.name).sort(), ['dup.bin', 'dup.bin', 'local.bin', 'movie.bin']);
    const found = await getJson<{
      files: { id: string; name: string; seeders: number }[];
      unreachable: unknown[];
    }>(`${url}/api/catalog?q=MOVIE`);
    assert.deepEqual(found.files, [
      { id: movieId, name: 'movie.bin', size: MOVIE_SIZE, chunks: 9, seeders: 1, peers: 1 },
    ]);
    assert.deepEqual(found.unreachable, []);
  });

  test('downloads: start by name, pause, resume, watch it finish with bytes per source', T, async (t) => {
    // The seeder uploads slowly enough for the download to be paused half-way.
    const { url, movieId, movie, seeder, dir } = await swarm(t, 512 * 1024);
    const events = new EventStream(t, `${url}/api/events`);
    await events.next('downloads');

    const started = await post(`${url}/api/downloads`, { file: 'movie.bin' });
    assert.equal(started.status, 202, started.text);
    const { download } = started.json as { download: DownloadView };
    assert.equal(download.id, movieId);
    assert.equal(download.name, 'movie.bin');
    assert.equal(download.size, MOVIE_SIZE);
    assert.equal(download.chunks, 9);
    assert.equal(download.state, 'running');
    assert.equal(download.endedAt, null);
    const twice = await post(`${url}/api/downloads`, { file: movieId });
    assert.equal(twice.status, 409);
    assert.equal(errorCodeOf(twice), 'ERR_IN_PROGRESS', 'already downloading');

    const paused = await post(`${url}/api/downloads/${movieId}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal((paused.json as { download: DownloadView }).download.state, 'paused');
    const seen = await events.next<{ downloads: DownloadView[] }>(
      'downloads',
      (d) => d.downloads[0]?.state === 'paused',
    );
    assert.equal(seen.downloads[0]?.etaSeconds, null);
    const listed = await getJson<{ downloads: DownloadView[] }>(`${url}/api/downloads`);
    assert.equal(listed.downloads[0]?.state, 'paused');

    const resumed = await post(`${url}/api/downloads/${movieId.toUpperCase()}/resume`);
    assert.equal((resumed.json as { download: DownloadView }).download.state, 'running');
    const done = await events.next<{ downloads: DownloadView[] }>(
      'downloads',
      (d) => d.downloads[0]?.state === 'finished',
    );
    const finished = done.downloads[0]!;
    assert.equal(finished.bytes, MOVIE_SIZE);
    assert.equal(finished.verifiedChunks, 9);
    assert.equal(finished.savedAs, 'movie.bin');
    assert.equal(finished.error, null);
    assert.ok(finished.endedAt);
    assert.deepEqual(
      finished.sources.map((s) => [s.peerId, s.name, s.bytes, s.connected]),
      [[seeder.peerIdHex, 'seeder', MOVIE_SIZE, false]],
    );
    assert.equal(await sha256File(path.join(dir, 'movie.bin')), movie.sha256);
    // On the way: progress, with a speed, before the end.
    assert.ok(
      events.events.some((e) => {
        const d = (e.data as { downloads?: DownloadView[] }).downloads?.[0];
        return d?.state === 'running' && d.bytes > 0 && d.bytes < MOVIE_SIZE && d.bytesPerSecond > 0;
      }),
      'a download event in the middle',
    );
    const after = await getJson<{ downloads: DownloadView[] }>(`${url}/api/downloads`);
    assert.equal(after.downloads[0]?.state, 'finished');

    // A finished download can no longer be paused.
    const late = await post(`${url}/api/downloads/${movieId}/pause`);
    assert.equal(late.status, 404);
    assert.equal(errorCodeOf(late), 'ERR_NOT_FOUND');
  });

  test('downloads refused: unknown, ambiguous, malformed', T, async (t) => {
    const { url } = await swarm(t);
    const cases: [string, unknown, number, string][] = [
      ['/api/downloads', { file: 'nothing.bin' }, 404, 'ERR_NOT_FOUND'],
      ['/api/downloads', { file: 'dup.bin' }, 409, 'ERR_AMBIGUOUS_NAME'],
      ['/api/downloads', { file: '' }, 400, 'ERR_INVALID_ARGUMENT'],
      ['/api/downloads', {}, 400, 'ERR_INVALID_ARGUMENT'],
      [`/api/downloads/${'ab'.repeat(32)}/pause`, undefined, 404, 'ERR_NOT_FOUND'],
      [`/api/downloads/${'ab'.repeat(32)}/resume`, undefined, 404, 'ERR_NOT_FOUND'],
      ['/api/downloads/abc/pause', undefined, 400, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [route, body, status, code] of cases) {
      const response = await post(`${url}${route}`, body);
      assert.equal(response.status, status, `${route} ${JSON.stringify(body)}: ${response.text}`);
      assert.equal(errorCodeOf(response), code);
    }
    assert.deepEqual((await getJson<{ downloads: unknown[] }>(`${url}/api/downloads`)).downloads, []);
  });

  test('GET /api/peers: the peers in our swarms', T, async (t) => {
    const { url, seeder, node } = await swarm(t);
    const dir = node.folder.dir;
    // The downloader shares local.bin only; the seeder is in no swarm of ours until we fetch its file.
    await fs.copyFile(path.join(seeder.folder.dir, 'movie.bin'), path.join(dir, 'movie.bin'));
    await post(`${url}/api/shared`, { path: 'movie.bin' });
    const { peers } = await getJson<{
      peers: { peerId: string; name: string; file: string; chunks: number }[];
    }>(`${url}/api/peers`);
    const fromSeeder = peers.find((p) => p.peerId === seeder.peerIdHex && p.file === 'movie.bin');
    assert.deepEqual(fromSeeder && [fromSeeder.name, fromSeeder.chunks], ['seeder', 9]);
  });

  test('the page renders the downloads, the shared files and the status', T, async (t) => {
    const { url } = await swarm(t);
    const page = await request(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>swarmshare peer downloader<\/title>/);
    assert.match(page.text, /data-unshare="[0-9a-f]{64}"/);
    assert.match(page.text, /No downloads yet\./);
    assert.match(page.text, /<script type="module" src="\/assets\/peer.js"><\/script>/);
    await waitFor(async () => (await request(`${url}/assets/peer.js`)).status === 200, 'the script');
  });

  test('GET /docs/openapi.json lists every route of the control API', T, async (t) => {
    const { url } = await swarm(t);
    const spec = await getJson<{ paths: Record<string, Record<string, unknown>> }>(
      `${url}/docs/openapi.json`,
    );
    const operations = Object.entries(spec.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    assert.deepEqual(operations.sort(), [
      'DELETE /api/shared/{file}',
      'GET /api/catalog',
      'GET /api/downloads',
      'GET /api/events',
      'GET /api/peers',
      'GET /api/shared',
      'GET /api/status',
      'POST /api/downloads',
      'POST /api/downloads/{id}/pause',
      'POST /api/downloads/{id}/resume',
      'POST /api/shared',
    ]);
  });
});
