/**
 * Bookkeeping for requests awaiting replies on one connection: ids, deadlines, a bound on how
 * many are outstanding, and failing them all at once when the connection closes.
 */
import { SwarmError } from '../errors.js';

interface Pending<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class PendingRequests<T> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<T>>();
  private closedWith: Error | null = null;

  /**
   * @param heldBackMs when given, a clock of the time the connection has spent held back by us (paused
   *   by a receive limiter): that time does not count against a request's deadline, since the other
   *   side could not answer during it.
   */
  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
    private readonly heldBackMs?: () => number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Reserves an id and returns it with a promise for the reply. `onTimeout` runs if no reply
   * arrives in time (the promise then rejects with ERR_TIMEOUT).
   */
  open(what: string, onTimeout?: (id: number) => void): { id: number; reply: Promise<T> } {
    if (this.closedWith) return { id: 0, reply: Promise.reject(this.closedWith) };
    if (this.pending.size >= this.max) {
      return {
        id: 0,
        reply: Promise.reject(new SwarmError('ERR_LIMIT', `more than ${this.max} requests in flight`)),
      };
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const reply = new Promise<T>((resolve, reject) => {
      const heldBack = this.heldBackMs;
      let heldBackAtStart = heldBack?.() ?? 0;
      const expire = (): void => {
        const entry = this.pending.get(id);
        if (!entry) return;
        if (heldBack) {
          // The time we held the other side back is added to the deadline.
          const owed = heldBack() - heldBackAtStart;
          if (owed > 0) {
            heldBackAtStart += owed;
            entry.timer = setTimeout(expire, owed);
            entry.timer.unref();
            return;
          }
        }
        this.pending.delete(id);
        onTimeout?.(id);
        reject(new SwarmError('ERR_TIMEOUT', `${what} got no reply within ${this.timeoutMs} ms`));
      };
      const timer = setTimeout(expire, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
    });
    return { id, reply };
  }

  /** Settles request `id` with a reply; returns false if no such request is waiting. */
  resolve(id: number, value: T): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(value);
    return true;
  }

  reject(id: number, err: Error): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.reject(err);
    return true;
  }

  /** Fails every outstanding request and every later one. */
  close(err: Error): void {
    this.closedWith = err;
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      clearTimeout(entry.timer);
      entry.reject(err);
    }
  }
}
