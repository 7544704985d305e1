/**
 * One outgoing connection to another peer's chunk server. Requests are pipelined: many may be in
 * flight, answered in any order. A reply that does not match a request we made is a protocol error
 * and closes the connection, failing every request on it.
 */
import { EventEmitter } from 'node:events';
import {
  CHUNK_REQUEST_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  MAX_PEER_FRAME,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  PEER_IDLE_TIMEOUT_MS,
  PEER_PROTOCOL,
  PEER_VERSIONS,
} from '../constants.js';
import { RemoteError, SwarmError, errorCode, errorMessage, isErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { ProtocolError } from '../wire/codec.js';
import { FramedConnection, connectTcp } from '../wire/connection.js';
import { clientHandshake } from '../wire/handshake.js';
import { PIECE_HEADER_BYTES, decodePeerMessage, encodePeerMessage } from '../wire/peer-messages.js';
import { PendingRequests } from '../wire/pending-requests.js';

export interface PeerClientOptions {
  logger?: Logger;
  /** Deadline for the TCP connection and, separately, for the handshake. Default CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** A request with no answer in this time fails with ERR_TIMEOUT. Default CHUNK_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** Requests allowed in flight. Default (and at most) MAX_SERVED_REQUESTS_PER_CONNECTION. */
  maxInFlight?: number;
  /** Largest chunk expected; a bigger PIECE closes the connection before it is buffered. */
  maxChunkSize?: number;
  /** Close the connection idle this long. Default PEER_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
}

export interface PeerClientEvents {
  close: [reason: Error | undefined];
}

interface Outstanding {
  fileId: Buffer;
  index: number;
}

/** Request ids answered late are tolerated for this many recent cancellations or timeouts. */
const MAX_REMEMBERED_CANCELS = 256;

export class PeerClient extends EventEmitter<PeerClientEvents> {
  private readonly pending: PendingRequests<Buffer>;
  private readonly outstanding = new Map<number, Outstanding>();
  /** Requests we gave up on: their PIECE or REJECT may still arrive and is then dropped quietly. */
  private readonly abandoned = new Set<number>();
  private closeReason: Error | undefined;

  private constructor(
    private readonly conn: FramedConnection,
    readonly host: string,
    readonly port: number,
    private readonly logger: Logger,
    maxInFlight: number,
    requestTimeoutMs: number,
  ) {
    super();
    this.pending = new PendingRequests<Buffer>(maxInFlight, requestTimeoutMs);
    conn.onFrame((body) => this.handleFrame(body));
    conn.once('close', (reason) => {
      this.closeReason = reason;
      this.logger.debug(
        { peer: `${host}:${port}`, reason: reason && errorMessage(reason) },
        'peer connection closed',
      );
      this.pending.close(closedError(host, port, reason));
      this.outstanding.clear();
      this.emit('close', reason);
    });
  }

  /** Connects and handshakes. ERR_UNREACHABLE if the peer cannot be reached. */
  static async connect(host: string, port: number, options: PeerClientOptions = {}): Promise<PeerClient> {
    const logger = options.logger ?? silentLogger();
    const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const socket = await connectTcp(host, port, timeoutMs);
    const maxFrame = options.maxChunkSize
      ? Math.min(options.maxChunkSize + PIECE_HEADER_BYTES, MAX_PEER_FRAME)
      : MAX_PEER_FRAME;
    // The reply to a REQUEST is at most one chunk plus its header; REJECT and WELCOME are small.
    const conn = new FramedConnection(socket, {
      maxFrame: Math.max(maxFrame, 4096),
      idleTimeoutMs: options.idleTimeoutMs ?? PEER_IDLE_TIMEOUT_MS,
    });
    try {
      await clientHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS, timeoutMs);
    } catch (err) {
      conn.destroy(err as Error);
      if (err instanceof SwarmError) throw err;
      // A reset during the handshake (the peer is full, or going away) is a closed connection.
      const why = `${host}:${port} closed the connection during the handshake: ${errorMessage(err)}`;
      throw new SwarmError('ERR_CLOSED', why, { cause: err });
    }
    const maxInFlight = Math.min(
      options.maxInFlight ?? MAX_SERVED_REQUESTS_PER_CONNECTION,
      MAX_SERVED_REQUESTS_PER_CONNECTION,
    );
    const client = new PeerClient(
      conn,
      host,
      port,
      logger,
      maxInFlight,
      options.requestTimeoutMs ?? CHUNK_REQUEST_TIMEOUT_MS,
    );
    if (conn.isClosed) client.pending.close(closedError(host, port, undefined));
    return client;
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /** Requests awaiting an answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Chunk bytes received so far (frame bytes, including headers). */
  get bytesReceived(): number {
    return this.conn.bytesReceived;
  }

  /**
   * Asks for chunk `index` of `fileId`. Resolves with its bytes (unverified: the caller checks them),
   * rejects with the peer's RemoteError for a REJECT, ERR_TIMEOUT without an answer in time, ERR_LIMIT
   * with too many in flight, ERR_CLOSED (or ERR_PROTOCOL if the peer misbehaved) when the connection ends.
   */
  requestChunk(fileId: Buffer, index: number): Promise<Buffer> {
    const { id, reply } = this.pending.open(`chunk ${index} from ${this.host}:${this.port}`, (req) => {
      this.abandon(req);
    });
    if (id !== 0) {
      this.outstanding.set(id, { fileId, index });
      this.conn.send(encodePeerMessage({ type: 'request', req: id, fileId, index }));
    }
    return reply;
  }

  /**
   * Cancels the outstanding requests for chunk `index` of `fileId`: each rejects with ERR_CANCELLED and
   * the peer is told not to send it. Returns how many were cancelled.
   */
  cancel(fileId: Buffer, index: number): number {
    let cancelled = 0;
    for (const [req, request] of this.outstanding) {
      if (request.index !== index || !request.fileId.equals(fileId)) continue;
      this.abandon(req);
      this.pending.reject(req, new SwarmError('ERR_CANCELLED', `request for chunk ${index} cancelled`));
      cancelled++;
    }
    return cancelled;
  }

  /** Closes the connection; outstanding requests fail with ERR_CLOSED. Idempotent. */
  close(): void {
    this.conn.destroy();
  }

  /** Why the connection closed (undefined while open or after a clean close). */
  get closedBecause(): Error | undefined {
    return this.closeReason;
  }

  private abandon(req: number): void {
    this.outstanding.delete(req);
    if (this.conn.isClosed) return;
    this.abandoned.add(req);
    if (this.abandoned.size > MAX_REMEMBERED_CANCELS) {
      this.abandoned.delete(this.abandoned.values().next().value as number);
    }
    this.conn.send(encodePeerMessage({ type: 'cancel', req }));
  }

  private handleFrame(body: Buffer): void {
    const msg = decodePeerMessage(body);
    if (msg.type !== 'piece' && msg.type !== 'reject') {
      throw new ProtocolError(`a chunk server may not send ${msg.type.toUpperCase()}`);
    }
    const request = this.outstanding.get(msg.req);
    if (!request) {
      if (this.abandoned.delete(msg.req)) return; // the answer to a request we gave up on
      throw new ProtocolError(`${msg.type.toUpperCase()} for request ${msg.req}, which is not in flight`);
    }
    this.outstanding.delete(msg.req);
    if (msg.type === 'piece') {
      if (msg.index !== request.index) {
        throw new ProtocolError(
          `PIECE for request ${msg.req} carries chunk ${msg.index}, not ${request.index}`,
        );
      }
      this.pending.resolve(msg.req, msg.data);
    } else {
      const code = isErrorCode(msg.code) ? msg.code : 'ERR_PROTOCOL';
      this.pending.reject(msg.req, new RemoteError(code, msg.message));
    }
  }
}

/** The error outstanding requests fail with when the connection ends, keeping a misbehaviour visible. */
function closedError(host: string, port: number, reason: Error | undefined): SwarmError {
  if (reason && errorCode(reason) === 'ERR_PROTOCOL') {
    return new SwarmError('ERR_PROTOCOL', `${host}:${port} broke the protocol: ${reason.message}`, {
      cause: reason,
    });
  }
  const why = reason ? `: ${errorMessage(reason)}` : '';
  return new SwarmError('ERR_CLOSED', `connection to ${host}:${port} closed${why}`, { cause: reason });
}
