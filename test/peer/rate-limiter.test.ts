import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { RateLimiter, parseRate, type RateLimiterClock } from '../../src/peer/rate-limiter.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A clock that moves only when told to, running the timers that fall due on the way, in order. */
class FakeClock implements RateLimiterClock {
  time = 0;
  private timers: { at: number; callback: () => void }[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { at: this.time + ms, callback };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** Moves time on by `ms`, firing due timers and letting what they resolve run in between. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.callback();
    }
    this.time = end;
    await settle();
  }
}

/** Lets every pending promise callback run. */
async function settle(): Promise<void> {
  await nextTurn();
}

test('parseRate reads bytes per second with K, M, G as powers of 1024', () => {
  assert.equal(parseRate('1048576'), 1048576);
  assert.equal(parseRate('500K'), 500 * 1024);
  assert.equal(parseRate('500k'), 500 * 1024);
  assert.equal(parseRate('2M'), 2 * 1024 * 1024);
  assert.equal(parseRate('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseRate('16MiB/s'), 16 * 1024 * 1024);
  assert.equal(parseRate('64KB'), 64 * 1024);
  assert.equal(parseRate(' 100B/s '), 100);
  assert.equal(parseRate('1.5'), 1); // whole bytes
  for (const bad of ['', 'fast', '-1M', '0', '0.5', '2T', '1e9', '1i', 'M', '1 M B', '1M/h', '9999999999G']) {
    assert.throws(() => parseRate(bad), RangeError, bad);
  }
  assert.throws(() => parseRate('fast'), /"fast" is not a rate: use bytes per second, e\.g\. 500K/);
  assert.throws(() => parseRate('0K'), /"0K" is not a positive rate/);
  assert.throws(() => parseRate('9999999999G'), /too large/);
  assert.throws(() => new RateLimiter(0), RangeError);
  assert.throws(() => new RateLimiter(Number.NaN), RangeError);
});

test('the bucket starts empty: a first take passes at once, the next waits for its debt', async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1000, { clock });
  let first = false;
  void limiter.take(500).then(() => (first = true));
  await settle();
  assert.equal(first, true, 'a take with nothing owed passes at once, even into debt');
  assert.equal(limiter.tryTake(1), false, 'in debt: nothing more passes');

  let second = false;
  void limiter.take(100).then(() => (second = true));
  await clock.advance(499);
  assert.equal(second, false, 'the debt of 500 bytes at 1000 B/s lasts 500 ms');
  await clock.advance(1);
  assert.equal(second, true);
});

test('a saturated limiter lets through the rate, within one take, over ten seconds', async () => {
  const clock = new FakeClock();
  const rate = MiB;
  const limiter = new RateLimiter(rate, { clock });
  // Two greedy consumers taking 64 KiB (a socket read) and 256 KiB (a chunk) at a time.
  let passed = 0;
  let running = true;
  const consume = async (size: number): Promise<void> => {
    while (running) {
      await limiter.take(size);
      passed += size;
    }
  };
  const consumers = [consume(64 * KiB), consume(256 * KiB)];
  const marks: number[] = [];
  for (let second = 0; second <= 11; second++) {
    marks.push(passed);
    await clock.advance(1000);
  }
  running = false;
  limiter.close();
  await Promise.all(consumers);
  const window = marks[11]! - marks[1]!; // from 1 s to 11 s
  assert.ok(Math.abs(window - 10 * rate) <= 256 * KiB, `${window} bytes in 10 s at ${rate} B/s`);
  // From the very start: the rate, plus at most one take beyond it (the bucket starts empty).
  assert.ok(marks[10]! <= 10 * rate + 256 * KiB, `${marks[10]} bytes in the first 10 s`);
});

test('after an idle spell only the bucket passes at once: a quarter second, not a second', async () => {
  const clock = new FakeClock();
  const rate = 100 * KiB;
  const limiter = new RateLimiter(rate, { clock });
  assert.equal(limiter.burstBytes, rate / 4);
  await clock.advance(60_000);
  let passed = 0;
  let running = true;
  const consumer = (async () => {
    while (running) {
      await limiter.take(KiB);
      passed += KiB;
    }
  })();
  await clock.advance(1000);
  const inASecond = passed;
  running = false;
  limiter.close();
  await consumer;
  // One second's worth, the quarter second the bucket held, and one take into debt.
  assert.ok(inASecond <= rate + rate / 4 + KiB, `${inASecond} bytes in the second after a minute idle`);
  assert.ok(inASecond >= rate, `${inASecond} bytes`);
  const small = new RateLimiter(1000, { burstBytes: 10 });
  assert.equal(small.burstBytes, 10);
});

test('owners take turns: one with many takes queued does not crowd out one with few', async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1000, { clock });
  await limiter.take(1000); // a second of debt: everything below waits
  const order: string[] = [];
  const greedy = {};
  const modest = {};
  const takes = [
    ...[1, 2, 3, 4, 5].map((n) => limiter.take(100, greedy).then(() => order.push(`greedy${n}`))),
    ...[1, 2].map((n) => limiter.take(100, modest).then(() => order.push(`modest${n}`))),
    limiter.take(100).then(() => order.push('anonymous')),
  ];
  assert.equal(limiter.waiting, 8);
  assert.equal(limiter.tryTake(1), false, 'others are waiting: no cutting in');
  await clock.advance(10_000);
  await Promise.all(takes);
  assert.deepEqual(order, [
    'greedy1',
    'modest1',
    'anonymous',
    'greedy2',
    'modest2',
    'greedy3',
    'greedy4',
    'greedy5',
  ]);
});

test('a refund lets the next waiter through at once, and never fills the bucket past its size', async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1024, { clock });
  await limiter.take(64 * 1024); // passes, leaving a debt of 64 seconds
  let through = false;
  const next = limiter.take(1024).then(() => (through = true));
  await clock.advance(20);
  assert.equal(through, false, 'the debt is waited for');
  limiter.refund(64 * 1024); // that chunk was not sent after all
  await settle();
  assert.equal(through, true, 'the refund went to the waiter');
  await next;

  // More given back than the bucket holds fills it (a quarter second, 256 bytes), no more: 1024
  // taken now leave 768 bytes of debt, which the next take waits for (750 ms).
  await clock.advance(1000);
  limiter.refund(1024 * 1024);
  await limiter.take(1024);
  let late = false;
  void limiter.take(1).then(() => (late = true));
  await clock.advance(700);
  assert.equal(late, false, 'a refund filled the bucket past its size');
  await clock.advance(100);
  assert.equal(late, true);
});

test('close releases every waiter and lets everything through from then on', async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(10, { clock });
  await limiter.take(1000);
  const waits = [limiter.take(10, {}), limiter.take(10)];
  limiter.close();
  await Promise.all(waits);
  assert.equal(limiter.tryTake(1_000_000), true);
  assert.equal(limiter.waiting, 0);
});

test('with the real clock, a limiter paces takes to its rate', async (t) => {
  const limiter = new RateLimiter(200 * KiB);
  t.after(() => limiter.close());
  const started = performance.now();
  for (let i = 0; i < 20; i++) await limiter.take(10 * KiB); // 200 KiB: about a second after the first
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds >= 0.9 && seconds < 2, `${seconds} s`);
});
