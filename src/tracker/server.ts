/**
 * The tracker: an index server that peers keep one long-lived TCP session with. It knows which
 * live peer holds which chunks of which file, and answers searches and "who has this file".
 *
 * Connections are bounded in number, in all and per remote address (a ConnectionGate, asked before
 * anything else is done for a socket), framed (MAX_TRACKER_FRAME, a frame deadline against peers that
 * trickle), and open with the handshake. A peer that disconnects, or sends nothing for `expiryMs`, is
 * removed with everything it held; a session whose request is not handled within the handling timeout
 * is closed (a sweep checks every session).
 * Requests waiting to be handled are bounded in bytes per session and across sessions (see
 * session.ts): beyond either budget, sessions are not read until their requests are handled.
 */
import type net from 'node:net';
import {
  DEFAULT_HOST,
  FRAME_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  HEARTBEAT_INTERVAL_MS,
  MAX_REGISTER_ATTEMPTS_PER_SESSION,
  MAX_SESSION_QUEUED_BYTES,
  MAX_TRACKER_FRAME,
  MAX_TRACKER_QUEUED_BYTES,
  MAX_TRACKER_SESSIONS,
  MAX_TRACKER_SESSIONS_PER_ADDRESS,
  PEER_EXPIRY_MS,
  TRACKER_HANDLING_TIMEOUT_MS,
  TRACKER_PROTOCOL,
  TRACKER_REQUEST_BURST,
  TRACKER_REQUESTS_PER_SECOND,
  TRACKER_VERSIONS,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { Endpoint } from '../address.js';
import { ephemeralCredentials, type Credentials } from '../transport/credentials.js';
import { createSecureServer } from '../transport/tls.js';
import { FramedConnection } from '../wire/connection.js';
import { ConnectionGate } from '../wire/connection-gate.js';
import { serverHandshake } from '../wire/handshake.js';
import { TrackerActivity } from './activity.js';
import { MemoryTrackerStore } from './memory-store.js';
import { QueueBudget, TrackerSession } from './session.js';
import type { TrackerStore } from './store.js';

export interface TrackerServerOptions {
  /** Where the catalog lives; an in-memory store by default. */
  store?: TrackerStore;
  logger?: Logger;
  /** The ping interval peers are told to use. */
  heartbeatMs?: number;
  /** A session silent for this long is closed and its peer removed. */
  expiryMs?: number;
  /** A connection that has not completed the handshake in this time is closed. */
  handshakeTimeoutMs?: number;
  /** Open connections allowed at once; more are closed on arrival. Default MAX_TRACKER_SESSIONS. */
  maxSessions?: number;
  /** Open connections allowed at once from one address. Default MAX_TRACKER_SESSIONS_PER_ADDRESS. */
  maxSessionsPerAddress?: number;
  /** The frame deadline (see FramedConnectionOptions.frameTimeoutMs). Default FRAME_TIMEOUT_MS. */
  frameTimeoutMs?: number;
  /**
   * A session whose request is still being handled after this long is closed.
   * Default TRACKER_HANDLING_TIMEOUT_MS.
   */
  handlingTimeoutMs?: number;
  /**
   * Requests per second per session, sustained and in a burst.
   * Defaults TRACKER_REQUESTS_PER_SECOND, TRACKER_REQUEST_BURST.
   */
  requestsPerSecond?: number;
  requestBurst?: number;
  /** REGISTER requests one session may send. Default MAX_REGISTER_ATTEMPTS_PER_SESSION. */
  maxRegisterAttempts?: number;
  /** Request bytes one session may have waiting before it is no longer read. */
  maxSessionQueuedBytes?: number;
  /** Request bytes all sessions may have waiting before those with any waiting are no longer read. */
  maxQueuedBytes?: number;
  /** The tracker's identity (and swarm key, for a private swarm); a throw-away identity if not given. */
  credentials?: Credentials;
}

export interface TrackerServerStats {
  /** Open connections, including ones still in the handshake. */
  connections: number;
  /** Sessions on this server whose peer is registered. */
  peers: number;
  /** Requests received and waiting to be handled (or being handled), across sessions. */
  queuedRequests: number;
  /** Their bytes, as received (a request that can only be refused counts 0). */
  queuedBytes: number;
}

export class TrackerServer {
  /** The catalog this server serves (shared with other instances when the store is). */
  readonly store: TrackerStore;
  /** Changes to the catalog and counters of what the sessions did, for dashboards and metrics. */
  readonly activity: TrackerActivity;
  /** When this server was created (ms since the epoch). */
  readonly startedAt = Date.now();
  private readonly logger: Logger;
  private readonly heartbeatMs: number;
  private readonly expiryMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly gate: ConnectionGate;
  private readonly frameTimeoutMs: number;
  private readonly handlingTimeoutMs: number;
  private readonly handlingSweep: NodeJS.Timeout;
  private readonly maxSessionQueuedBytes: number;
  private readonly requestsPerSecond: number;
  private readonly requestBurst: number;
  private readonly maxRegisterAttempts: number;
  private readonly budget: QueueBudget;
  private server: net.Server | null = null;
  private credentials: Credentials | null;
  private readonly connections = new Set<FramedConnection>();
  private readonly sessions = new Set<TrackerSession>();
  private closing: Promise<void> | null = null;

  constructor(options: TrackerServerOptions = {}) {
    this.store = options.store ?? new MemoryTrackerStore();
    this.logger = options.logger ?? silentLogger();
    this.activity = new TrackerActivity(this.logger);
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    this.expiryMs = options.expiryMs ?? PEER_EXPIRY_MS;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.gate = new ConnectionGate({
      maxConnections: options.maxSessions ?? MAX_TRACKER_SESSIONS,
      maxPerAddress: options.maxSessionsPerAddress ?? MAX_TRACKER_SESSIONS_PER_ADDRESS,
    });
    this.frameTimeoutMs = options.frameTimeoutMs ?? FRAME_TIMEOUT_MS;
    this.handlingTimeoutMs = options.handlingTimeoutMs ?? TRACKER_HANDLING_TIMEOUT_MS;
    this.maxSessionQueuedBytes = options.maxSessionQueuedBytes ?? MAX_SESSION_QUEUED_BYTES;
    this.requestsPerSecond = options.requestsPerSecond ?? TRACKER_REQUESTS_PER_SECOND;
    this.requestBurst = options.requestBurst ?? TRACKER_REQUEST_BURST;
    this.maxRegisterAttempts = options.maxRegisterAttempts ?? MAX_REGISTER_ATTEMPTS_PER_SESSION;
    this.budget = new QueueBudget(options.maxQueuedBytes ?? MAX_TRACKER_QUEUED_BYTES);
    if (this.heartbeatMs >= this.expiryMs) {
      throw new SwarmError('ERR_INVALID_ARGUMENT', 'heartbeatMs must be shorter than expiryMs');
    }
    this.credentials = options.credentials ?? null;
    // One timer for every session's handling deadline, not one per request (the HAVE hot path).
    this.handlingSweep = setInterval(
      () => {
        const now = performance.now();
        for (const session of this.sessions) session.checkHandling(now, this.handlingTimeoutMs);
      },
      Math.min(1000, Math.max(10, this.handlingTimeoutMs / 4)),
    );
    this.handlingSweep.unref();
  }

  /** The tracker's peer id (what peers may pin with --tracker ID@HOST:PORT); null before listen(). */
  get trackerId(): Buffer | null {
    return this.credentials?.peerId ?? null;
  }

  /** Starts accepting peers; port 0 picks a free port. Resolves with the address bound. */
  async listen(port: number, host: string = DEFAULT_HOST): Promise<Endpoint> {
    if (this.server) throw new SwarmError('ERR_INVALID_ARGUMENT', 'the tracker is already listening');
    const credentials = (this.credentials ??= await ephemeralCredentials());
    const server = createSecureServer(
      {
        credentials,
        handshakeTimeoutMs: this.handshakeTimeoutMs,
        admit: (socket) => this.admit(socket),
        onRefused: (err, socket) => {
          const addr = `${(socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${socket.remotePort}`;
          this.logger.debug({ addr, err: errorMessage(err) }, 'TLS handshake failed');
        },
      },
      (socket, remotePeerId) => this.onConnection(socket, remotePeerId),
    );
    this.server = server;
    server.on('error', (err) => this.logger.error({ err }, 'tracker server error'));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new SwarmError('ERR_IO', `cannot listen on ${host}:${port}: ${errorMessage(err)}`, { cause: err }),
        );
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        const address = this.address()!;
        this.logger.info(address, 'tracker listening');
        resolve(address);
      });
    });
  }

  /** The bound address, or null before listen() / after close(). */
  address(): Endpoint | null {
    const address = this.server?.address();
    if (!address || typeof address === 'string') return null;
    return { host: address.address, port: address.port };
  }

  get stats(): TrackerServerStats {
    let peers = 0;
    for (const session of this.sessions) if (session.registered) peers++;
    return {
      connections: this.gate.connections,
      peers,
      queuedRequests: this.budget.requests,
      queuedBytes: this.budget.bytes,
    };
  }

  /** Stops listening, closes every session and waits until their peers are removed. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const server = this.server;
    clearInterval(this.handlingSweep);
    const stopped = new Promise<void>((resolve) => {
      if (!server?.listening) return resolve();
      server.close(() => resolve());
    });
    const finished = [...this.sessions].map((session) => session.finished);
    const reason = new SwarmError('ERR_CLOSED', 'the tracker is shutting down');
    for (const conn of this.connections) conn.destroy(reason);
    // Those still in the TLS handshake too: the listener's close waits for every connection.
    this.gate.closeAll();
    await Promise.all([stopped, ...finished]);
    this.logger.info('tracker closed');
  }

  /**
   * Decides on a TCP connection before any TLS work: the limits (in total and per address) count
   * connections still in the handshake too, and a refused one costs nothing more.
   */
  private admit(socket: net.Socket): boolean {
    if (this.closing) return false;
    const refused = this.gate.admit(socket);
    if (refused) {
      const addr = `${(socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${socket.remotePort}`;
      this.logger.warn({ addr, ...refused }, 'refusing a connection: too many sessions');
      this.activity.refused('connection', 'ERR_LIMIT');
      return false;
    }
    return true;
  }

  private onConnection(socket: net.Socket, remotePeerId: Buffer | null): void {
    const addr = `${(socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${socket.remotePort}`;
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new FramedConnection(socket, {
      maxFrame: MAX_TRACKER_FRAME,
      frameTimeoutMs: this.frameTimeoutMs,
      remotePeerId,
    });
    this.connections.add(conn);
    conn.once('close', () => this.connections.delete(conn));
    this.logger.debug({ addr }, 'connection opened');
    serverHandshake(
      conn,
      TRACKER_PROTOCOL,
      TRACKER_VERSIONS,
      this.handshakeTimeoutMs,
      this.credentials!.swarmKey,
    ).then(
      (version) => {
        if (conn.isClosed || this.closing) return conn.destroy();
        this.logger.info({ addr, version }, 'session opened');
        const session = new TrackerSession(conn, {
          store: this.store,
          logger: this.logger,
          activity: this.activity,
          heartbeatMs: this.heartbeatMs,
          expiryMs: this.expiryMs,
          budget: this.budget,
          maxQueuedBytes: this.maxSessionQueuedBytes,
          requestsPerSecond: this.requestsPerSecond,
          requestBurst: this.requestBurst,
          maxRegisterAttempts: this.maxRegisterAttempts,
        });
        this.sessions.add(session);
        void session.finished.then(() => this.sessions.delete(session));
      },
      (err: unknown) => {
        const code = errorCode(err);
        // A client that connects and leaves (a port probe) is not worth a warning.
        const level = code === 'ERR_CLOSED' || code === 'ECONNRESET' ? 'debug' : 'warn';
        this.logger[level]({ addr, code, err: errorMessage(err) }, 'handshake failed');
        // A refusal is on its way out (the connection ends itself once it is flushed).
        if (!conn.socket.writableEnded) conn.destroy(err as Error);
      },
    );
  }
}
