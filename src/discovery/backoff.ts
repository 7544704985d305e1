/**
 * Small timing helpers for the mesh: exponential back-off with jitter for hosts that stay away,
 * and a token bucket bounding how many new connections are attempted per second.
 */

/**
 * Delays between attempts to reach one host: the n-th consecutive failure waits about
 * min(maxMs, minMs * 2^(n-1)), drawn at random from the upper half of that ceiling so hosts that
 * went away together are not retried in lock-step. A success resets it.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Consecutive failures since the last reset. */
  get failureCount(): number {
    return this.failures;
  }

  /** Records one more failure; returns how long to wait before the next attempt. */
  fail(): number {
    this.failures++;
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.failures - 1, 30));
    return this.jitter(ceiling);
  }

  /** Forgets the failures (the host answered); returns the first delay, for a link that later drops. */
  reset(): number {
    this.failures = 0;
    return this.jitter(this.minMs);
  }

  private jitter(ceiling: number): number {
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}

/**
 * At most `ratePerSecond` takes per second on average, with bursts of up to `burst`. Time comes from
 * a monotonic clock, so a change of the wall clock cannot open the gate.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number = ratePerSecond,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0 if one is now). */
  msUntilNext(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    this.last = now;
  }
}
