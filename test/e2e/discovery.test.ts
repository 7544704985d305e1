/**
 * Finding peers without a tracker, and with trackers that come and go, in real processes:
 * a swarm found from one known address, a known host that leaves and returns, a tracker killed
 * mid-download and restarted, and two trackers with one killed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli, startCli, startTrackerProcess, type CliProcess } from '../helpers/cli.js';
import { tempDir, waitFor, writeRandomFile } from '../helpers/wait.js';

const MiB = 1024 * 1024;

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

/** A port that was free a moment ago, for a process that must come back on the same port. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `swarmshare peer` on loopback with no LAN announcements (only loopback is ours here). */
async function startPeer(t: TestContext, dir: string, name: string, args: string[]): Promise<CliProcess> {
  const peer = startCli(t, [
    'peer',
    '--dir',
    dir,
    '--name',
    name,
    '--host',
    '127.0.0.1',
    '--no-lan',
    ...args,
  ]);
  await peer.waitForOutput(new RegExp(`peer ${name} .* serving on 127\\.0\\.0\\.1:(\\d+)`));
  return peer;
}

function servingPort(peer: CliProcess): number {
  return Number(/serving on 127\.0\.0\.1:(\d+)/.exec(peer.stdout)![1]);
}

interface GetSummary {
  id: string;
  path: string;
  size: number;
  sources: { peer: string; name: string; bytes: number }[];
}

function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

test('with no tracker, a peer given one address finds the swarm and downloads from three', async (t) => {
  const seedFile = path.join(await tempDir(t), 'album.flac');
  await writeRandomFile(seedFile, 48 * MiB, 11);
  const dirs = await Promise.all([1, 2, 3].map(() => tempDir(t)));
  await Promise.all(dirs.map((dir) => fs.link(seedFile, path.join(dir, 'album.flac'))));

  // s2 and s3 know only s1; the downloader knows only s1 too and learns the others by peer exchange.
  const s1 = await startPeer(t, dirs[0]!, 's1', ['--no-tracker']);
  const first = `127.0.0.1:${servingPort(s1)}`;
  await startPeer(t, dirs[1]!, 's2', ['--peer', first]);
  await startPeer(t, dirs[2]!, 's3', ['--peer', first]);
  await s1.waitForOutput(/connected to peer s2[\s\S]*|connected to peer s3[\s\S]*connected to peer s2/);

  const listed = await waitFor(async () => {
    const result = await runCli(['list', '--peer', first, '--json']);
    const files = (JSON.parse(result.stdout) as { files: { name: string; sources: number }[] }).files;
    return files.length === 1 && files[0]!.sources === 3 ? files : null;
  }, 'list --peer to show the file with three sources');
  assert.equal(listed[0]!.name, 'album.flac');

  const out = await tempDir(t);
  const got = await runCli(['get', 'album.flac', '--peer', first, '--out', out, '--json']);
  assert.equal(got.code, 0, got.stderr);
  const summary = lastJsonLine<GetSummary>(got.stdout);
  assert.equal(await sha256(summary.path), await sha256(seedFile));
  const contributors = summary.sources.filter((s) => s.bytes > 0).map((s) => s.name);
  assert.deepEqual(contributors.sort(), ['s1', 's2', 's3']);
});

test('a known host that leaves and comes back is reconnected', async (t) => {
  const hostDir = await tempDir(t);
  await fs.writeFile(path.join(hostDir, 'note.txt'), 'still here\n');
  const port = await freePort();
  const host = await startPeer(t, hostDir, 'wanderer', ['--no-tracker', '--port', String(port)]);
  const watcher = await startPeer(t, await tempDir(t), 'watcher', ['--peer', `127.0.0.1:${port}`]);
  await watcher.waitForOutput(/connected to peer wanderer/);

  host.kill('SIGKILL');
  await host.exited;
  await watcher.waitForOutput(/peer wanderer at 127\.0\.0\.1:\d+ left/);

  await startPeer(t, hostDir, 'wanderer', ['--no-tracker', '--port', String(port)]);
  await waitFor(
    () => (watcher.stdout.match(/connected to peer wanderer/g) ?? []).length >= 2,
    'a reconnection',
  );
  watcher.send('list');
  await watcher.waitForOutput(/note\.txt/);
});

test('a tracker killed mid-download: the download goes on from a known peer, and the peer re-announces when the tracker returns', async (t) => {
  const trackerPort = await freePort();
  const tracker = `127.0.0.1:${trackerPort}`;
  const first = await startTrackerProcess(t, ['--port', String(trackerPort)]);
  const seedDir = await tempDir(t);
  await writeRandomFile(path.join(seedDir, 'big.bin'), 8 * MiB, 5);
  // The seeder sends at 2 MiB/s, so the download lasts about four seconds.
  const seeder = await startPeer(t, seedDir, 'seeder', ['--tracker', tracker, '--upload-limit', '2M']);
  await seeder.waitForOutput(/connected to tracker/);

  const dir = await tempDir(t);
  const downloader = await startPeer(t, dir, 'fetcher', [
    '--tracker',
    tracker,
    '--peer',
    `127.0.0.1:${servingPort(seeder)}`,
  ]);
  await downloader.waitForOutput(/connected to tracker/);
  await downloader.waitForOutput(/connected to peer seeder/);
  downloader.send('get big.bin');

  // Once the tracker shows the downloader holding some chunks, the tracker dies.
  await waitFor(async () => {
    const result = await runCli(['list', '--tracker', tracker, '--json']);
    const files = (JSON.parse(result.stdout) as { files: { sources: number; peers: number }[] }).files;
    return files.length === 1 && files[0]!.sources === 1 && files[0]!.peers === 2;
  }, 'the downloader registered as a source of some chunks');
  first.proc.kill('SIGKILL');
  await first.proc.exited;

  await downloader.waitForOutput(/got big\.bin/, 60_000);
  assert.equal(await sha256(path.join(dir, 'big.bin')), await sha256(path.join(seedDir, 'big.bin')));

  // The tracker returns on the same port: both peers register again and announce what they hold.
  await startTrackerProcess(t, ['--port', String(trackerPort)]);
  await waitFor(
    async () => {
      const result = await runCli(['list', '--tracker', tracker, '--json']);
      const files = (JSON.parse(result.stdout || '{"files":[]}') as { files: { sources: number }[] }).files;
      return files.length === 1 && files[0]!.sources === 2;
    },
    'the file listed again with two whole sources',
    30_000,
  );
});

test('two trackers: one killed, the other carries the download', async (t) => {
  const t1 = await startTrackerProcess(t);
  const t2 = await startTrackerProcess(t);
  const seedDir = await tempDir(t);
  await writeRandomFile(path.join(seedDir, 'twice.bin'), 2 * MiB + 3, 9);
  const seeder = await startPeer(t, seedDir, 'seeder', ['--tracker', t1.address, '--tracker', t2.address]);
  await waitFor(
    () => (seeder.stdout.match(/connected to tracker/g) ?? []).length >= 2,
    'registration with both',
  );

  t1.proc.kill('SIGKILL');
  await t1.proc.exited;
  const out = await tempDir(t);
  const got = await runCli([
    'get',
    'twice.bin',
    '--tracker',
    t1.address,
    '--tracker',
    t2.address,
    '--out',
    out,
    '--json',
  ]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stderr, /warning: .*127\.0\.0\.1/, 'the dead tracker is named in a warning');
  const summary = lastJsonLine<GetSummary>(got.stdout);
  assert.equal(await sha256(summary.path), await sha256(path.join(seedDir, 'twice.bin')));
});

test('a hosts file is re-read as it changes: hosts added later are connected', async (t) => {
  const dirs = [await tempDir(t), await tempDir(t)];
  await fs.writeFile(path.join(dirs[0]!, 'first.txt'), 'from the first host\n');
  await fs.writeFile(path.join(dirs[1]!, 'second.txt'), 'from the second host\n');
  const first = await startPeer(t, dirs[0]!, 'first', ['--no-tracker']);
  const second = await startPeer(t, dirs[1]!, 'second', ['--no-tracker']);
  const hostsFile = path.join(await tempDir(t), 'hosts.txt');
  await fs.writeFile(hostsFile, '# known peers\n');
  const follower = await startPeer(t, await tempDir(t), 'follower', ['--hosts', hostsFile]);

  await fs.writeFile(hostsFile, `# known peers\n127.0.0.1:${servingPort(first)}\n`);
  await follower.waitForOutput(/connected to peer first/);
  // An editor replaces the file: the new list is read again.
  const replacement = `${hostsFile}.new`;
  await fs.writeFile(
    replacement,
    `127.0.0.1:${servingPort(first)}\nnot an address\n127.0.0.1:${servingPort(second)}\n`,
  );
  await fs.rename(replacement, hostsFile);
  await follower.waitForOutput(/connected to peer second/);
  follower.send('list');
  await follower.waitForOutput(/first\.txt[\s\S]*second\.txt|second\.txt[\s\S]*first\.txt/);
});
