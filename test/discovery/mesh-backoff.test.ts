import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, TokenBucket } from '../../src/discovery/backoff.js';

test('back-off doubles per failure up to the maximum, jittered within the upper half, and resets', () => {
  const low = new Backoff(100, 1_000, () => 0);
  const high = new Backoff(100, 1_000, () => 1);
  assert.deepEqual(
    Array.from({ length: 7 }, () => low.fail()),
    [50, 100, 200, 400, 500, 500, 500],
  );
  assert.deepEqual(
    Array.from({ length: 7 }, () => high.fail()),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
  assert.equal(high.failureCount, 7);
  assert.equal(high.reset(), 100);
  assert.equal(high.failureCount, 0);
  assert.equal(high.fail(), 100);
  // Very many failures neither overflow nor exceed the maximum.
  const many = new Backoff(1_000, 30_000, () => 1);
  for (let i = 0; i < 2_000; i++) assert.ok(many.fail() <= 30_000);
});

test('the token bucket allows a burst, then the rate, on a monotonic clock', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 10, () => now);
  let taken = 0;
  while (bucket.tryTake()) taken++;
  assert.equal(taken, 10);
  assert.equal(bucket.msUntilNext(), 100);
  now += 50;
  assert.equal(bucket.tryTake(), false);
  now += 50;
  assert.equal(bucket.tryTake(), true);
  assert.equal(bucket.tryTake(), false);
  // A long pause refills no more than the burst.
  now += 60_000;
  taken = 0;
  while (bucket.tryTake()) taken++;
  assert.equal(taken, 10);
});
