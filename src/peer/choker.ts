/**
 * Upload slots ("choking"): which of the connections that want chunks from us are served now.
 *
 * Serving every downloader at once splits our upload into trickles: everyone holds half-sent chunks
 * and nobody has a whole one to pass on. So a chunk server serves `slots` connections at a time,
 * plus one optimistic slot, and refuses the others' chunk requests (REJECT ERR_CHOKED) after telling
 * them CHOKE; they wait for UNCHOKE. The scheme is BitTorrent's, adapted:
 *
 * - A connection competes only while it wants chunks: it has requests with us, asked within
 *   interestMs, or was choked while asking (it waits for us, so it still wants them). A slot held by
 *   a connection that wants nothing goes back without a word (its client may ask again, as at first).
 * - A connection that asks while a slot is free (or held by one that wants nothing) gets it at once,
 *   so a lone downloader is never delayed; otherwise it is choked and waits.
 * - Every rechoke (UNCHOKE_INTERVAL_MS), tit-for-tat: the regular slots go to the connections whose
 *   peers gave us the most lately (`reciprocation`, verified bytes by peer id).
 * - Slots nobody earned that way (all of them when we only seed) go round, as BitTorrent's seeding
 *   choker does: each rechoke, a third of them (at least one) go to the connections that have waited
 *   longest, and the rest stay with the current holders, those whose turn began most recently first
 *   (so each gets a turn of about TURN_INTERVALS rechokes), then those we sent the most to lately
 *   (they take our bandwidth best). A waiting connection with W ahead of it is thus served within
 *   about W / ceil(slots / 3) rechokes, whatever the others send.
 * - Every optimistic rotation (OPTIMISTIC_UNCHOKE_INTERVAL_MS) the optimistic slot moves to a random
 *   waiting connection, one never served three times as likely as another, so a newcomer gets
 *   something to trade and a better partner than the current ones can be found.
 * - A connection that closes frees its slot at once for one that waits.
 *
 * Peer ids come from INFO and are not authenticated: a client claiming the id of a peer that feeds
 * us can compete with its rank, as in BitTorrent. It gains one slot among several, for one interval
 * at a time, and costs nothing the budgets of the chunk server do not already bound.
 *
 * Pure bookkeeping with an injectable clock and random source; the chunk server owns the timers and
 * sends the messages (onChange).
 */
import { UPLOAD_INTEREST_MS } from '../constants.js';

export interface ChokerOptions<K> {
  /** Regular slots; the optimistic slot comes on top. Infinity: nobody is ever choked. */
  slots: number;
  /** Tell a client it is choked (true: send CHOKE, refuse its requests) or unchoked (false: UNCHOKE). */
  onChange: (key: K, choked: boolean) => void;
  /** Bytes the peer with this id (hex) gave us lately (tit-for-tat); default none from anyone. */
  reciprocation?: (peerId: string) => number;
  /** True while the connection has chunk requests with us (waiting, being read or sent). */
  busy?: (key: K) => boolean;
  /** A connection wants chunks while it asked this recently (or is busy). Default UPLOAD_INTEREST_MS. */
  interestMs?: number;
  /** The rechoke period, for the length of a seeding turn. Default: interestMs. */
  rechokeIntervalMs?: number;
  now?: () => number;
  random?: () => number;
}

type Slot = 'regular' | 'optimistic';

interface Entry<K> {
  key: K;
  /** From INFO (hex); '' until then. */
  peerId: string;
  slot: Slot | null;
  /** Told CHOKE while it wanted chunks: it waits for UNCHOKE. */
  waiting: boolean;
  waitingSince: number;
  /** When its current slot was given. */
  unchokedAt: number;
  everUnchoked: boolean;
  lastRequestAt: number;
  /** Chunk bytes sent in this rechoke period and the one before. */
  sent: number;
  sentBefore: number;
}

/** A seeding turn lasts about this many rechokes before the holder ranks by what it takes. */
const TURN_INTERVALS = 3;
/** A connection never served is this many times as likely to get the optimistic slot. */
const NEWCOMER_WEIGHT = 3;

export interface ChokerStats {
  /** Connections holding a slot. */
  unchoked: number;
  /** Connections choked and waiting for a slot. */
  choked: number;
}

export class Choker<K> {
  private readonly entries = new Map<K, Entry<K>>();
  private readonly slots: number;
  private readonly interestMs: number;
  private readonly turnMs: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: ChokerOptions<K>) {
    if (!(options.slots >= 0)) throw new RangeError(`upload slots must be 0 or more, not ${options.slots}`);
    this.slots = options.slots;
    this.interestMs = options.interestMs ?? UPLOAD_INTEREST_MS;
    this.turnMs = TURN_INTERVALS * (options.rechokeIntervalMs ?? this.interestMs);
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  get stats(): ChokerStats {
    let unchoked = 0;
    let choked = 0;
    for (const e of this.entries.values()) {
      if (e.slot) unchoked++;
      else if (e.waiting) choked++;
    }
    return { unchoked, choked };
  }

  /** True while `key` holds a slot. */
  isUnchoked(key: K): boolean {
    return this.entries.get(key)?.slot != null;
  }

  /** A connection opened. It holds no slot until it asks for a chunk. */
  add(key: K): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, {
      key,
      peerId: '',
      slot: null,
      waiting: false,
      waitingSince: 0,
      unchokedAt: 0,
      everUnchoked: false,
      lastRequestAt: -Infinity,
      sent: 0,
      sentBefore: 0,
    });
  }

  /** The connection's client introduced itself (INFO): its peer id, hex. */
  identify(key: K, peerId: string): void {
    const e = this.entries.get(key);
    if (e) e.peerId = peerId;
  }

  /**
   * A chunk request arrived: true to serve it, false to refuse it (ERR_CHOKED). A connection without
   * a slot gets one at once if one is free; otherwise it is choked (onChange) and waits.
   */
  request(key: K): boolean {
    const e = this.entries.get(key);
    if (!e) return true;
    const now = this.now();
    e.lastRequestAt = now;
    if (e.slot) return true;
    if (e.waiting) return false;
    const slot = this.freeSlot() ?? this.reclaim(now);
    if (slot) {
      this.give(e, slot, now);
      return true;
    }
    this.choke(e, now);
    return false;
  }

  /** Chunk bytes sent to `key`: the seeding choker keeps those who take the most. */
  sent(key: K, bytes: number): void {
    const e = this.entries.get(key);
    if (e) e.sent += bytes;
  }

  /** A connection closed: its slot goes at once to one that waits. */
  remove(key: K): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    if (e.slot) this.fill(e.slot, this.now());
  }

  /** Gives the regular slots again (every UNCHOKE_INTERVAL_MS). */
  rechoke(): void {
    const now = this.now();
    this.dropUninterested(now);
    const candidates = [...this.entries.values()].filter((e) => e.slot || e.waiting);
    const optimistic = candidates.find((e) => e.slot === 'optimistic') ?? null;

    // Tit-for-tat first: whoever gave us the most lately.
    const regular = candidates
      .map((e) => ({ e, gave: this.gave(e) }))
      .filter(({ gave }) => gave > 0)
      .sort((a, b) => b.gave - a.gave)
      .slice(0, this.slots)
      .map(({ e }) => e);
    const rest = this.slots - regular.length;
    if (rest > 0) {
      const chosen = new Set(regular);
      // The optimistic holder keeps its own slot; it earns a regular one only by reciprocation.
      const others = candidates.filter((e) => !chosen.has(e) && e !== optimistic);
      regular.push(...(others.length <= rest ? others : this.seedingTurns(others, rest, now)));
    }

    const keep = new Set(regular);
    const losers = candidates.filter((e) => e.slot === 'regular' && !keep.has(e));
    for (const e of regular) this.give(e, 'regular', now);
    if (![...this.entries.values()].some((e) => e.slot === 'optimistic')) {
      // The optimistic slot is free (its holder just earned a regular one): a waiting connection gets
      // it, or else one losing its regular slot keeps this one instead (no CHOKE, then UNCHOKE).
      const pick = this.pickOptimistic(this.waiting()) ?? this.pickOptimistic(losers);
      if (pick?.slot) {
        pick.slot = 'optimistic';
        losers.splice(losers.indexOf(pick), 1);
      } else if (pick) {
        this.give(pick, 'optimistic', now);
      }
    }
    for (const e of losers) this.choke(e, now);
    for (const e of this.entries.values()) {
      e.sentBefore = e.sent;
      e.sent = 0;
    }
  }

  /** Moves the optimistic slot to a random waiting connection (every OPTIMISTIC_UNCHOKE_INTERVAL_MS). */
  rotateOptimistic(): void {
    const now = this.now();
    // Regular slots that went back are not left idle until the next rechoke.
    for (const slot of this.dropUninterested(now)) if (slot === 'regular') this.fill(slot, now);
    const pick = this.pickOptimistic(this.waiting());
    if (!pick) return;
    for (const e of this.entries.values()) if (e.slot === 'optimistic') this.choke(e, now);
    this.give(pick, 'optimistic', now);
  }

  /** The seeding choker's picks for `count` slots among `others` (more than `count` of them). */
  private seedingTurns(others: Entry<K>[], count: number, now: number): Entry<K>[] {
    const waiting = others.filter((e) => !e.slot).sort((a, b) => a.waitingSince - b.waitingSince);
    const holders = others
      .filter((e) => e.slot)
      .sort((a, b) => {
        const aFresh = now - a.unchokedAt < this.turnMs;
        const bFresh = now - b.unchokedAt < this.turnMs;
        if (aFresh !== bFresh) return aFresh ? -1 : 1;
        if (aFresh) return b.unchokedAt - a.unchokedAt;
        return b.sent + b.sentBefore - (a.sent + a.sentBefore);
      });
    const forced = waiting.slice(0, Math.ceil(count / 3));
    const kept = holders.slice(0, count - forced.length);
    // Too few holders to keep: more of those who wait.
    const more = waiting.slice(forced.length, forced.length + count - forced.length - kept.length);
    return [...kept, ...forced, ...more];
  }

  private gave(e: Entry<K>): number {
    if (!e.peerId || !this.options.reciprocation) return 0;
    const bytes = this.options.reciprocation(e.peerId);
    return Number.isFinite(bytes) && bytes > 0 ? bytes : 0;
  }

  private interested(e: Entry<K>, now: number): boolean {
    if (e.waiting) return true;
    if (now - Math.max(e.lastRequestAt, e.slot ? e.unchokedAt : -Infinity) < this.interestMs) return true;
    return this.options.busy?.(e.key) ?? false;
  }

  /** Slots held by connections that want nothing go back, silently (see the top of this file). */
  private dropUninterested(now: number): Slot[] {
    const freed: Slot[] = [];
    for (const e of this.entries.values()) {
      if (e.slot && !this.interested(e, now)) {
        freed.push(e.slot);
        e.slot = null;
      }
    }
    return freed;
  }

  private freeSlot(): Slot | null {
    let regular = 0;
    let optimistic = false;
    for (const e of this.entries.values()) {
      if (e.slot === 'regular') regular++;
      else if (e.slot === 'optimistic') optimistic = true;
    }
    if (regular < this.slots) return 'regular';
    return optimistic ? null : 'optimistic';
  }

  /** Takes back a slot from a connection that no longer wants chunks, if there is one. */
  private reclaim(now: number): Slot | null {
    for (const e of this.entries.values()) {
      if (e.slot && !this.interested(e, now)) {
        const slot = e.slot;
        e.slot = null;
        return slot;
      }
    }
    return null;
  }

  /** Gives a free `slot` to a waiting connection: the best giver, else who waited longest (regular). */
  private fill(slot: Slot, now: number): void {
    let pick: Entry<K> | null;
    if (slot === 'optimistic') {
      pick = this.pickOptimistic(this.waiting());
    } else {
      pick = null;
      let best = 0;
      for (const e of this.entries.values()) {
        if (!e.waiting) continue;
        const gave = this.gave(e);
        if (!pick || gave > best || (gave === best && e.waitingSince < pick.waitingSince)) {
          pick = e;
          best = gave;
        }
      }
    }
    if (pick) this.give(pick, slot, now);
  }

  private waiting(): Entry<K>[] {
    return [...this.entries.values()].filter((e) => e.waiting);
  }

  /** A random one of `pool`, one never served NEWCOMER_WEIGHT times as likely as another. */
  private pickOptimistic(pool: Entry<K>[]): Entry<K> | null {
    if (pool.length === 0) return null;
    const weight = (e: Entry<K>): number => (e.everUnchoked ? 1 : NEWCOMER_WEIGHT);
    let x = this.random() * pool.reduce((sum, e) => sum + weight(e), 0);
    for (const e of pool) {
      x -= weight(e);
      if (x < 0) return e;
    }
    return pool[pool.length - 1]!;
  }

  /**
   * Gives `slot` to `e`. Only a client told CHOKE is told UNCHOKE: one that held no slot without
   * waiting (new, or its slot went back while it wanted nothing) still takes itself for unchoked.
   */
  private give(e: Entry<K>, slot: Slot, now: number): void {
    const fresh = e.slot === null;
    e.slot = slot;
    if (!fresh) return;
    const tell = e.waiting;
    e.waiting = false;
    e.unchokedAt = now;
    e.everUnchoked = true;
    if (tell) this.options.onChange(e.key, false);
  }

  private choke(e: Entry<K>, now: number): void {
    e.slot = null;
    e.waiting = true;
    e.waitingSince = now;
    this.options.onChange(e.key, true);
  }
}
