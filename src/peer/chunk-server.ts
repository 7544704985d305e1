/**
 * Serves chunks to other peers. Each connection opens with the peer handshake, then the client may
 * pipeline REQUESTs; they are answered concurrently, in any order, with PIECE or REJECT.
 *
 * Memory stays bounded: a connection may have MAX_SERVED_REQUESTS_PER_CONNECTION requests in flight
 * (more is a protocol violation), only a few of them are read from disk at once, reading waits while
 * the client is not draining its socket, and a server-wide limit caps concurrent disk reads.
 */
import net, { type AddressInfo } from 'node:net';
import {
  DEFAULT_HOST,
  MAX_PEER_CONNECTIONS,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  PEER_IDLE_TIMEOUT_MS,
  PEER_PROTOCOL,
  PEER_VERSIONS,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { readFileChunk, type SharedFile } from '../storage/shared-folder.js';
import { chunkCount } from '../storage/manifest.js';
import { ProtocolError } from '../wire/codec.js';
import { FramedConnection } from '../wire/connection.js';
import { serverHandshake } from '../wire/handshake.js';
import { decodePeerMessage, encodePeerMessage, encodePieceHeader } from '../wire/peer-messages.js';

/**
 * Supplies chunk `index` of file `fileId`, or null if this peer does not have it (answered with REJECT
 * ERR_UNKNOWN_CHUNK). A thrown SwarmError ERR_UNKNOWN_CHUNK / ERR_UNKNOWN_FILE is passed on as such;
 * any other error is logged and answered with ERR_IO.
 */
export type ChunkProvider = (fileId: Buffer, index: number) => Promise<Buffer | null>;

export interface ChunkServerOptions {
  provider: ChunkProvider;
  logger?: Logger;
  /** Connections served at once; more are closed on arrival. Default MAX_PEER_CONNECTIONS. */
  maxConnections?: number;
  /** Close a connection idle this long. Default PEER_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Deadline for a client's HELLO. Default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
}

export interface ChunkServerStats {
  /** Chunk bytes sent (PIECE payloads). */
  uploadedBytes: number;
  servedChunks: number;
  rejectedRequests: number;
  /** Requests cancelled by the client before their PIECE was sent. */
  cancelledRequests: number;
  /** Connections open now. */
  connections: number;
  /** Connections accepted since the server started. */
  acceptedConnections: number;
}

/** Clients send only the handshake, REQUEST and CANCEL: all tiny. A large frame is a bad client. */
const MAX_CLIENT_FRAME = 1024;
/** Chunks read from disk at once for one connection; further requests wait their turn. */
const READS_PER_CONNECTION = 4;
/** Chunks read from disk at once across all connections. */
const READS_PER_SERVER = 64;
/** REJECT codes a provider's error may carry to the client; anything else is reported as ERR_IO. */
const PASSED_ON_CODES = new Set(['ERR_UNKNOWN_CHUNK', 'ERR_UNKNOWN_FILE']);

export class ChunkServer {
  private readonly provider: ChunkProvider;
  private readonly logger: Logger;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly handshakeTimeoutMs: number | undefined;
  private readonly connections = new Set<FramedConnection>();
  private readonly diskReads = new Limiter(READS_PER_SERVER);
  private server: net.Server | null = null;
  private readonly counters = {
    uploadedBytes: 0,
    servedChunks: 0,
    rejectedRequests: 0,
    cancelledRequests: 0,
    acceptedConnections: 0,
  };

  constructor(options: ChunkServerOptions) {
    this.provider = options.provider;
    this.logger = options.logger ?? silentLogger();
    this.maxConnections = options.maxConnections ?? MAX_PEER_CONNECTIONS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? PEER_IDLE_TIMEOUT_MS;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
  }

  get uploadedBytes(): number {
    return this.counters.uploadedBytes;
  }

  get stats(): ChunkServerStats {
    return { ...this.counters, connections: this.connections.size };
  }

  /** Starts listening; resolves with the address actually bound (port 0 picks a free port). */
  listen(port: number, host: string = DEFAULT_HOST): Promise<{ host: string; port: number }> {
    if (this.server)
      return Promise.reject(new SwarmError('ERR_INVALID_ARGUMENT', 'the chunk server is already listening'));
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        this.server = null;
        reject(
          new SwarmError('ERR_IO', `cannot listen on ${host}:${port}: ${errorMessage(err)}`, { cause: err }),
        );
      });
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.logger.error({ err: errorMessage(err) }, 'chunk server error'));
        const address = server.address() as AddressInfo;
        this.logger.info({ host: address.address, port: address.port }, 'chunk server listening');
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting, closes every connection, and resolves when the listener is closed. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const conn of this.connections) conn.destroy();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.maxConnections) {
      this.logger.warn(
        { remote: socket.remoteAddress, limit: this.maxConnections },
        'too many peer connections',
      );
      socket.destroy();
      return;
    }
    const conn = new FramedConnection(socket, {
      maxFrame: MAX_CLIENT_FRAME,
      idleTimeoutMs: this.idleTimeoutMs,
    });
    const remote = `${conn.remoteAddress}:${conn.remotePort}`;
    this.connections.add(conn);
    this.counters.acceptedConnections++;
    conn.once('close', (reason) => {
      this.connections.delete(conn);
      if (reason && isMisbehaviour(reason)) {
        this.logger.warn({ remote, err: errorMessage(reason) }, 'peer connection closed: bad input');
      } else {
        this.logger.debug({ remote, reason: reason && errorMessage(reason) }, 'peer connection closed');
      }
    });
    serverHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS, this.handshakeTimeoutMs).then(
      () => {
        if (conn.isClosed) return;
        const session = new ServedConnection(conn, this);
        conn.onFrame((body) => session.handleFrame(body));
      },
      (err: unknown) => {
        // A refused client (wrong protocol or version) is sent the reason and closed by the handshake
        // itself once that is flushed; anything else (garbage, timeout) is closed here and now.
        if (err instanceof ProtocolError || conn.isClosed) conn.destroy(err as Error);
        else this.logger.warn({ remote, err: errorMessage(err) }, 'peer handshake refused');
      },
    );
  }

  /**
   * Reads one chunk through the provider, within the server-wide disk read limit. `unwanted` is asked
   * once a read slot is free: a request cancelled (or a connection closed) meanwhile reads nothing.
   */
  read(fileId: Buffer, index: number, unwanted: () => boolean): Promise<Buffer | null> {
    return this.diskReads.run(async () => (unwanted() ? null : this.provider(fileId, index)));
  }

  /** @internal bookkeeping from connections */
  record(event: 'served' | 'rejected' | 'cancelled', bytes = 0): void {
    if (event === 'served') {
      this.counters.servedChunks++;
      this.counters.uploadedBytes += bytes;
    } else if (event === 'rejected') {
      this.counters.rejectedRequests++;
    } else {
      this.counters.cancelledRequests++;
    }
  }

  /** @internal */
  get log(): Logger {
    return this.logger;
  }
}

interface Request {
  req: number;
  fileId: Buffer;
  index: number;
  cancelled: boolean;
}

/** One client's requests on one connection: a bounded queue and a few concurrent disk reads. */
class ServedConnection {
  private readonly waiting: Request[] = [];
  private readonly active = new Map<number, Request>();

  constructor(
    private readonly conn: FramedConnection,
    private readonly server: ChunkServer,
  ) {}

  handleFrame(body: Buffer): void {
    const msg = decodePeerMessage(body);
    switch (msg.type) {
      case 'request': {
        if (this.inFlight() >= MAX_SERVED_REQUESTS_PER_CONNECTION) {
          throw new ProtocolError(`more than ${MAX_SERVED_REQUESTS_PER_CONNECTION} requests in flight`);
        }
        if (this.active.has(msg.req) || this.waiting.some((r) => r.req === msg.req)) {
          throw new ProtocolError(`request id ${msg.req} is already in flight`);
        }
        this.waiting.push({ req: msg.req, fileId: msg.fileId, index: msg.index, cancelled: false });
        this.pump();
        return;
      }
      case 'cancel': {
        // Best effort: a request already answered (or unknown) is ignored.
        const at = this.waiting.findIndex((r) => r.req === msg.req);
        if (at !== -1) {
          this.waiting.splice(at, 1);
          this.server.record('cancelled');
        } else {
          const request = this.active.get(msg.req);
          if (request) request.cancelled = true;
        }
        return;
      }
      default:
        throw new ProtocolError(`a client may not send ${msg.type.toUpperCase()}`);
    }
  }

  /** Requests the client is waiting for; a cancelled one no longer counts, even while it is read. */
  private inFlight(): number {
    let count = this.waiting.length;
    for (const request of this.active.values()) if (!request.cancelled) count++;
    return count;
  }

  private pump(): void {
    while (this.active.size < READS_PER_CONNECTION && this.waiting.length > 0 && !this.conn.isClosed) {
      const request = this.waiting.shift()!;
      this.active.set(request.req, request);
      void this.serve(request).finally(() => {
        this.active.delete(request.req);
        this.pump();
      });
    }
  }

  private async serve(request: Request): Promise<void> {
    // Read nothing more while the client is not taking what was already sent.
    await this.conn.drain();
    if (this.conn.isClosed) return;
    if (request.cancelled) {
      this.server.record('cancelled');
      return;
    }
    let data: Buffer | null;
    try {
      data = await this.server.read(
        request.fileId,
        request.index,
        () => this.conn.isClosed || request.cancelled,
      );
    } catch (err) {
      const code = errorCode(err);
      if (code && PASSED_ON_CODES.has(code)) {
        this.reject(request, code, errorMessage(err).slice(0, 200));
      } else {
        this.server.log.warn(
          { index: request.index, err: errorMessage(err) },
          'cannot read a requested chunk',
        );
        this.reject(request, 'ERR_IO', 'the chunk could not be read');
      }
      return;
    }
    if (this.conn.isClosed) return;
    if (request.cancelled) {
      this.server.record('cancelled');
      return;
    }
    if (data === null) {
      this.reject(request, 'ERR_UNKNOWN_CHUNK', `chunk ${request.index} of this file is not here`);
      return;
    }
    this.conn.send(encodePieceHeader(request.req, request.index), data);
    this.server.record('served', data.length);
  }

  private reject(request: Request, code: string, message: string): void {
    if (this.conn.isClosed || request.cancelled) return;
    this.conn.send(encodePeerMessage({ type: 'reject', req: request.req, code, message }));
    this.server.record('rejected');
  }
}

/** At most `max` tasks at once; the rest wait in arrival order. */
class Limiter {
  private running = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.running--;
    }
  }
}

function isMisbehaviour(err: Error): boolean {
  const code = errorCode(err);
  return code === 'ERR_PROTOCOL' || code === 'ERR_UNSUPPORTED_VERSION' || code === 'ERR_HANDSHAKE_TIMEOUT';
}

/**
 * A ChunkProvider body for one shared file: chunk `index` of `file`, or null if there is no such
 * file or chunk. Use it as `(id, i) => serveFileChunk(filesById.get(hex(id)), i)`.
 */
export async function serveFileChunk(file: SharedFile | undefined, index: number): Promise<Buffer | null> {
  if (!file || !Number.isInteger(index) || index < 0 || index >= chunkCount(file.manifest)) return null;
  return readFileChunk(file.path, file.manifest, index);
}
