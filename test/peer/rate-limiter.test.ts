import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
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

test('a refund lets the next waiter through at once, and never fills the bucket past one second', async (t) => {
  const limiter = new RateLimiter(1024);
  t.after(() => limiter.close());
  await limiter.take(64 * 1024); // passes, leaving a debt of 63 seconds
  let through = false;
  const next = limiter.take(1024).then(() => (through = true));
  await delay(20);
  assert.equal(through, false, 'the debt is waited for');
  limiter.refund(64 * 1024); // that chunk was not sent after all
  await Promise.race([next, delay(10_000)]);
  assert.equal(through, true, 'the refund went to the waiter');

  // More given back than the bucket holds fills it to one second's worth, no more: 1.5 s taken now
  // leaves half a second of debt, which the next waits for.
  limiter.refund(1024 * 1024);
  await limiter.take(1536);
  let late = false;
  const after = limiter.take(1).then(() => (late = true));
  await delay(100);
  assert.equal(late, false, 'a refund filled the bucket past one second');
  await after;
});
