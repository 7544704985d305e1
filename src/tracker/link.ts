/**
 * A long-running peer's link to its tracker: one registered session, re-established whenever it
 * is lost, with exponential back-off and jitter between attempts.
 *
 * After each (re)connect the link registers, then re-sends everything the peer holds, taken from
 * the `holdings` callback at that moment (a new session starts from nothing on the tracker). The
 * peer updates its own holdings before calling announce/unshare/have here, so:
 * - a call made while the link is down is dropped (the next session's snapshot includes it);
 * - a call made while a new session is being filled waits until that is done, then is sent, so it
 *   is applied after the snapshot it may postdate (an unshare cannot be overtaken by a stale
 *   announce).
 * Chunk reports (have) are coalesced per file while one is in flight; see have().
 */
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { formatEndpoint } from '../address.js';
import { RATE_LIMITED_RETRY_MS, RECONNECT_MAX_MS, RECONNECT_MIN_MS } from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { Manifest } from '../storage/manifest.js';
import type { AnnounceResult } from '../wire/tracker-messages.js';
import type { Credentials } from '../transport/credentials.js';
import { TrackerClient } from './client.js';

/** What a peer holds: files it has whole, and chunks of files it is downloading. */
export interface Holdings {
  complete: Manifest[];
  partial: { fileId: Buffer; indices: number[] }[];
}

export interface TrackerLinkOptions {
  host: string;
  port: number;
  /** How we register: our name and serving port (the peer id is the one our credentials prove). */
  identity: { name: string; port: number };
  /** Our identity for TLS (and swarm key); a throw-away one if not given. */
  credentials?: Credentials;
  /** The tracker's peer id, when the user pinned it (ID@HOST:PORT): anyone else is refused. */
  trackerId?: Buffer;
  /** Called after each (re)connect: what to announce to the new session. */
  holdings: () => Holdings;
  /** Chunk bytes this peer has sent to others so far, reported with every heartbeat. */
  uploadedBytes?: () => number;
  logger?: Logger;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export interface TrackerLinkEvents {
  up: [client: TrackerClient];
  down: [reason: Error | undefined];
}

interface HaveBatch {
  fileId: Buffer;
  indices: Set<number>;
  waiters: (() => void)[];
}

/** Request failures that mean "the session is gone", as opposed to the tracker refusing a request. */
const DOWN_CODES = new Set(['ERR_CLOSED', 'ERR_TIMEOUT']);

export class TrackerLink extends EventEmitter<TrackerLinkEvents> {
  private readonly options: TrackerLinkOptions;
  private readonly logger: Logger;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private live: TrackerClient | null = null;
  /** Set while a registered new session is being filled with our holdings; calls wait for it. */
  private syncing: Promise<void> | null = null;
  private started = false;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private lastError: Error | undefined;
  /** The client of the attempt in progress, so stop() can close it. */
  private attempt: TrackerClient | null = null;
  /** Chunks reported by have() and not yet sent, per file (hex id); see have(). */
  private readonly haveBatches = new Map<string, HaveBatch>();
  private sendingHaves = false;
  /** ready() callers to fail when the link stops. */
  private readonly onStop = new Set<(err: Error) => void>();

  constructor(options: TrackerLinkOptions) {
    super();
    this.options = options;
    this.logger = (options.logger ?? silentLogger()).child({
      tracker: formatEndpoint(options),
    });
    this.minDelayMs = options.reconnectMinMs ?? RECONNECT_MIN_MS;
    this.maxDelayMs = Math.max(this.minDelayMs, options.reconnectMaxMs ?? RECONNECT_MAX_MS);
  }

  /** The live, registered and up-to-date client, or null while the link is down. */
  get client(): TrackerClient | null {
    return this.live;
  }

  /** Starts connecting in the background. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.connect();
  }

  /**
   * Resolves with the live client, waiting for one if need be. Rejects ERR_UNREACHABLE after
   * `timeoutMs`, ERR_CLOSED if the link is stopped.
   */
  ready(timeoutMs = 10_000): Promise<TrackerClient> {
    if (this.live) return Promise.resolve(this.live);
    if (this.stopped) return Promise.reject(new SwarmError('ERR_CLOSED', 'the tracker link is stopped'));
    return new Promise((resolve, reject) => {
      const finish = (err: Error | null, client?: TrackerClient): void => {
        clearTimeout(timer);
        this.off('up', onUp);
        this.onStop.delete(finish);
        if (err) reject(err);
        else resolve(client!);
      };
      const onUp = (client: TrackerClient): void => finish(null, client);
      const timer = setTimeout(() => {
        const why = this.lastError ? `: ${this.lastError.message}` : '';
        finish(
          new SwarmError(
            'ERR_UNREACHABLE',
            `no tracker session with ${formatEndpoint(this.options)} within ${timeoutMs} ms${why}`,
          ),
        );
      }, timeoutMs);
      // This timer is deliberately not unref'd: a caller awaiting ready() must get its answer even
      // when nothing else keeps the process alive between two connection attempts.
      this.on('up', onUp);
      this.onStop.add(finish);
    });
  }

  /** Announces files; resolves null when the link is down (they are re-sent on reconnect). */
  async announce(manifests: Manifest[]): Promise<AnnounceResult[] | null> {
    return this.whenUp((client) => client.announce(manifests), null);
  }

  /** Stops sharing a file; a no-op when down, or when the tracker did not have it from us. */
  async unshare(fileId: Buffer): Promise<void> {
    // Chunks of it still waiting to be reported must not follow the unshare.
    const pending = this.haveBatches.get(fileId.toString('hex'));
    this.haveBatches.delete(fileId.toString('hex'));
    for (const resolve of pending?.waiters ?? []) resolve();
    await this.whenUp(async (client) => {
      try {
        await client.unshare(fileId);
      } catch (err) {
        if (errorCode(err) !== 'ERR_UNKNOWN_FILE') throw err;
      }
    }, undefined);
  }

  /**
   * Reports chunks we now hold; a no-op when down (partial holdings are re-sent on reconnect).
   * Calls are coalesced: while one HAVE is on its way, the chunks reported meanwhile are gathered
   * per file and sent together, so a fast download costs the tracker a few requests, not one per
   * chunk. Never rejects: it is called for every chunk, often without waiting, and a refusal (the
   * file left the catalog meanwhile) leaves nothing for the caller to do. Refusals are logged; a batch
   * refused for the session's request rate (ERR_RATE_LIMITED) is sent again RATE_LIMITED_RETRY_MS
   * later, with whatever was reported meanwhile.
   */
  have(fileId: Buffer, indices: readonly number[]): Promise<void> {
    if (indices.length === 0 || (!this.live && !this.syncing)) return Promise.resolve();
    const key = fileId.toString('hex');
    let batch = this.haveBatches.get(key);
    if (!batch) {
      batch = { fileId, indices: new Set(), waiters: [] };
      this.haveBatches.set(key, batch);
    }
    for (const index of indices) batch.indices.add(index);
    const sent = new Promise<void>((resolve) => batch.waiters.push(resolve));
    if (!this.sendingHaves) void this.sendHaves();
    return sent;
  }

  /** Sends the gathered HAVE batches one at a time, until none is left. */
  private async sendHaves(): Promise<void> {
    this.sendingHaves = true;
    try {
      for (const [key, batch] of this.haveBatches) {
        this.haveBatches.delete(key);
        try {
          await this.whenUp((client) => client.have(batch.fileId, [...batch.indices]), undefined);
        } catch (err) {
          if (errorCode(err) === 'ERR_RATE_LIMITED' && !this.stopped) {
            // Map iteration reaches an entry added during it: the batch is tried again after the pause.
            this.requeueHaves(key, batch);
            this.logger.debug({ file: key.slice(0, 12) }, 'chunks not reported yet: over the request rate');
            await delay(RATE_LIMITED_RETRY_MS, undefined, { ref: false });
            continue;
          }
          this.logger.warn(
            { file: key.slice(0, 12), code: errorCode(err), err: errorMessage(err) },
            'chunks not reported',
          );
        }
        for (const resolve of batch.waiters) resolve();
      }
    } finally {
      this.sendingHaves = false;
    }
  }

  /** Puts a refused batch back, merged with what was reported for the same file meanwhile. */
  private requeueHaves(key: string, batch: HaveBatch): void {
    const newer = this.haveBatches.get(key);
    this.haveBatches.delete(key);
    if (newer) {
      for (const index of newer.indices) batch.indices.add(index);
      batch.waiters.push(...newer.waiters);
    }
    this.haveBatches.set(key, batch);
  }

  /** Stops reconnecting and, if a session is up, says goodbye on it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt?.close();
    const stoppedError = new SwarmError('ERR_CLOSED', 'the tracker link is stopped');
    for (const fail of [...this.onStop]) fail(stoppedError);
    const client = this.live;
    if (client) {
      await client.leave().catch((err: unknown) => {
        this.logger.debug({ err: errorMessage(err) }, 'leave failed; closing');
      });
      this.emit('down', undefined);
    }
    this.logger.info('tracker link stopped');
  }

  /** Runs `action` on the live client; the `down` value when there is none or it is lost meanwhile. */
  private async whenUp<T, D>(action: (client: TrackerClient) => Promise<T>, down: D): Promise<T | D> {
    if (this.syncing) await this.syncing;
    const client = this.live;
    if (!client) return down;
    try {
      return await action(client);
    } catch (err) {
      if (DOWN_CODES.has(errorCode(err) ?? '')) {
        // The session is unusable; closing it makes the link reconnect and re-send everything.
        client.close();
        return down;
      }
      throw err;
    }
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    if (this.stopped) return;
    const { host, port, identity } = this.options;
    let client: TrackerClient | null = null;
    let synced: () => void = () => {};
    try {
      client = await TrackerClient.connect({
        host,
        port,
        logger: this.options.logger,
        requestTimeoutMs: this.options.requestTimeoutMs,
        connectTimeoutMs: this.options.connectTimeoutMs,
        credentials: this.options.credentials,
        trackerId: this.options.trackerId,
      });
      this.attempt = client;
      if (this.stopped) throw new SwarmError('ERR_CLOSED', 'the tracker link is stopped');
      const registration = await client.register(identity);
      client.startHeartbeat(registration.heartbeatMs, this.options.uploadedBytes);
      this.syncing = new Promise((resolve) => (synced = resolve));
      await this.sendHoldings(client, this.options.holdings());
      if (this.stopped || client.isClosed)
        throw new SwarmError('ERR_CLOSED', 'the session ended while starting');
    } catch (err) {
      client?.close();
      this.attempt = null;
      this.syncing = null;
      synced();
      this.lastError = err as Error;
      this.scheduleRetry(err as Error, this.failures === 0 ? 'warn' : 'debug');
      return;
    }
    this.attempt = null;
    this.failures = 0;
    this.live = client;
    const up = client;
    up.once('close', (reason) => this.onLost(up, reason));
    // Announce 'up' before releasing the calls that waited, so listeners see the link up first.
    this.syncing = null;
    this.logger.info('tracker session up');
    this.emit('up', up);
    synced();
  }

  /** Re-sends what we hold to a fresh session. A refused file is logged, not fatal. */
  private async sendHoldings(client: TrackerClient, holdings: Holdings): Promise<void> {
    const results = await client.announce(holdings.complete);
    for (const result of results) {
      if (result.code) {
        this.logger.warn(
          { file: result.fileId.toString('hex').slice(0, 12), code: result.code },
          'file refused',
        );
      }
    }
    for (const { fileId, indices } of holdings.partial) {
      try {
        await client.have(fileId, indices);
      } catch (err) {
        const code = errorCode(err);
        // The file may have left the catalog while we were away: nothing to report then.
        if (code !== 'ERR_UNKNOWN_FILE' && code !== 'ERR_UNKNOWN_CHUNK') throw err;
        this.logger.debug({ file: fileId.toString('hex').slice(0, 12), code }, 'partial holding not re-sent');
      }
    }
  }

  private onLost(client: TrackerClient, reason: Error | undefined): void {
    if (this.live !== client) return;
    this.live = null;
    if (this.stopped) return;
    this.lastError = reason;
    this.emit('down', reason);
    this.logger.warn({ code: errorCode(reason), err: reason?.message }, 'tracker session lost');
    this.scheduleRetry(reason, 'debug');
  }

  /** Plans the next attempt: the delay doubles with each failure up to the maximum, with jitter. */
  private scheduleRetry(reason: Error | undefined, level: 'warn' | 'debug'): void {
    if (this.stopped) return;
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    // A delay in [ceiling / 2, ceiling]: spreads out the peers that lost the tracker together.
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.logger[level](
      { code: errorCode(reason), err: reason?.message, delay },
      'no tracker session; retrying',
    );
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }
}
