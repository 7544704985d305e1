/**
 * The command line, end to end, in real processes: a tracker, peers with their shell on piped
 * stdin, and the one-shot list and get commands with their exit codes and JSON output.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli, startCli, startTrackerProcess } from '../helpers/cli.js';
import { tempDir, waitFor, writeRandomFile } from '../helpers/wait.js';

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

interface ListedFile {
  id: string;
  name: string;
  size: number;
  chunks: number;
  sources: number;
}

async function listJson(tracker: string): Promise<ListedFile[]> {
  const result = await runCli(['list', '--tracker', tracker, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { files: ListedFile[] }).files;
}

/**
 * Starts a peer process sharing `dir` and waits until it is registered with the tracker. Peers in
 * tests never announce on the LAN: on this host, only loopback traffic is ours to send.
 */
async function startSharingPeer(t: TestContext, tracker: string, dir: string, name: string) {
  const peer = startCli(t, [
    'peer',
    '--dir',
    dir,
    '--tracker',
    tracker,
    '--host',
    '127.0.0.1',
    '--name',
    name,
    '--no-lan',
  ]);
  await peer.waitForOutput(/connected to tracker/);
  return peer;
}

test('--version, --help for every command, and usage errors exit 2', async () => {
  const pkg = JSON.parse(await fs.readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  for (const command of ['tracker', 'peer', 'list', 'get', 'demo']) {
    const help = await runCli([command, '--help']);
    assert.equal(help.code, 0, `${command} --help`);
    assert.match(help.stdout, new RegExp(`Usage: swarmshare ${command}`));
  }
  const bad = await runCli(['get']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /missing required argument/);
  const badPort = await runCli(['tracker', '--port', '99999']);
  assert.equal(badPort.code, 2);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  const longName = await runCli(['peer', '--dir', '.', '--name', 'x'.repeat(65), '--no-lan']);
  assert.equal(longName.code, 2);
  assert.match(longName.stderr, /over 64 bytes/);
});

test('list and get: JSON output, bytes compared, and sources reported', async (t) => {
  const { address } = await startTrackerProcess(t);
  const seedDir = await tempDir(t);
  const outDir = await tempDir(t);
  await writeRandomFile(path.join(seedDir, 'movie.bin'), 3 * 1024 * 1024 + 17, 7);
  await fs.writeFile(path.join(seedDir, 'notes.txt'), 'hello swarm\n');
  await startSharingPeer(t, address, seedDir, 'seeder');

  const files = await waitFor(async () => {
    const listed = await listJson(address);
    return listed.length === 2 && listed.every((f) => f.sources === 1) ? listed : null;
  }, 'both files listed with one source');
  const movie = files.find((f) => f.name === 'movie.bin')!;
  assert.equal(movie.size, 3 * 1024 * 1024 + 17);
  assert.match(movie.id, /^[0-9a-f]{64}$/);
  assert.ok(movie.chunks >= 1);

  const got = await runCli(['get', 'movie.bin', '--tracker', address, '--out', outDir, '--json']);
  assert.equal(got.code, 0, got.stderr);
  const lines = got.stdout.trim().split('\n');
  const summary = JSON.parse(lines[lines.length - 1]!) as {
    id: string;
    name: string;
    size: number;
    path: string;
    seconds: number;
    sources: { peer: string; bytes: number }[];
  };
  assert.equal(summary.id, movie.id);
  assert.equal(summary.name, 'movie.bin');
  assert.equal(summary.size, movie.size);
  assert.equal(summary.path, path.join(await fs.realpath(outDir), 'movie.bin'));
  assert.ok(summary.seconds >= 0);
  assert.equal(
    summary.sources.reduce((sum, s) => sum + s.bytes, 0),
    movie.size,
  );
  assert.equal(await sha256(summary.path), await sha256(path.join(seedDir, 'movie.bin')));
  // The one-shot download leaves the file and nothing else.
  assert.deepEqual(await fs.readdir(outDir), ['movie.bin']);

  // By id prefix, into another folder, human output.
  const outDir2 = await tempDir(t);
  const byId = await runCli(['get', movie.id.slice(0, 10), '--tracker', address, '--out', outDir2]);
  assert.equal(byId.code, 0, byId.stderr);
  assert.match(byId.stdout, /got movie\.bin/);
  assert.equal(await sha256(path.join(outDir2, 'movie.bin')), await sha256(path.join(seedDir, 'movie.bin')));

  // By full id: no catalog lookup needed.
  const outDir3 = await tempDir(t);
  const byFullId = await runCli(['get', movie.id, '--tracker', address, '--out', outDir3]);
  assert.equal(byFullId.code, 0, byFullId.stderr);
  assert.equal(await sha256(path.join(outDir3, 'movie.bin')), await sha256(path.join(seedDir, 'movie.bin')));
});

test('get fails cleanly: unknown name, unreachable tracker, ambiguous name', async (t) => {
  const { address } = await startTrackerProcess(t);
  const outDir = await tempDir(t);

  const unknown = await runCli(['get', 'nothing-here', '--tracker', address, '--out', outDir]);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
  assert.match(unknown.stderr, /no file named "nothing-here"/);
  assert.deepEqual(await fs.readdir(outDir), []);

  const unreachable = await runCli(['get', 'x', '--tracker', '127.0.0.1:1', '--out', outDir]);
  assert.equal(unreachable.code, 1);
  assert.equal(unreachable.stderr.trim().split('\n').length, 1, unreachable.stderr);
  assert.match(unreachable.stderr, /127\.0\.0\.1:1/);
  const listUnreachable = await runCli(['list', '--tracker', '127.0.0.1:1']);
  assert.equal(listUnreachable.code, 1);

  // Two different files under one name: get asks for an id.
  const dirA = await tempDir(t);
  const dirB = await tempDir(t);
  await fs.writeFile(path.join(dirA, 'report.txt'), 'version A\n');
  await fs.writeFile(path.join(dirB, 'report.txt'), 'version B\n');
  await startSharingPeer(t, address, dirA, 'a');
  await startSharingPeer(t, address, dirB, 'b');
  await waitFor(async () => (await listJson(address)).length === 2, 'two report.txt entries');
  const ambiguous = await runCli(['get', 'report.txt', '--tracker', address, '--out', outDir]);
  assert.equal(ambiguous.code, 3);
  const ids = (await listJson(address)).map((f) => f.id);
  for (const id of ids) assert.ok(ambiguous.stderr.includes(id), 'lists every candidate id');
  assert.deepEqual(await fs.readdir(outDir), []);
});

test('a peer killed with SIGKILL disappears from list, and the tracker logs it all', async (t) => {
  const dir = await tempDir(t);
  const logFile = path.join(await tempDir(t), 'tracker.log');
  const { address } = await startTrackerProcess(t, ['--log', logFile]);
  await fs.writeFile(path.join(dir, 'ephemeral.txt'), 'here today\n');
  const peer = await startSharingPeer(t, address, dir, 'doomed');
  await waitFor(
    async () => (await listJson(address)).some((f) => f.name === 'ephemeral.txt'),
    'the file listed',
  );
  peer.kill('SIGKILL');
  await peer.exited;
  await waitFor(async () => (await listJson(address)).length === 0, 'the file gone from the catalog');

  // The structured log records the peer's whole life, one JSON object per line.
  const records = await waitFor(async () => {
    const lines = (await fs.readFile(logFile, 'utf8')).trim().split('\n');
    const parsed = lines.map((line) => JSON.parse(line) as { msg: string; peerName?: string });
    return parsed.some((r) => /removed|expired|disconnected|closed/i.test(r.msg) && r.peerName === 'doomed')
      ? parsed
      : null;
  }, 'the removal in the log');
  const messages = records.filter((r) => r.peerName === 'doomed').map((r) => r.msg);
  assert.ok(
    messages.some((m) => /registered/.test(m)),
    messages.join('; '),
  );
  assert.ok(
    messages.some((m) => /announced/.test(m)),
    messages.join('; '),
  );
});

test('the peer shell, driven by piped commands', async (t) => {
  const { address } = await startTrackerProcess(t);
  const seedDir = await tempDir(t);
  await writeRandomFile(path.join(seedDir, 'data.bin'), 1024 * 1024 + 5, 3);
  await startSharingPeer(t, address, seedDir, 'seeder');
  await waitFor(async () => (await listJson(address)).length === 1, 'the seed listed');

  const dir = await tempDir(t);
  const outside = await tempDir(t);
  await fs.writeFile(path.join(dir, 'mine.txt'), 'my own file\n');
  await fs.writeFile(path.join(outside, 'secret.txt'), 'not for sharing\n');
  const script = [
    'help',
    'list',
    'search data',
    'get data.bin',
    'share mine.txt',
    `share ${path.join(outside, 'secret.txt')}`,
    'status',
    'peers',
    'unshare mine.txt',
    'bogus',
    'exit',
  ].join('\n');
  const result = await runCli(
    ['peer', '--dir', dir, '--tracker', address, '--host', '127.0.0.1', '--name', 'scripted', '--no-lan'],
    {
      input: `${script}\n`,
    },
  );
  const out = result.stdout;
  assert.match(out, /share PATH/, 'help lists commands');
  assert.match(out, /data\.bin/);
  assert.match(out, /got data\.bin/);
  assert.match(out, /shared mine\.txt/);
  assert.match(out, /error: .*outside/i, 'a path outside the folder is refused');
  assert.match(out, /sharing \d+ files/);
  assert.match(out, /seeder/, 'peers shows the seeder');
  assert.match(out, /unshared mine\.txt/);
  assert.match(out, /unknown command "bogus"/);
  // Two commands failed (the outside path and the unknown command), so the script exits non-zero.
  assert.equal(result.code, 1, result.stderr);
  assert.equal(await sha256(path.join(dir, 'data.bin')), await sha256(path.join(seedDir, 'data.bin')));
  await assert.rejects(fs.access(path.join(dir, 'secret.txt')));
});

test('the demo runs to the end and verifies every file', async () => {
  const result = await runCli(['demo', '--size', '6'], { timeoutMs: 120_000 });
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /every file verified/);
  assert.equal((result.stdout.match(/matches/g) ?? []).length, 5);
  assert.match(result.stdout, /peer-4 got piratedGame/);
});
