/**
 * Bytes per key over a recent window, in two half-window buckets: a total covers between half the
 * window and all of it. A key leaves once it has added nothing for a whole window, so the map holds
 * only keys active lately. The upload choker's tit-for-tat reads it: who gave us the most lately.
 */
export class RecentBytes<K> {
  private current = new Map<K, number>();
  private previous = new Map<K, number>();
  private bucketStart: number;
  private readonly halfMs: number;

  constructor(
    windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.halfMs = Math.max(1, windowMs / 2);
    this.bucketStart = now();
  }

  add(key: K, bytes: number): void {
    if (!(bytes > 0)) return;
    this.roll();
    this.current.set(key, (this.current.get(key) ?? 0) + bytes);
  }

  get(key: K): number {
    this.roll();
    return (this.current.get(key) ?? 0) + (this.previous.get(key) ?? 0);
  }

  /** Keys with bytes in the window now. */
  get size(): number {
    this.roll();
    return new Set([...this.current.keys(), ...this.previous.keys()]).size;
  }

  private roll(): void {
    const elapsed = this.now() - this.bucketStart;
    if (elapsed < this.halfMs) return;
    this.previous = elapsed < 2 * this.halfMs ? this.current : new Map();
    this.current = new Map();
    this.bucketStart += Math.floor(elapsed / this.halfMs) * this.halfMs;
  }
}
