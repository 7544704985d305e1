import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { HashPool } from '../../src/storage/hash-pool.js';

function shared(data: Buffer): Buffer {
  const copy = Buffer.from(new SharedArrayBuffer(data.length));
  data.copy(copy);
  return copy;
}

const sha = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

test('digests equal createHash, whole or piece by piece, from any offset', async (t) => {
  const pool = new HashPool({ workers: 2 });
  t.after(() => pool.close());
  const data = shared(randomBytes(1_000_003));
  assert.deepEqual(await pool.hash(data), sha(data));
  const view = data.subarray(17, 17 + 300_000);
  assert.deepEqual(await pool.hash(view), sha(view));
  const piece = 65_536;
  const digests = await pool.hash(data, piece);
  assert.equal(digests!.length, Math.ceil(data.length / piece) * 32);
  for (let i = 0; i * piece < data.length; i++) {
    assert.deepEqual(digests!.subarray(i * 32, i * 32 + 32), sha(data.subarray(i * piece, (i + 1) * piece)));
  }
  // Many at once: all answered, in any order, each right.
  const many = Array.from({ length: 40 }, (_, i) => data.subarray(i * 1000, i * 1000 + 20_000));
  const results = await Promise.all(many.map((d) => pool.hash(d)));
  results.forEach((r, i) => assert.deepEqual(r, sha(many[i]!)));
  assert.ok(pool.workers <= 2);
});

test('declines what it cannot take: ordinary memory, a full queue', async (t) => {
  const pool = new HashPool({ workers: 1, maxQueued: 1 });
  t.after(() => pool.close());
  assert.equal(pool.hash(Buffer.alloc(10)), null);
  const data = shared(randomBytes(4096));
  const jobs = [pool.hash(data), pool.hash(data), pool.hash(data), pool.hash(data)];
  // Two go to the worker, one waits, the fourth is declined.
  assert.equal(jobs[3], null);
  for (const job of jobs.slice(0, 3)) assert.deepEqual(await job, sha(data));
});

test('a worker that dies fails its jobs with ERR_IO, and the next job gets a new worker', async (t) => {
  const crashing = `
    const { parentPort } = require('node:worker_threads');
    parentPort.on('message', () => { throw new Error('boom'); });
  `;
  const pool = new HashPool({ workers: 1, workerSource: crashing });
  t.after(() => pool.close());
  const data = shared(randomBytes(1000));
  await assert.rejects(pool.hash(data)!, { code: 'ERR_IO', message: /boom/ });
  await assert.rejects(pool.hash(data)!, { code: 'ERR_IO' });
});

test('an idle pool does not keep the process alive; a busy one does until it answers', async () => {
  const module = fileURLToPath(new URL('../../src/storage/hash-pool.js', import.meta.url));
  const script = `
    import { HashPool } from ${JSON.stringify(module)};
    const pool = new HashPool();
    const data = Buffer.from(new SharedArrayBuffer(1 << 20));
    // Nothing else keeps the loop alive: the answer must still come, then the process must exit.
    pool.hash(data).then((d) => console.log(d.toString('hex')));
  `;
  const started = Date.now();
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    timeout: 10_000,
  });
  assert.equal(stdout.trim(), sha(Buffer.alloc(1 << 20)).toString('hex'));
  assert.ok(Date.now() - started < 10_000);
});
