/**
 * Rate limits end to end, in real processes: `peer --upload-limit` and `get --download-limit`
 * honoured within 10 % over ten seconds, and bad rates refused as usage errors.
 *
 * The rate is measured where the bytes end up: at the downloading `get`, whose chunk server (a
 * temporary peer serves what it has) announces every chunk it verifies with a HAVE. The test
 * connects to it as a peer would and times those HAVEs: chunk-exact, and unaffected by the
 * buffers between the two processes or by the test's own load.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { PeerClient } from '../../src/peer/peer-client.js';
import { runCli, startCli } from '../helpers/cli.js';
import { tempDir, waitFor, writeRandomFile } from '../helpers/wait.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** 64 chunks of 256 KiB: 16 s at 1 MiB/s, so a ten-second window fits after the first second. */
const FILE_SIZE = 16 * MiB;
const CHUNK_SIZE = 256 * KiB;
const RATE = MiB;
const limits = { timeout: 90_000 };

/** Starts a peer sharing a fresh 16 MiB file, reachable only by its address; returns host:port. */
async function startSeeder(t: TestContext, extra: string[]): Promise<string> {
  const dir = await tempDir(t);
  await writeRandomFile(path.join(dir, 'big.bin'), FILE_SIZE, 11);
  const peer = startCli(t, [
    'peer',
    '--dir',
    dir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--name',
    'seeder',
    '--no-tracker',
    '--no-lan',
    ...extra,
  ]);
  const match = await peer.waitForOutput(/serving on (127\.0\.0\.1:\d+), sharing 1 file/);
  return match[1]!;
}

/**
 * Runs `get big.bin` from `seeder` and times the chunks it verifies; returns the bytes per second
 * over ten seconds, from one second after its first chunk.
 */
async function measuredGet(t: TestContext, seeder: string, extra: string[]): Promise<number> {
  const out = await tempDir(t);
  const logFile = path.join(await tempDir(t), 'get.log');
  const get = startCli(t, [
    'get',
    'big.bin',
    '--peer',
    seeder,
    '--host',
    '127.0.0.1',
    '--out',
    out,
    '--log',
    logFile,
    '--json',
    ...extra,
  ]);
  const port = await waitFor(async () => {
    const log = await fs.readFile(logFile, 'utf8').catch(() => '');
    return /"port":(\d+)[^\n]*"msg":"chunk server listening"/.exec(log)?.[1];
  }, `the get's chunk server (stderr: ${get.stderr})`);
  const watcher = await PeerClient.connect('127.0.0.1', Number(port));
  t.after(() => watcher.close());
  const verified: number[] = [];
  watcher.on('have', () => verified.push(performance.now()));

  const { code } = await get.exited;
  assert.equal(code, 0, `get failed: ${get.stderr}`);
  const summary = JSON.parse(get.stdout.trim().split('\n').pop()!) as { size: number; seconds: number };
  assert.equal(summary.size, FILE_SIZE);
  assert.ok(verified.length >= FILE_SIZE / CHUNK_SIZE - 8, `${verified.length} chunks seen verified`);

  const first = verified[0]!;
  const window = verified.filter((at) => at >= first + 1000 && at <= first + 11_000);
  const lasted = (verified[verified.length - 1]! - first) / 1000;
  assert.ok(window.length >= 2, `the download was over ${lasted.toFixed(2)} s after its first chunk`);
  const seconds = (window[window.length - 1]! - window[0]!) / 1000;
  assert.ok(seconds >= 9, `only ${seconds} s of the window had chunks verified`);
  const rate = ((window.length - 1) * CHUNK_SIZE) / seconds;
  t.diagnostic(
    `${window.length - 1} chunks in ${seconds.toFixed(2)} s: ${Math.round(rate / KiB)} KiB/s ` +
      `(whole download: ${summary.seconds.toFixed(2)} s)`,
  );
  return rate;
}

function assertWithin(rate: number, limit: number, tolerance: number): void {
  const off = (rate - limit) / limit;
  assert.ok(
    Math.abs(off) <= tolerance,
    `${Math.round(rate / KiB)} KiB/s against a limit of ${limit / KiB} KiB/s (${(off * 100).toFixed(1)} %)`,
  );
}

test('peer --upload-limit 1M: a downloader without limits gets 1 MiB/s within 10 %', limits, async (t) => {
  const seeder = await startSeeder(t, ['--upload-limit', '1M']);
  assertWithin(await measuredGet(t, seeder, []), RATE, 0.1);
});

test('get --download-limit 1M: from a seeder without limits, 1 MiB/s within 10 %', limits, async (t) => {
  const seeder = await startSeeder(t, []);
  assertWithin(await measuredGet(t, seeder, ['--download-limit', '1M', '--upload-limit', '4M']), RATE, 0.1);
});

test('a bad rate is a usage error (exit 2) naming the flag, on peer and get', async (t) => {
  const dir = await tempDir(t);
  const cases: [string[], RegExp][] = [
    [['peer', '--dir', dir, '--no-lan', '--no-tracker', '--upload-limit', 'fast'], /"fast" is not a rate/],
    [
      ['peer', '--dir', dir, '--no-lan', '--no-tracker', '--download-limit', '0'],
      /"0" is not a positive rate/,
    ],
    [['get', 'x', '--peer', '127.0.0.1:9', '--upload-limit', '2T'], /"2T" is not a rate/],
    [['get', 'x', '--peer', '127.0.0.1:9', '--download-limit', '99999999999G'], /too large/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args, { timeoutMs: 20_000 });
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /--(upload|download)-limit/);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }
  for (const command of ['peer', 'get']) {
    const help = await runCli([command, '--help']);
    assert.match(help.stdout, /--upload-limit <rate>/);
    assert.match(help.stdout, /--download-limit <rate>/);
  }
});
