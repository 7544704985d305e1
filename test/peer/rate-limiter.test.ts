import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter, parseRate } from '../../src/peer/rate-limiter.js';

test('parseRate reads bytes per second with K, M, G as powers of 1024', () => {
  assert.equal(parseRate('1048576'), 1048576);
  assert.equal(parseRate('500K'), 500 * 1024);
  assert.equal(parseRate('2M'), 2 * 1024 * 1024);
  assert.equal(parseRate('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseRate('16MiB/s'), 16 * 1024 * 1024);
  for (const bad of ['', 'fast', '-1M', '0', '2T', '1e9'])
    assert.throws(() => parseRate(bad), RangeError, bad);
});

test('a rate limiter serves waiters in arrival order and lets the first second through at once', async () => {
  const limiter = new RateLimiter(64 * 1024);
  const order: number[] = [];
  // The bucket starts full: the first take passes at once and leaves a debt for the others.
  await limiter.take(64 * 1024);
  const waits = [1, 2, 3].map((n) => limiter.take(4 * 1024).then(() => order.push(n)));
  await Promise.all(waits);
  assert.deepEqual(order, [1, 2, 3]);
  assert.throws(() => new RateLimiter(0), RangeError);
});
