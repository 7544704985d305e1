/**
 * A token bucket shared by every connection of a process (one for uploads, one for downloads).
 *
 * - **Precise.** Tokens accrue at the rate; a take passes while the bucket is not in debt, and may
 *   take it into debt (one chunk, or one socket read, larger than the bucket passes at once); the
 *   next waits until the debt is paid. The bucket starts empty and holds at most `burstBytes`
 *   (default a quarter second's worth), so over any window the bytes let through are at most the
 *   rate times the window, plus the bucket, plus one take: an idle spell or a refund never allows a
 *   long burst.
 * - **Fair.** Waiters are grouped by owner (a connection) and served round-robin, one take per
 *   owner per turn, so a connection with many requests queued does not crowd out one with few.
 *   Takes without an owner are served in arrival order.
 * - **Cheap.** No timer runs unless someone waits; `tryTake` lets a caller that is not held back
 *   go on without a promise.
 */

/** The time source and timers of a limiter: the real ones by default, a fake one in tests. */
export interface RateLimiterClock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RateLimiterOptions {
  /** Most tokens the bucket holds. Default: a quarter of a second's worth (at least one byte). */
  burstBytes?: number;
  clock?: RateLimiterClock;
}

/** The share of a second the bucket holds by default. */
const DEFAULT_BURST_SECONDS = 0.25;

const realClock: RateLimiterClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Waiter {
  bytes: number;
  resolve: () => void;
}

export class RateLimiter {
  readonly burstBytes: number;
  private readonly clock: RateLimiterClock;
  private tokens = 0;
  private last: number;
  /** Owners with takes waiting, in turn order (a Map keeps insertion order), each with its takes. */
  private readonly queues = new Map<object, Waiter[]>();
  private timer: unknown = null;
  private closed = false;

  /** @param bytesPerSecond the sustained rate; must be positive. */
  constructor(
    readonly bytesPerSecond: number,
    options: RateLimiterOptions = {},
  ) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond))
      throw new RangeError('the rate must be positive');
    this.burstBytes = Math.max(1, options.burstBytes ?? bytesPerSecond * DEFAULT_BURST_SECONDS);
    this.clock = options.clock ?? realClock;
    this.last = this.clock.now();
  }

  /** Takes waiting now (for tests and stats). */
  get waiting(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.length;
    return count;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last) {
      this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    }
    this.last = now;
  }

  /**
   * Takes `bytes` at once and returns true if nobody waits and the bucket is not in debt; otherwise
   * takes nothing and returns false (then `take` them, and wait).
   */
  tryTake(bytes: number): boolean {
    if (this.closed) return true;
    if (this.queues.size > 0) return false;
    this.refill();
    if (this.tokens < 0) return false;
    this.tokens -= bytes;
    return true;
  }

  /**
   * Resolves once `bytes` may go (or have been paid for), in `owner`'s turn: owners take turns, and
   * one owner's takes pass in the order made. Without an owner, the take waits in arrival order.
   */
  take(bytes: number, owner: object = {}): Promise<void> {
    if (this.tryTake(bytes)) return Promise.resolve();
    return new Promise((resolve) => {
      const queue = this.queues.get(owner);
      if (queue) queue.push({ bytes, resolve });
      else this.queues.set(owner, [{ bytes, resolve }]);
      this.schedule();
    });
  }

  /**
   * Gives back `bytes` taken for data that will not be sent (a request cancelled while it waited, say),
   * so they go to the next waiter at once. The bucket still holds at most `burstBytes`.
   */
  refund(bytes: number): void {
    if (!(bytes > 0) || this.closed) return;
    this.refill();
    this.tokens = Math.min(this.burstBytes, this.tokens + bytes);
    if (this.queues.size === 0) return;
    this.cancelTimer();
    this.release();
  }

  /** Lets waiters through, one per owner in turn, while the bucket is not in debt. */
  private release(): void {
    this.refill();
    while (this.tokens >= 0) {
      const next = this.queues.entries().next();
      if (next.done) break;
      const [owner, queue] = next.value;
      const waiter = queue.shift()!;
      // The owner goes to the back of the line, or leaves it with nothing more to take.
      this.queues.delete(owner);
      if (queue.length > 0) this.queues.set(owner, queue);
      this.tokens -= waiter.bytes;
      waiter.resolve();
    }
    this.schedule();
  }

  /** Wakes up when the debt is paid, if anyone waits. */
  private schedule(): void {
    if (this.timer !== null || this.queues.size === 0) return;
    const waitMs = this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.release();
      },
      Math.max(1, Math.ceil(waitMs)),
    );
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Releases every waiter at once, and lets everything through from now on. */
  close(): void {
    this.closed = true;
    this.cancelTimer();
    const queues = [...this.queues.values()];
    this.queues.clear();
    for (const queue of queues) for (const waiter of queue) waiter.resolve();
  }
}

const RATE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/**
 * Parses a rate such as `500K`, `2M`, `1.5G` or `1048576`: bytes per second, where K, M and G are
 * powers of 1024 (`KB`, `KiB`, a `B` and a `/s` are allowed too, in any case). Throws a RangeError
 * that says what is wrong.
 */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(?:([KMG])(?:i?B)?|B)?(?:\/s)?$/i.exec(text.trim());
  if (!match)
    throw new RangeError(`"${text}" is not a rate: use bytes per second, e.g. 500K, 2M, 1G (K = 1024)`);
  const value = Math.floor(Number(match[1]) * RATE_UNITS[(match[2] ?? '').toUpperCase()]!);
  if (!(value >= 1)) throw new RangeError(`"${text}" is not a positive rate: it must be at least 1 byte/s`);
  if (!Number.isSafeInteger(value)) throw new RangeError(`"${text}" is too large a rate`);
  return value;
}
