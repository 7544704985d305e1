/**
 * One download of a file into a folder at a time, across processes (src/storage/download-claim.ts),
 * with real processes: a live holder refuses others, a dead one's claim is taken over, a claim from
 * another host or naming a live process is never taken, and several processes taking over one stale
 * claim at once leave exactly one holder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { claimDownload } from '../../src/storage/download-claim.js';
import { tempDir } from '../helpers/wait.js';

const HOLDER_SCRIPT = fileURLToPath(new URL('../helpers/claim-holder.js', import.meta.url));

interface HolderResult {
  claimed: boolean;
  code?: string;
  message?: string;
}

interface Holder {
  pid: number;
  result: HolderResult;
  /** Closes its stdin: it releases what it holds and exits. */
  end: () => Promise<void>;
  kill: () => Promise<void>;
}

/** A process that claims `claimPath` and holds what it got until ended. */
async function startHolder(t: TestContext, claimPath: string): Promise<Holder> {
  const child = spawn(process.execPath, [HOLDER_SCRIPT, claimPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`claim holder exited early with ${code}`)));
  });
  return {
    pid: child.pid!,
    result: JSON.parse(line) as HolderResult,
    end: async () => {
      child.stdin.end();
      await exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function claimFile(t: TestContext): Promise<string> {
  return path.join(await tempDir(t), 'abc.claim');
}

/** A pid that no process has now: a child's, once it has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

const claimOf = (holder: { host: string; pid: number }): string =>
  `${JSON.stringify({ ...holder, token: 'feedfacefeedface' })}\n`;

test('a claim held by a live process refuses another process, naming its holder', async (t) => {
  const claimPath = await claimFile(t);
  const first = await startHolder(t, claimPath);
  assert.deepEqual(first.result, { claimed: true });
  const second = await startHolder(t, claimPath);
  assert.equal(second.result.claimed, false);
  assert.equal(second.result.code, 'ERR_IN_PROGRESS');
  assert.match(second.result.message!, new RegExp(`movie\\.mkv .*process ${first.pid} on `));
  assert.ok(second.result.message!.includes(claimPath), 'says which file to remove');
  // Released at the end, the claim is free again.
  await first.end();
  await assert.rejects(fs.stat(claimPath), { code: 'ENOENT' });
  const third = await startHolder(t, claimPath);
  assert.deepEqual(third.result, { claimed: true });
});

test('a claim left by a killed process is taken over', async (t) => {
  const claimPath = await claimFile(t);
  const killed = await startHolder(t, claimPath);
  assert.deepEqual(killed.result, { claimed: true });
  await killed.kill();
  const next = await startHolder(t, claimPath);
  assert.deepEqual(next.result, { claimed: true });
  assert.match(await fs.readFile(claimPath, 'utf8'), new RegExp(`"pid":${next.pid}`));
});

test('stale: a dead pid of this host, this very pid (pids repeat), or text that is not a claim', async (t) => {
  const host = os.hostname();
  for (const left of [
    claimOf({ host, pid: await deadPid() }),
    claimOf({ host, pid: process.pid }),
    'half a line of',
    '',
  ]) {
    const claimPath = await claimFile(t);
    await fs.writeFile(claimPath, left);
    const claim = await claimDownload(claimPath, 'movie.mkv');
    assert.match(await fs.readFile(claimPath, 'utf8'), new RegExp(`"pid":${process.pid},"token"`));
    assert.notEqual(await fs.readFile(claimPath, 'utf8'), left);
    await claim.release();
    await assert.rejects(fs.stat(claimPath), { code: 'ENOENT' });
    // Nothing is left beside it (the stale claim moved aside is gone too).
    assert.deepEqual(await fs.readdir(path.dirname(claimPath)), []);
  }
});

test('never stale: a live process of this host, or any process of another host', async (t) => {
  for (const [left, holder] of [
    [claimOf({ host: os.hostname(), pid: process.ppid }), `process ${process.ppid}`],
    [claimOf({ host: 'nas.example', pid: await deadPid() }), 'on nas.example'],
  ] as const) {
    const claimPath = await claimFile(t);
    await fs.writeFile(claimPath, left);
    await assert.rejects(claimDownload(claimPath, 'movie.mkv'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_IN_PROGRESS');
      assert.ok(err.message.includes(holder), err.message);
      return true;
    });
    assert.equal(await fs.readFile(claimPath, 'utf8'), left, 'left as it was');
  }
});

test('a release removes only its own claim, never one that took it over', async (t) => {
  const claimPath = await claimFile(t);
  const claim = await claimDownload(claimPath, 'movie.mkv');
  const other = claimOf({ host: 'nas.example', pid: 4242 });
  await fs.writeFile(claimPath, other);
  await claim.release();
  assert.equal(await fs.readFile(claimPath, 'utf8'), other);
});

test('processes taking over one stale claim at once: exactly one holds it', async (t) => {
  for (let round = 0; round < 3; round++) {
    const claimPath = await claimFile(t);
    await fs.writeFile(claimPath, claimOf({ host: os.hostname(), pid: await deadPid() }));
    const holders = await Promise.all([1, 2, 3, 4].map(() => startHolder(t, claimPath)));
    const winners = holders.filter((h) => h.result.claimed);
    assert.equal(winners.length, 1, JSON.stringify(holders.map((h) => h.result)));
    for (const loser of holders.filter((h) => !h.result.claimed)) {
      assert.equal(loser.result.code, 'ERR_IN_PROGRESS');
    }
    assert.match(await fs.readFile(claimPath, 'utf8'), new RegExp(`"pid":${winners[0]!.pid},`));
    await Promise.all(holders.map((h) => h.end()));
    assert.deepEqual(await fs.readdir(path.dirname(claimPath)), [], 'nothing left behind');
  }
});
