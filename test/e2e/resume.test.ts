/**
 * Crash-proof downloads, with real processes and real files: `get` killed with SIGKILL (and stopped
 * with SIGINT) at several points resumes from its partial file and state, fetching only what is
 * missing; a corrupt state means hashing the partial file again; the final whole-file check catches
 * a chunk changed on disk after it was verified; a full disk (a small tmpfs) fails cleanly and
 * resumes once space is freed; a second `get` of the same file into the same folder while one runs
 * is refused, and the first is not disturbed. Every peer runs with --no-lan, on loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Bitfield } from '../../src/storage/bitfield.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkCount, chunkLength, fileIdHex, type Manifest } from '../../src/storage/manifest.js';
import { PARTIAL_DIR_NAME } from '../../src/storage/partial-file.js';
import { decodePartialState, encodePartialState } from '../../src/storage/partial-state.js';
import { runCli, startCli, startTrackerProcess, type CliProcess, type CliResult } from '../helpers/cli.js';
import { sha256File } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor, writeRandomFile } from '../helpers/wait.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
/** 33 chunks of 256 KiB, the last one short. */
const FILE_SIZE = 8 * MiB + 123;
/** Generous for a loaded 2-core machine: nothing here is timed. */
const LONG = 120_000;

interface Seed {
  dir: string;
  file: string;
  name: string;
  manifest: Manifest;
  sha256: string;
}

async function makeSeed(t: TestContext, name = 'big.bin', size = FILE_SIZE, seed = 5): Promise<Seed> {
  const dir = await tempDir(t);
  const file = path.join(dir, name);
  await writeRandomFile(file, size, seed);
  return { dir, file, name, manifest: await hashFile(file, name), sha256: await sha256File(file) };
}

/** A `peer` process sharing `dir`, registered with the tracker; uploads at most `uploadLimit`. */
async function startSeeder(t: TestContext, tracker: string, dir: string, name: string, uploadLimit?: string) {
  const args = ['peer', '--dir', dir, '--tracker', tracker, '--host', '127.0.0.1', '--port', '0'];
  args.push('--name', name, '--no-lan', ...(uploadLimit ? ['--upload-limit', uploadLimit] : []));
  const peer = startCli(t, args);
  await peer.waitForOutput(/connected to tracker/);
  return peer;
}

async function waitForSources(tracker: string, name: string, sources: number): Promise<void> {
  await waitFor(
    async () => {
      const listed = await runCli(['list', '--tracker', tracker, '--json']);
      const files = (JSON.parse(listed.stdout) as { files: { name: string; sources: number }[] }).files;
      return files.some((f) => f.name === name && f.sources === sources);
    },
    `${name} listed with ${sources} sources`,
    LONG,
    200,
  );
}

function getArgs(seed: Seed, tracker: string, out: string, log: string): string[] {
  return [
    'get',
    seed.name,
    '--tracker',
    tracker,
    '--out',
    out,
    '--json',
    '--log',
    log,
    '--host',
    '127.0.0.1',
  ];
}

/** The chunks the state file in `out` claims, or null while it is missing or being replaced. */
async function claimed(out: string, manifest: Manifest): Promise<Bitfield | null> {
  const file = path.join(out, '.swarmshare', PARTIAL_DIR_NAME, `${fileIdHex(manifest.id)}.state`);
  const data = await fs.readFile(file).catch(() => null);
  if (!data) return null;
  const decoded = decodePartialState(data, manifest);
  return decoded.ok ? decoded.have : null;
}

function bytesOf(manifest: Manifest, chunks: Bitfield): number {
  let bytes = 0;
  for (const index of chunks.indices()) bytes += chunkLength(manifest, index);
  return bytes;
}

function partPath(out: string, manifest: Manifest): string {
  return path.join(out, '.swarmshare', PARTIAL_DIR_NAME, `${fileIdHex(manifest.id)}.part`);
}

/** Starts `get`, waits until its state claims at least `atLeast` chunks, and kills it. */
async function getUntil(
  t: TestContext,
  seed: Seed,
  tracker: string,
  out: string,
  log: string,
  atLeast: number,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<{ proc: CliProcess; exit: { code: number | null; signal: NodeJS.Signals | null } }> {
  const proc = startCli(t, getArgs(seed, tracker, out, log));
  await waitFor(
    async () =>
      ((await claimed(out, seed.manifest))?.setCount ?? 0) >= atLeast || proc.child.exitCode !== null,
    `the state to claim ${atLeast} chunks (stderr: ${proc.stderr.slice(-300)})`,
    LONG,
    20,
  );
  assert.equal(proc.child.exitCode, null, `get ended early: ${proc.stderr}`);
  proc.kill(signal);
  const exit = await proc.exited;
  return { proc, exit };
}

interface GetSummary {
  size: number;
  path: string;
  resumedBytes: number;
  sources: { bytes: number }[];
}

function summaryOf(result: CliResult): GetSummary {
  assert.equal(result.code, 0, `get failed: ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as GetSummary;
}

const fetched = (summary: GetSummary): number => summary.sources.reduce((sum, s) => sum + s.bytes, 0);

/** The pino lines of a --log file with this message. */
async function logLines(log: string, msg: string): Promise<Record<string, unknown>[]> {
  const text = await fs.readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === msg);
}

test('get killed with SIGKILL at ~10%, ~90% and stopped with SIGINT at ~50% resumes, fetching only what is missing', async (t) => {
  const { address } = await startTrackerProcess(t);
  const seed = await makeSeed(t);
  const total = chunkCount(seed.manifest);
  assert.equal(total, 33);
  // Slow seeders (two chunks a second between them), so each run can be stopped where we choose.
  await startSeeder(t, address, seed.dir, 'slow-a', '128K');
  // Each peer has its own folder (a folder's state is one peer's).
  const second = await tempDir(t);
  await fs.copyFile(seed.file, path.join(second, seed.name));
  await startSeeder(t, address, second, 'slow-b', '128K');
  await waitForSources(address, seed.name, 2);
  const out = await tempDir(t);
  const log = path.join(await tempDir(t), 'get.log');

  let previous: Bitfield | null = null;
  const stages: { at: number; signal: NodeJS.Signals }[] = [
    { at: Math.ceil(total * 0.1), signal: 'SIGKILL' },
    { at: Math.ceil(total * 0.5), signal: 'SIGINT' },
    // (~88%: a few chunks of margin, so the download is not over before the kill on a loaded machine.)
    { at: Math.floor(total * 0.88), signal: 'SIGKILL' },
  ];
  for (const { at, signal } of stages) {
    const { proc, exit } = await getUntil(t, seed, address, out, log, at, signal);
    // Nothing ever appears under the final name before the download is complete.
    assert.deepEqual(await fs.readdir(out), ['.swarmshare']);
    const state = await claimed(out, seed.manifest);
    assert.ok(state && state.setCount >= at, `state claims ${state?.setCount} chunks`);
    if (previous) {
      // This run started from every chunk the last one's state claimed (each hashed again).
      assert.match(
        proc.stderr,
        new RegExp(`resuming big\\.bin: .* \\(${previous.setCount} chunks\\) already here`),
      );
      for (const index of previous.indices()) assert.ok(state.has(index), `chunk ${index} kept`);
    }
    if (signal === 'SIGINT') {
      // Stopped cleanly: the state was saved on the way out, with every chunk verified by then.
      assert.equal(exit.code, 1, proc.stderr);
      assert.match(
        proc.stderr,
        /interrupted by SIGINT; the partial download \(.* verified\) is kept in .*: run the same get again to resume it/,
      );
      // (A chunk being written at that moment may join them: the state waits for its write.)
      const ended = await logLines(log, 'download ended');
      const verified = ended.at(-1)?.verified as number;
      assert.ok(
        verified >= at && state.setCount >= verified,
        `${verified} verified, ${state.setCount} saved`,
      );
    } else {
      assert.equal(exit.signal, 'SIGKILL');
    }
    previous = state;
  }

  const last = previous!;
  const result = await runCli(getArgs(seed, address, out, log), { timeoutMs: LONG });
  const summary = summaryOf(result);
  assert.equal(summary.resumedBytes, bytesOf(seed.manifest, last));
  // Only the missing chunks were fetched: each once.
  assert.equal(fetched(summary), FILE_SIZE - summary.resumedBytes);
  assert.ok(fetched(summary) < FILE_SIZE * 0.2, `fetched ${fetched(summary)} bytes at the end`);
  assert.equal(await sha256File(path.join(out, seed.name)), seed.sha256);
  // A get created the state folder, and the download finished: nothing else is left.
  assert.deepEqual(await fs.readdir(out), [seed.name]);
});

test('a corrupt state (truncated, garbage, another file) or a chunk corrupted between runs: hashed again, still correct', async (t) => {
  const { address } = await startTrackerProcess(t);
  const seed = await makeSeed(t, 'data.bin', FILE_SIZE, 9);
  const other = await makeSeed(t, 'other.bin', FILE_SIZE, 10);
  const total = chunkCount(seed.manifest);
  const slow = await startSeeder(t, address, seed.dir, 'slow', '512K');
  await waitForSources(address, seed.name, 1);
  const out = await tempDir(t);
  await getUntil(t, seed, address, out, path.join(await tempDir(t), 'get.log'), Math.ceil(total * 0.4));
  const state = (await claimed(out, seed.manifest))!;
  const claimedBytes = bytesOf(seed.manifest, state);
  const onDisk = await fs.readFile(
    path.join(out, '.swarmshare', PARTIAL_DIR_NAME, `${fileIdHex(seed.manifest.id)}.state`),
  );

  // The rest comes from a fast seeder.
  slow.kill('SIGKILL');
  await slow.exited;
  await startSeeder(t, address, seed.dir, 'fast');
  await waitForSources(address, seed.name, 1);

  const firstClaimed = [...state.indices()][0]!;
  const variants: Record<string, (dir: string) => Promise<void>> = {
    truncated: (dir) => fs.writeFile(statePathIn(dir, seed), onDisk.subarray(0, 20)),
    garbage: (dir) => fs.writeFile(statePathIn(dir, seed), Buffer.alloc(onDisk.length, 0x3c)),
    'another file': (dir) =>
      fs.writeFile(statePathIn(dir, seed), encodePartialState(other.manifest, Bitfield.full(total))),
    'a claimed chunk corrupted': async (dir) => {
      const handle = await fs.open(partPath(dir, seed.manifest), 'r+');
      await handle.write(Buffer.from('flipped bits'), 0, 12, firstClaimed * seed.manifest.chunkSize + 100);
      await handle.close();
    },
  };
  for (const [variant, spoil] of Object.entries(variants)) {
    const dir = await tempDir(t);
    await fs.cp(out, dir, { recursive: true });
    await spoil(dir);
    const log = path.join(await tempDir(t), 'get.log');
    const summary = summaryOf(await runCli(getArgs(seed, address, dir, log), { timeoutMs: LONG }));
    assert.equal(await sha256File(path.join(dir, seed.name)), seed.sha256, variant);
    assert.equal(fetched(summary), FILE_SIZE - summary.resumedBytes, variant);
    const [found] = await logLines(log, 'partial download found; resuming');
    if (variant === 'a claimed chunk corrupted') {
      assert.equal(found?.from, 'state');
      assert.equal(summary.resumedBytes, claimedBytes - chunkLength(seed.manifest, firstClaimed));
    } else {
      // No usable state: the whole partial file was hashed, keeping at least what the state claimed.
      assert.equal(found?.from, 'rehash', variant);
      assert.equal(found?.checked, total, variant);
      assert.ok(summary.resumedBytes >= claimedBytes, `${variant}: resumed ${summary.resumedBytes}`);
    }
  }

  // The peer's shell resumes too.
  const dir = await tempDir(t);
  await fs.cp(out, dir, { recursive: true });
  const shell = await runCli(
    ['peer', '--dir', dir, '--tracker', address, '--host', '127.0.0.1', '--no-lan', '--name', 'shell'],
    { input: `get ${seed.name}\nexit\n`, timeoutMs: LONG },
  );
  assert.match(shell.stdout, /got data\.bin.*\(resumed: .* were already here\)/);
  assert.equal(await sha256File(path.join(dir, seed.name)), seed.sha256);
});

function statePathIn(dir: string, seed: Seed): string {
  return path.join(dir, '.swarmshare', PARTIAL_DIR_NAME, `${fileIdHex(seed.manifest.id)}.state`);
}

test('the final whole-file check catches a chunk changed on disk after it was verified and fetches just that one again', async (t) => {
  const { address } = await startTrackerProcess(t);
  const seed = await makeSeed(t, 'check.bin', FILE_SIZE, 13);
  await startSeeder(t, address, seed.dir, 'slow', '512K');
  await waitForSources(address, seed.name, 1);
  const out = await tempDir(t);
  const log = path.join(await tempDir(t), 'get.log');
  const proc = startCli(t, getArgs(seed, address, out, log));
  // A chunk verified, written and claimed by the state, while the download goes on.
  const state = await waitFor(
    async () => {
      const have = await claimed(out, seed.manifest);
      return have && have.setCount > 0 && have.setCount < chunkCount(seed.manifest) / 2 ? have : null;
    },
    'a chunk claimed',
    LONG,
    20,
  );
  const victim = [...state.indices()][0]!;
  const handle = await fs.open(partPath(out, seed.manifest), 'r+');
  await handle.write(Buffer.from('changed on disk'), 0, 15, victim * seed.manifest.chunkSize + 7);
  await handle.close();

  const exit = await proc.exited;
  const summary = summaryOf({
    code: exit.code,
    signal: exit.signal,
    stdout: proc.stdout,
    stderr: proc.stderr,
  });
  assert.equal(await sha256File(path.join(out, seed.name)), seed.sha256);
  // Every chunk once, and the victim a second time.
  assert.equal(fetched(summary), FILE_SIZE + chunkLength(seed.manifest, victim));
  const [check] = await logLines(log, 'final check: chunks changed on disk');
  assert.deepEqual(check?.chunks, [victim]);
});

test('a full disk (a small tmpfs): ERR_DISK_FULL, the partial download kept; once space is freed, get resumes', async (t) => {
  const mountPoint = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountPoint]);
  } catch (err) {
    await fs.rmdir(mountPoint);
    if (process.env.SWARMSHARE_REQUIRE_TMPFS) throw err;
    t.skip(`cannot mount a tmpfs here (needs root): ${String(err).split('\n')[0]}`);
    return;
  }
  t.after(async () => {
    await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]));
    await fs.rmdir(mountPoint);
  });
  const { address } = await startTrackerProcess(t);
  const seed = await makeSeed(t, 'full.bin', FILE_SIZE, 17);
  await startSeeder(t, address, seed.dir, 'fast');
  await waitForSources(address, seed.name, 1);
  // 10 MiB of the 16 taken: the 8 MiB download runs out of space two thirds of the way.
  const filler = path.join(mountPoint, 'filler.bin');
  await writeRandomFile(filler, 10 * MiB, 3);
  const out = path.join(mountPoint, 'downloads');

  const logs = await tempDir(t);
  const full = await runCli(getArgs(seed, address, out, path.join(logs, 'full.log')), { timeoutMs: LONG });
  assert.equal(full.code, 1, full.stderr);
  assert.match(full.stderr, new RegExp(`no space left on the disk holding ${out}: free some space there`));
  assert.match(full.stderr, /is kept in .*: run the same get again to resume it/);
  assert.deepEqual(await fs.readdir(out), ['.swarmshare']);
  const kept = await fs.readdir(path.join(out, '.swarmshare', PARTIAL_DIR_NAME));
  assert.ok(kept.includes(`${fileIdHex(seed.manifest.id)}.part`), kept.join());

  await fs.rm(filler);
  const summary = summaryOf(
    await runCli(getArgs(seed, address, out, path.join(logs, 'get.log')), { timeoutMs: LONG }),
  );
  assert.ok(summary.resumedBytes > 2 * MiB, `resumed ${summary.resumedBytes}`);
  assert.equal(fetched(summary), FILE_SIZE - summary.resumedBytes);
  assert.equal(await sha256File(path.join(out, seed.name)), seed.sha256);
  assert.deepEqual(await fs.readdir(out), [seed.name]);
});

test('a second get of the same file into the same folder while the first runs is refused; the first finishes', async (t) => {
  const { address } = await startTrackerProcess(t);
  // 16 chunks at 256 KiB/s: the first get runs for some 16 s.
  const seed = await makeSeed(t, 'shared.bin', 4 * MiB, 23);
  await startSeeder(t, address, seed.dir, 'slow', '256K');
  await waitForSources(address, seed.name, 1);
  const out = await tempDir(t);
  const logs = await tempDir(t);

  const first = startCli(t, getArgs(seed, address, out, path.join(logs, 'first.log')));
  await waitFor(
    async () => ((await claimed(out, seed.manifest))?.setCount ?? 0) >= 1 || first.child.exitCode !== null,
    `the first get to save a chunk (stderr: ${first.stderr.slice(-300)})`,
    LONG,
    20,
  );
  const second = await runCli(getArgs(seed, address, out, path.join(logs, 'second.log')), {
    timeoutMs: LONG,
  });
  assert.equal(second.code, 1, second.stderr);
  assert.match(
    second.stderr,
    new RegExp(`shared\\.bin is already being downloaded into this folder by process ${first.child.pid} on `),
  );
  assert.doesNotMatch(second.stderr, /resume/, 'the other run is not ours to resume');
  assert.equal(first.child.exitCode, null, 'the first get still runs');

  const exit = await first.exited;
  assert.equal(exit.code, 0, first.stderr);
  assert.equal(await sha256File(path.join(out, seed.name)), seed.sha256);
  assert.deepEqual(await fs.readdir(out), [seed.name]);
});
