/**
 * What happens on a tracker, for the people and programs watching it: an event for every change to
 * the catalog or to who holds what, and counters for metrics. Sessions report here; the dashboard
 * and /metrics listen. Nothing here changes how a request is served: a listener that throws is
 * logged and ignored.
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';

/** What changed: a peer joined or left, or the files or chunks it holds changed. */
export type CatalogChangeKind =
  | 'register'
  | 'announce'
  | 'unshare'
  | 'have'
  | 'leave'
  | 'expire'
  | 'disconnect'
  /** A heartbeat reported a new count of bytes the peer has uploaded. */
  | 'uploaded';

export interface CatalogChange {
  kind: CatalogChangeKind;
  /** Hex id of the peer concerned. */
  peerId: string;
  /**
   * Hex ids of the files whose holders changed. Empty when the peer left: then every file it held
   * may have changed (the store forgets them all at once without listing them).
   */
  fileIds: string[];
}

export interface TrackerActivityEvents {
  change: [change: CatalogChange];
}

/** Counters as read by metrics: totals since the tracker started. */
export interface TrackerCounters {
  /** Requests handled, by kind (register, announce, list...). */
  requests: Record<string, number>;
  /** Requests or files refused, by kind and error code; connections refused have kind `connection`. */
  refusals: { kind: string; code: string; count: number }[];
  /** Sizes of the files accepted in ANNOUNCE requests, summed. */
  announcedBytes: number;
}

/** Kinds and codes both come from our own code, so this is a safety net, never reached. */
const MAX_COUNTER_KEYS = 512;

export class TrackerActivity extends EventEmitter<TrackerActivityEvents> {
  private readonly logger: Logger;
  private readonly requestCounts = new Map<string, number>();
  private readonly refusalCounts = new Map<string, { kind: string; code: string; count: number }>();
  private announced = 0;

  constructor(logger: Logger = silentLogger()) {
    super();
    this.logger = logger;
  }

  /** A request of this kind was handled (whatever its outcome). */
  requestHandled(kind: string): void {
    bump(this.requestCounts, kind);
  }

  /** A request, a file in an ANNOUNCE, or a connection was refused with this code. */
  refused(kind: string, code: string): void {
    const key = `${kind} ${code}`;
    const entry = this.refusalCounts.get(key);
    if (entry) entry.count++;
    else if (this.refusalCounts.size < MAX_COUNTER_KEYS)
      this.refusalCounts.set(key, { kind, code, count: 1 });
  }

  /** A file of this size was accepted in an ANNOUNCE. */
  fileAnnounced(size: number): void {
    this.announced += size;
  }

  /** Reports a change to listeners; a listener that throws is logged, never the session's problem. */
  changed(change: CatalogChange): void {
    if (this.listenerCount('change') === 0) return;
    try {
      this.emit('change', change);
    } catch (err) {
      this.logger.error({ err: errorMessage(err), kind: change.kind }, 'a catalog change listener failed');
    }
  }

  counters(): TrackerCounters {
    return {
      requests: Object.fromEntries(this.requestCounts),
      refusals: [...this.refusalCounts.values()].map((entry) => ({ ...entry })),
      announcedBytes: this.announced,
    };
  }
}

function bump(counts: Map<string, number>, key: string): void {
  const count = counts.get(key);
  if (count !== undefined) counts.set(key, count + 1);
  else if (counts.size < MAX_COUNTER_KEYS) counts.set(key, 1);
}
