/**
 * Server-sent events: live updates pushed to the pages over one long-lived response each, which
 * the browser's EventSource reconnects by itself. Everything here is bounded:
 *
 * - at most `maxClients` streams at once (more are refused with ERR_LIMIT);
 * - each stream writes straight to its socket until the socket pushes back; from then on messages
 *   wait in a queue keyed by what they describe, where a newer message replaces an older one with
 *   the same key (only the latest state of a file matters), and a client whose queue still grows
 *   past `maxQueuedEvents` is disconnected: its EventSource reconnects and starts afresh;
 * - KeyedThrottle limits how often each kind of update is computed and sent at all.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { HttpError } from './errors.js';

export interface SseHubOptions {
  /** Streams open at once; default 32. */
  maxClients?: number;
  /** Messages waiting for a slow client before it is dropped; default 64. */
  maxQueuedEvents?: number;
  /** A comment is sent this often so that idle streams stay open through proxies; default 15 s. */
  heartbeatMs?: number;
  /** How long the browser waits before reconnecting a dropped stream; default 3 s. */
  retryMs?: number;
  logger?: Logger;
}

/** Which clients a message goes to, by what each asked for when it connected. */
export type SseFilter<Meta> = (meta: Meta) => boolean;

class SseClient<Meta> {
  /** Messages held back while the socket is full, by key, oldest first. */
  private readonly queue = new Map<string, string>();
  private blocked = false;
  closed = false;

  constructor(
    readonly meta: Meta,
    private readonly res: ServerResponse,
    private readonly maxQueued: number,
  ) {
    res.on('drain', () => this.flush());
  }

  /** Writes now, or queues; false if the client has fallen too far behind (drop it). */
  push(key: string, message: string): boolean {
    if (this.closed) return true;
    if (!this.blocked) {
      this.blocked = !this.res.write(message);
      return true;
    }
    this.queue.delete(key); // a newer state replaces the older one, and goes to the back
    this.queue.set(key, message);
    return this.queue.size <= this.maxQueued;
  }

  /** A keep-alive comment, skipped while the socket is full (it has data going out anyway). */
  ping(): void {
    if (!this.blocked && !this.closed) this.blocked = !this.res.write(': keep-alive\n\n');
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    this.res.end();
  }

  private flush(): void {
    this.blocked = false;
    for (const [key, message] of this.queue) {
      this.queue.delete(key);
      if (!this.res.write(message)) {
        this.blocked = true;
        return;
      }
    }
  }
}

export class SseHub<Meta = undefined> {
  private readonly clients = new Set<SseClient<Meta>>();
  private readonly maxClients: number;
  private readonly maxQueued: number;
  private readonly heartbeatMs: number;
  private readonly retryMs: number;
  private readonly logger: Logger;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: SseHubOptions = {}) {
    this.maxClients = options.maxClients ?? 32;
    this.maxQueued = options.maxQueuedEvents ?? 64;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.retryMs = options.retryMs ?? 3_000;
    this.logger = options.logger ?? silentLogger();
  }

  /** Streams open now. */
  get size(): number {
    return this.clients.size;
  }

  /** Metadata of every open stream (what each client asked for). */
  metas(): Meta[] {
    return [...this.clients].map((client) => client.meta);
  }

  /**
   * Turns a request into an event stream for this hub. Throws ERR_LIMIT (before anything is sent)
   * when too many streams are open. `headers` are added to the response (security headers: a
   * hijacked reply skips the framework's hooks). `onOpen` may send the first messages.
   */
  open(
    request: FastifyRequest,
    reply: FastifyReply,
    meta: Meta,
    headers: Record<string, string>,
    onOpen?: () => void,
  ): void {
    if (this.closed) throw new HttpError('ERR_CLOSED', 'the server is shutting down', 503);
    if (this.clients.size >= this.maxClients) {
      throw new HttpError('ERR_LIMIT', `at most ${this.maxClients} event streams may be open at once`);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${this.retryMs}\n\n`);
    const client = new SseClient(meta, res, this.maxQueued);
    this.clients.add(client);
    const remove = (): void => {
      client.closed = true;
      this.clients.delete(client);
      if (this.clients.size === 0) this.stopHeartbeat();
    };
    request.raw.once('close', remove);
    res.once('close', remove);
    res.on('error', (err) => this.logger.debug({ err: errorMessage(err) }, 'event stream error'));
    this.startHeartbeat();
    onOpen?.();
  }

  /**
   * Sends an event to every client `to` selects (all by default). Messages with the same `key`
   * replace each other in a slow client's queue (default: the event name). Returns how many
   * clients it went to.
   */
  send(event: string, data: unknown, options: { key?: string; to?: SseFilter<Meta> } = {}): number {
    if (this.closed || this.clients.size === 0) return 0;
    // JSON.stringify escapes line breaks, so the payload is one `data:` line.
    const message = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    const key = options.key ?? event;
    let sent = 0;
    for (const client of [...this.clients]) {
      if (options.to && !options.to(client.meta)) continue;
      sent++;
      if (!client.push(key, message)) {
        this.logger.info({ queued: this.maxQueued }, 'dropping an event stream that does not keep up');
        client.end();
        this.clients.delete(client);
      }
    }
    return sent;
  }

  /** Ends every stream (the browser would reconnect; the server is going away). */
  close(): void {
    this.closed = true;
    this.stopHeartbeat();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) client.ping();
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}

/**
 * Runs `fire(key)` at most once per `intervalMs` for each key: the first trigger runs at once,
 * triggers while it runs or during the interval after it are folded into one more run at the end.
 * Runs for one key never overlap. At most `maxKeys` keys are tracked; triggers for more keys are
 * dropped (callers keep their keys bounded: one per subscribed file).
 */
export class KeyedThrottle {
  private readonly windows = new Map<string, { pending: boolean; timer: NodeJS.Timeout | null }>();
  private closed = false;

  constructor(
    private readonly intervalMs: number,
    private readonly fire: (key: string) => void | Promise<void>,
    private readonly logger: Logger = silentLogger(),
    private readonly maxKeys = 1024,
  ) {}

  trigger(key: string): void {
    if (this.closed) return;
    const window = this.windows.get(key);
    if (window) {
      window.pending = true;
      return;
    }
    if (this.windows.size >= this.maxKeys) return;
    this.run(key);
  }

  close(): void {
    this.closed = true;
    for (const window of this.windows.values()) if (window.timer) clearTimeout(window.timer);
    this.windows.clear();
  }

  private run(key: string): void {
    const window: { pending: boolean; timer: NodeJS.Timeout | null } = { pending: false, timer: null };
    this.windows.set(key, window);
    void Promise.resolve()
      .then(() => this.fire(key))
      .catch((err: unknown) => this.logger.warn({ key, err: errorMessage(err) }, 'a live update failed'))
      .finally(() => {
        if (this.closed) return;
        window.timer = setTimeout(() => {
          this.windows.delete(key);
          if (window.pending) this.run(key);
        }, this.intervalMs);
        window.timer.unref();
      });
  }
}
