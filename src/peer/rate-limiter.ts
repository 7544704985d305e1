/**
 * A token bucket shared by every connection of a process: `take(n)` resolves when n bytes may be
 * sent, and `refund(n)` gives back what was taken for bytes that were not sent after all. Waiters are
 * served in arrival order, so connections share the rate fairly, and the bucket holds at most one
 * second of tokens, so an idle spell (or a refund) does not allow a long burst.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  /** @param bytesPerSecond the sustained rate; must be positive. */
  constructor(readonly bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) throw new RangeError('the rate must be positive');
    this.tokens = bytesPerSecond;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(
      this.bytesPerSecond,
      this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond,
    );
    this.last = now;
  }

  /** Resolves once `bytes` may go out. A request larger than a second's worth waits for its debt. */
  take(bytes: number): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens > 0) {
      // Going into debt lets one chunk larger than the bucket through; the next waits for it.
      this.tokens -= bytes;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push({ bytes, resolve });
      this.schedule();
    });
  }

  /**
   * Gives back `bytes` taken for data that will not be sent (a request cancelled while it waited, say),
   * so they go to the next waiter at once. The bucket still holds at most one second of tokens.
   */
  refund(bytes: number): void {
    if (!(bytes > 0)) return;
    this.refill();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + bytes);
    if (this.waiters.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.release();
  }

  /** Lets waiters through while there are tokens, then waits for the next one's turn. */
  private release(): void {
    while (this.waiters.length > 0 && this.tokens > 0) {
      const next = this.waiters.shift()!;
      this.tokens -= next.bytes;
      next.resolve();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.waiters.length === 0) return;
    const waitMs = this.tokens > 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.refill();
        this.release();
      },
      Math.max(1, waitMs),
    );
  }

  /** Releases every waiter at once (their sends will find their connections closed). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }
}

const RATE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parses a rate such as `500K`, `2M`, `1.5G` or `1048576` (bytes per second; K, M, G are powers of 1024). */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B?)?(?:\/s)?$/i.exec(text.trim());
  if (!match) throw new RangeError(`"${text}" is not a rate: use bytes per second, e.g. 500K, 2M, 1G`);
  const value = Number(match[1]) * RATE_UNITS[match[2]!.toUpperCase()]!;
  if (!(value >= 1) || !Number.isFinite(value)) throw new RangeError(`"${text}" is not a positive rate`);
  return Math.floor(value);
}
