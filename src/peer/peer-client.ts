/**
 * One outgoing connection to another peer's chunk server. Requests (chunks, manifests) are
 * pipelined: many may be in flight, answered in any order. A reply that does not match a request we
 * made (unrequested data, or a PIECE carrying another chunk than the one asked for) is a protocol
 * error and closes the connection, failing every request on it; only the late answer to a request we
 * cancelled or gave up on (one of the last MAX_ABANDONED_REQUESTS_REMEMBERED) is dropped quietly.
 *
 * Right after the handshake the client introduces itself (INFO); the server answers with its own
 * INFO, what it offers (OFFERS, then HAVE as it gets chunks) and peers it knows (PEERS). These are
 * emitted as events; a caller that only wants chunks (a download) may ignore them.
 *
 * The server may have no upload slot for us: it sends CHOKE ('choke'), answers our chunk requests with
 * REJECT ERR_CHOKED (a RemoteError: "not now", not "does not have it") until it sends UNCHOKE
 * ('unchoke'). A connection starts unchoked: a server that has never said CHOKE serves us.
 */
import { EventEmitter } from 'node:events';
import type { Endpoint } from '../address.js';
import {
  CHUNK_REQUEST_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  MAX_ABANDONED_REQUESTS_REMEMBERED,
  MAX_PEER_CONTROL_FRAME,
  MAX_PEER_FRAME,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  PEER_IDLE_TIMEOUT_MS,
  PEER_PROTOCOL,
  PEER_VERSIONS,
} from '../constants.js';
import { RemoteError, SwarmError, errorCode, errorMessage, isErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { fileIdHex, validateManifestContent, type Manifest } from '../storage/manifest.js';
import { ProtocolError } from '../wire/codec.js';
import { connectFramed, type FramedConnection, type ReceiveLimiter } from '../wire/connection.js';
import { clientHandshake } from '../wire/handshake.js';
import {
  PIECE_HEADER_BYTES,
  decodePeerMessage,
  encodePeerMessage,
  type Offer,
  type PeerInfo,
} from '../wire/peer-messages.js';
import { PendingRequests } from '../wire/pending-requests.js';
import { releaseBuffer } from '../buffer-pool.js';
import { ephemeralCredentials, type Credentials } from '../transport/credentials.js';

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
  /**
   * Who we are: the identity we prove in the TLS handshake (and our swarm key in a private swarm).
   * Default: a throw-away identity in an open swarm.
   */
  credentials?: Credentials;
  /** The peer id we mean to reach: anyone else at the address is refused with ERR_PEER_AUTH. */
  expectedPeerId?: Buffer | undefined;
  /** No TLS, no peer authentication: only for measuring what encryption costs (bench/encryption.ts). */
  unencrypted?: boolean;
  /**
   * How we introduce ourselves in INFO after the handshake. Default: no name and port 0 (we do not
   * serve), which a server does not pass on as a peer.
   */
  self?: { name: string; port?: number };
  /**
   * Caps the bytes received per second, shared with every connection using it (the process-wide
   * download limit). The time the connection spends held back by it does not count against a
   * request's deadline.
   */
  receiveLimiter?: ReceiveLimiter;
}

export interface PeerClientEvents {
  close: [reason: Error | undefined];
  /** The server's INFO: who it is and where it serves (sent once, first). */
  info: [info: PeerInfo];
  /** Everything the server holds now, replacing what it offered before. */
  offers: [offers: Offer[]];
  /** The server verified chunk `index` of `fileId` (ignore it for a file not in its offers). */
  have: [fileId: Buffer, index: number];
  /** Other peers the server knows, where they serve (peer exchange). */
  peers: [peers: Endpoint[]];
  /** The server has no upload slot for us: chunk requests fail with ERR_CHOKED until 'unchoke'. */
  choke: [];
  /** The server has an upload slot for us again. */
  unchoke: [];
}

type Outstanding = { kind: 'chunk'; fileId: Buffer; index: number } | { kind: 'manifest'; fileId: Buffer };

export class PeerClient extends EventEmitter<PeerClientEvents> {
  /** Chunk requests settle with a Buffer, manifest requests with a Manifest (see `outstanding`). */
  private readonly pending: PendingRequests<Buffer | Manifest>;
  private readonly outstanding = new Map<number, Outstanding>();
  /** Requests we gave up on: their PIECE or REJECT may still arrive and is then dropped quietly. */
  private readonly abandoned = new Set<number>();
  private closeReason: Error | undefined;
  private remoteInfo: PeerInfo | null = null;
  private isChoked = false;

  private constructor(
    private readonly conn: FramedConnection,
    readonly host: string,
    readonly port: number,
    private readonly logger: Logger,
    maxInFlight: number,
    requestTimeoutMs: number,
    private readonly maxChunkSize: number,
    limited: boolean,
  ) {
    super();
    this.pending = new PendingRequests<Buffer | Manifest>(
      maxInFlight,
      requestTimeoutMs,
      limited ? () => conn.receiveThrottledMs : undefined,
    );
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
    const maxChunkSize = Math.min(
      options.maxChunkSize ?? MAX_PEER_FRAME,
      MAX_PEER_FRAME - PIECE_HEADER_BYTES,
    );
    // A PIECE is at most one chunk plus its header; MANIFEST and OFFERS at most MAX_PEER_CONTROL_FRAME
    // (so a small expected chunk size still admits them); the rest is small. Chunk data is read
    // straight into its frame body (connectFramed), with no copy.
    const credentials = options.credentials ?? (await ephemeralCredentials());
    const secure = {
      credentials,
      timeoutMs,
      expectedPeerId: options.expectedPeerId,
      unencrypted: options.unencrypted === true,
    };
    const conn = await connectFramed(host, port, secure, {
      maxFrame: Math.max(maxChunkSize + PIECE_HEADER_BYTES, MAX_PEER_CONTROL_FRAME),
      idleTimeoutMs: options.idleTimeoutMs ?? PEER_IDLE_TIMEOUT_MS,
      ...(options.receiveLimiter ? { receiveLimiter: options.receiveLimiter } : {}),
    });
    try {
      await clientHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS, timeoutMs, credentials.swarmKey);
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
      maxChunkSize,
      options.receiveLimiter !== undefined,
    );
    if (conn.isClosed) client.pending.close(closedError(host, port, undefined));
    // Our INFO is the first message after the handshake: the server answers it with its own INFO,
    // OFFERS and PEERS, so nothing unsolicited can reach us before our frame handler is in place.
    const self = options.self;
    conn.send(
      encodePeerMessage({
        type: 'info',
        peerId: credentials.peerId,
        name: self?.name ?? '',
        port: self?.port ?? 0,
      }),
    );
    return client;
  }

  /** The server's peer id, as it proved it in the TLS handshake (null only unencrypted). */
  get remotePeerId(): Buffer | null {
    return this.conn.remotePeerId;
  }

  /** The server's INFO, once it has arrived (null before, or if it never sends one). */
  get peerInfo(): PeerInfo | null {
    return this.remoteInfo;
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /** The server said CHOKE and has not said UNCHOKE since: chunk requests fail with ERR_CHOKED. */
  get choked(): boolean {
    return this.isChoked;
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
   * rejects with the peer's RemoteError for a REJECT (ERR_CHOKED: not now, see 'choke'), ERR_TIMEOUT
   * without an answer in time, ERR_LIMIT with too many in flight, ERR_CLOSED (or ERR_PROTOCOL if the
   * peer misbehaved) when the connection ends.
   */
  requestChunk(fileId: Buffer, index: number): Promise<Buffer> {
    const { id, reply } = this.pending.open(`chunk ${index} from ${this.host}:${this.port}`, (req) => {
      this.abandon(req);
    });
    if (id !== 0) {
      this.outstanding.set(id, { kind: 'chunk', fileId, index });
      this.conn.send(encodePeerMessage({ type: 'request', req: id, fileId, index }));
    }
    // Only a PIECE settles a chunk request (handleFrame checks the kind).
    return reply as Promise<Buffer>;
  }

  /**
   * Asks for the manifest of `fileId`. Resolves with it once it is checked against that id
   * (validateManifestContent); a manifest that does not match is this peer's lie: ERR_BAD_MANIFEST.
   * Its name is the peer's word only: a download saves it under safeFileName(name).
   * Otherwise fails as requestChunk does (REJECT ERR_UNKNOWN_FILE for a file it does not know).
   */
  async getManifest(fileId: Buffer): Promise<Manifest> {
    const subject = `manifest of ${fileIdHex(fileId).slice(0, 12)}`;
    const { id, reply } = this.pending.open(`${subject} from ${this.host}:${this.port}`, (req) =>
      this.abandon(req),
    );
    if (id !== 0) {
      this.outstanding.set(id, { kind: 'manifest', fileId });
      this.conn.send(encodePeerMessage({ type: 'get_manifest', req: id, fileId }));
    }
    // Only a MANIFEST settles a manifest request (handleFrame checks the kind).
    const manifest = (await reply) as Manifest;
    const lie = (why: string, cause?: unknown): SwarmError =>
      new SwarmError('ERR_BAD_MANIFEST', `${this.host}:${this.port} sent a false ${subject}: ${why}`, {
        cause,
      });
    if (!manifest.id.equals(fileId))
      throw lie(`it is the manifest of ${fileIdHex(manifest.id).slice(0, 12)}`);
    try {
      validateManifestContent(manifest);
    } catch (err) {
      throw lie(errorMessage(err), err);
    }
    return manifest;
  }

  /**
   * Cancels the outstanding requests for chunk `index` of `fileId`: each rejects with ERR_CANCELLED and
   * the peer is told not to send it. Returns how many were cancelled.
   */
  cancel(fileId: Buffer, index: number): number {
    let cancelled = 0;
    for (const [req, request] of this.outstanding) {
      if (request.kind !== 'chunk' || request.index !== index || !request.fileId.equals(fileId)) continue;
      this.abandon(req);
      this.pending.reject(req, new SwarmError('ERR_CANCELLED', `request for chunk ${index} cancelled`));
      cancelled++;
    }
    return cancelled;
  }

  /**
   * Closes the connection; outstanding requests fail with ERR_CLOSED, or ERR_PROTOCOL when `reason`
   * is a ProtocolError (the caller found the peer's input bad). Idempotent.
   */
  close(reason?: Error): void {
    this.conn.destroy(reason);
  }

  /** Why the connection closed (undefined while open or after a clean close). */
  get closedBecause(): Error | undefined {
    return this.closeReason;
  }

  private abandon(req: number): void {
    this.outstanding.delete(req);
    if (this.conn.isClosed) return;
    this.abandoned.add(req);
    if (this.abandoned.size > MAX_ABANDONED_REQUESTS_REMEMBERED) {
      this.abandoned.delete(this.abandoned.values().next().value as number);
    }
    this.conn.send(encodePeerMessage({ type: 'cancel', req }));
  }

  private handleFrame(body: Buffer): void {
    const msg = decodePeerMessage(body);
    switch (msg.type) {
      case 'info':
        if (this.remoteInfo) throw new ProtocolError('INFO sent twice');
        if (this.remotePeerId && !msg.peerId.equals(this.remotePeerId))
          throw new ProtocolError('INFO names another peer id than its key');
        this.remoteInfo = { peerId: msg.peerId, name: msg.name, port: msg.port };
        this.emit('info', this.remoteInfo);
        return;
      case 'offers':
        this.emit('offers', msg.offers);
        return;
      case 'have':
        this.emit('have', msg.fileId, msg.index);
        return;
      case 'peers':
        this.emit('peers', msg.peers);
        return;
      case 'choke':
      case 'unchoke': {
        const choked = msg.type === 'choke';
        if (choked === this.isChoked) return; // nothing new (a server may repeat itself)
        this.isChoked = choked;
        this.emit(msg.type);
        return;
      }
      case 'piece':
      case 'reject':
      case 'manifest':
        this.settle(msg);
        return;
      default:
        throw new ProtocolError(`a chunk server may not send ${msg.type.toUpperCase()}`);
    }
  }

  /** Matches a reply to the request it answers. */
  private settle(
    msg:
      | { type: 'piece'; req: number; index: number; data: Buffer }
      | { type: 'reject'; req: number; code: string; message: string }
      | { type: 'manifest'; req: number; manifest: Manifest },
  ): void {
    const request = this.outstanding.get(msg.req);
    if (!request) {
      if (this.abandoned.delete(msg.req)) {
        // The answer to a request we gave up on: nobody else holds its body.
        if (msg.type === 'piece') releaseBuffer(msg.data);
        return;
      }
      throw new ProtocolError(`${msg.type.toUpperCase()} for request ${msg.req}, which is not in flight`);
    }
    this.outstanding.delete(msg.req);
    if (msg.type === 'reject') {
      const code = isErrorCode(msg.code) ? msg.code : 'ERR_PROTOCOL';
      this.pending.reject(msg.req, new RemoteError(code, msg.message));
    } else if (msg.type === 'piece') {
      if (request.kind !== 'chunk')
        throw new ProtocolError(`PIECE for request ${msg.req}, a manifest request`);
      if (msg.index !== request.index) {
        throw new ProtocolError(
          `PIECE for request ${msg.req} carries chunk ${msg.index}, not ${request.index}`,
        );
      }
      if (msg.data.length > this.maxChunkSize) {
        throw new ProtocolError(
          `PIECE of ${msg.data.length} bytes exceeds the chunk size ${this.maxChunkSize}`,
        );
      }
      this.pending.resolve(msg.req, msg.data);
    } else {
      if (request.kind !== 'manifest')
        throw new ProtocolError(`MANIFEST for request ${msg.req}, a chunk request`);
      this.pending.resolve(msg.req, msg.manifest);
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
