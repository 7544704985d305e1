/**
 * The dashboards in a real browser: headless Chromium (Debian's `chromium`) driven by
 * playwright-core. A tracker's page shows a file a peer shares; a second peer's page starts a
 * download of it, pauses and resumes it, and its progress bar reaches 100% while the tracker's
 * availability map fills in. Screenshots of both pages land in test-output/; the pages must log
 * no error to the browser console.
 *
 * Without /usr/bin/chromium the test says so and is skipped (SWARMSHARE_REQUIRE_BROWSER=1 makes it
 * fail instead, for CI). Never `npx playwright install`: the browser comes from the system.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startPeerDashboard } from '../../src/http/peer-dashboard.js';
import { startTrackerDashboard } from '../../src/http/tracker-dashboard.js';
import { PeerNode } from '../../src/peer/peer-node.js';
import { TrackerServer } from '../../src/tracker/server.js';
import { makeFile } from '../helpers/peer-fixtures.js';
import { tempDir } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Where screenshots go: test-output/ at the repository root (dist/test/e2e -> ../../..). */
const OUTPUT_DIR = fileURLToPath(new URL('../../../test-output/', import.meta.url));
const HOST = '127.0.0.1';
const HOSTILE_NAME = '<img src=x onerror=alert(1)>.txt';
/** 24 chunks of 256 KiB, sent at 1.5 MiB/s: a few seconds to watch. */
const MOVIE_SIZE = 6 * 1024 * 1024;
const UPLOAD_LIMIT = 1.5 * 1024 * 1024;

/** True if Chromium is here; otherwise the test is marked skipped with the reason (or fails, in CI). */
function browserAvailable(t: TestContext): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  const reason = `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  if (process.env.SWARMSHARE_REQUIRE_BROWSER === '1')
    throw new Error(`${reason}, and SWARMSHARE_REQUIRE_BROWSER=1`);
  t.diagnostic(`${reason}: the browser test is skipped`);
  t.skip(`${reason}: the browser test is skipped`);
  return false;
}

async function launch(t: TestContext): Promise<BrowserContext> {
  // A fresh profile each run (playwright passes it as --user-data-dir).
  const profile = await tempDir(t, 'swarmshare-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  t.after(() => context.close());
  return context;
}

/** Opens a page that records console errors and uncaught exceptions into `errors`. */
async function openPage(context: BrowserContext, url: string, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${url}: ${message.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`${url}: uncaught ${err.message}`));
  await page.goto(url);
  return page;
}

/**
 * Records, in the page, every value `read` takes as the element at `selector` changes: the
 * canvas's data-copies, or the text of a download's percentage. Page code, so it is a string
 * (this project compiles without the DOM's types).
 */
async function recordChanges(page: Page, selector: string, read: 'pct' | 'copies'): Promise<void> {
  const valueOf =
    read === 'copies'
      ? '(target) => target.dataset.copies'
      : "(target) => target.querySelector('.pct')?.textContent";
  await page.evaluate(`(() => {
    const seen = (window.seen = []);
    const target = document.querySelector(${JSON.stringify(selector)});
    const value = ${valueOf};
    new MutationObserver(() => {
      const v = value(target);
      if (v !== undefined && v !== null && seen[seen.length - 1] !== v) seen.push(v);
    }).observe(target, { attributes: true, childList: true, subtree: true, characterData: true });
  })()`);
}

function seenValues(page: Page): Promise<string[]> {
  return page.evaluate('window.seen') as Promise<string[]>;
}

test('the dashboards in Chromium: a download watched from both sides', { timeout: 90_000 }, async (t) => {
  if (!browserAvailable(t)) return;
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });

  // A tracker with its dashboard; a seeder sharing movie.bin (and a file whose name is markup);
  // a downloader with its dashboard. Loopback only, no LAN.
  // Quick heartbeats, so that the bytes each peer has served reach the tracker within the test.
  const tracker = new TrackerServer({ heartbeatMs: 250, expiryMs: 10_000 });
  t.after(() => tracker.close());
  const trackerPort = (await tracker.listen(0, HOST)).port;
  const trackerDashboard = await startTrackerDashboard(tracker, { host: HOST });
  t.after(() => trackerDashboard.dashboard.close());
  const seedDir = await tempDir(t);
  await makeFile(seedDir, 'movie.bin', MOVIE_SIZE, 5);
  await makeFile(seedDir, HOSTILE_NAME, 2000, 6);
  const peerOptions = {
    host: HOST,
    lan: false,
    ephemeralIdentity: true,
    trackers: [{ host: HOST, port: trackerPort }],
  };
  const seeder = await PeerNode.start({
    ...peerOptions,
    dir: seedDir,
    name: 'seeder',
    uploadLimit: UPLOAD_LIMIT,
  });
  t.after(() => seeder.close());
  const downloader = await PeerNode.start({ ...peerOptions, dir: await tempDir(t), name: 'downloader' });
  t.after(() => downloader.close());
  await Promise.all([seeder.trackerReady(), downloader.trackerReady()]);
  const peerDashboard = await startPeerDashboard(downloader, { host: HOST });
  t.after(() => peerDashboard.dashboard.close());

  const context = await launch(t);
  const errors: string[] = [];

  // The tracker's page lists what the seeder shares; the markup in a name stays text.
  const trackerPage = await openPage(context, trackerDashboard.address.url, errors);
  await trackerPage.locator('#files-body tr', { hasText: 'movie.bin' }).waitFor();
  assert.equal(await trackerPage.locator('#files-body img').count(), 0, 'a name never becomes markup');
  await trackerPage.locator('#files-body', { hasText: HOSTILE_NAME }).waitFor();
  await trackerPage.locator('#live[data-state="live"]').waitFor();

  // Its swarm: 24 chunks, each held by the seeder alone.
  await trackerPage.getByRole('button', { name: 'movie.bin' }).click();
  const map = trackerPage.locator('#swarm-map');
  await trackerPage.locator('#swarm-map[data-chunks="24"][data-min-count="1"]').waitFor();
  await recordChanges(trackerPage, '#swarm-map', 'copies');

  // The downloader's page: start the download by name, pause it once its first chunk is in. (Paused
  // before any request went out, nothing would arrive while paused: the connection to the seeder,
  // a TLS handshake, can take a while on a loaded machine.)
  const peerPage = await openPage(context, peerDashboard.address.url, errors);
  await peerPage.locator('#live[data-state="live"]').waitFor();
  await recordChanges(peerPage, '#downloads-body', 'pct');
  await peerPage.locator('#get-input').fill('movie.bin');
  await peerPage.getByRole('button', { name: 'Download', exact: true }).click();
  const row = peerPage.locator('#downloads-body tr', { hasText: 'movie.bin' });
  await row.locator('progress:not([value="0"])').waitFor();
  await row.getByRole('button', { name: 'Pause' }).click();
  await peerPage.locator('#downloads-body tr[data-state="paused"]').waitFor();
  assert.equal(await peerPage.locator('#get-error').textContent(), '');

  // Paused part-way: the tracker's map shows the downloader holding some chunks, not all.
  await trackerPage.locator('#swarm-map[data-peers="2"]').waitFor();
  const partial = Number(await map.getAttribute('data-copies'));
  assert.ok(partial > 24 && partial < 48, `copies while paused: ${partial}`);
  await trackerPage.screenshot({
    path: path.join(OUTPUT_DIR, 'tracker-dashboard-paused.png'),
    fullPage: true,
  });
  await peerPage.screenshot({ path: path.join(OUTPUT_DIR, 'peer-dashboard-paused.png'), fullPage: true });

  // Resumed, the progress bar reaches 100% and the map fills in: every chunk held twice.
  await row.getByRole('button', { name: 'Resume' }).click();
  await peerPage.locator('#downloads-body tr[data-state="finished"]').waitFor({ timeout: 30_000 });
  assert.equal(await row.locator('progress').getAttribute('value'), '100');
  assert.equal(await row.locator('.pct').textContent(), '100%');
  await trackerPage.locator('#swarm-map[data-min-count="2"][data-copies="48"]').waitFor();

  // It was watched on the way, not only at the end.
  const progress = await seenValues(peerPage);
  assert.ok(
    progress.some((p) => p !== '0%' && p !== '100%'),
    `progress seen: ${progress.join(' ')}`,
  );
  const copies = (await seenValues(trackerPage)).map(Number);
  assert.ok(copies.filter((c) => c > 24 && c < 48).length >= 2, `copies seen: ${copies.join(' ')}`);
  assert.equal(copies[copies.length - 1], 48);

  // The downloaded file is now shared too, and the tracker's peers table shows both peers.
  await peerPage.locator('#shared-body tr', { hasText: 'movie.bin' }).waitFor();
  await trackerPage.locator('#peers-body tr', { hasText: 'downloader' }).waitFor();
  // The seeder has told the tracker (in its heartbeats) what it served: the whole file.
  await trackerPage
    .locator('#peers-body tr', { hasText: 'seeder' })
    .filter({ hasText: '6.00 MiB' })
    .waitFor();
  await trackerPage.screenshot({ path: path.join(OUTPUT_DIR, 'tracker-dashboard.png'), fullPage: true });
  await peerPage.screenshot({ path: path.join(OUTPUT_DIR, 'peer-dashboard.png'), fullPage: true });

  assert.deepEqual(errors, [], 'no errors in the browser console');
});
