/**
 * Serves chunks to other peers. Each connection opens with the peer handshake, then the client may
 * pipeline REQUESTs (and GET_MANIFESTs); they are answered concurrently, in any order, with PIECE
 * (MANIFEST) or REJECT.
 *
 * Discovery rides on the same connections: when a client introduces itself (INFO), the server
 * answers with its own INFO, what it offers (OFFERS) and the peers it knows (PEERS), each only if
 * the options supply it; later it pushes OFFERS when what it holds changes (broadcastOffers), HAVE
 * for each chunk it verifies (broadcastHave), and PEERS every pexIntervalMs.
 *
 * Connections are bounded in all and per remote address (a ConnectionGate, asked before anything else
 * is done for a socket); a client must say HELLO within the handshake deadline, complete each frame it
 * starts at a minimum rate (the frame deadline, against slow-lorises), and not idle for idleTimeoutMs.
 * When the server is full, a newcomer takes the place of the connection that asked for nothing the
 * longest, if that was over evictableAfterMs ago and it has nothing in flight: places held by
 * connections that want nothing do not keep out those that want chunks.
 *
 * Memory stays bounded, whether or not clients read what they asked for. A connection may have
 * MAX_SERVED_REQUESTS_PER_CONNECTION requests in flight (more is a protocol violation); at most
 * SERVED_READS_PER_CONNECTION of its chunks are read (or being read) and not yet flushed to the
 * kernel, and across all connections at most maxUnflushedBytes: a chunk holds its part of that
 * budget from before it is read until its PIECE has been handed to the kernel, or the connection is
 * gone. Reading (and sending a manifest) waits while the client is not draining its socket, and
 * discovery frames for such a client (OFFERS, HAVE, PEERS) are held back and coalesced until it
 * does. A connection that has a PIECE waiting and takes none of it for idleTimeoutMs is closed,
 * whatever else it sends, so clients that stop reading cannot keep the budget from others for long.
 *
 * Upload slots (src/peer/choker.ts): chunks go to uploadSlots connections at a time, plus one
 * optimistic slot. A connection without one is sent CHOKE, and its chunk requests, queued and new,
 * are answered with REJECT ERR_CHOKED (never dropped: the client's requests settle at once) until it
 * is sent UNCHOKE. A request for a file we do not hold (as the manifest option tells) is answered
 * REJECT ERR_UNKNOWN_FILE at once and does not compete for a slot: junk requests cannot take slots
 * from clients we can serve. Manifests and discovery frames are not subject to slots.
 */
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../address.js';
import {
  DEFAULT_HOST,
  FRAME_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_CHUNK_SIZE,
  MAX_HOST_BYTES,
  MAX_PEER_CLIENT_FRAME,
  MAX_PEER_CONNECTIONS,
  MAX_PEER_CONNECTIONS_PER_ADDRESS,
  MAX_PEX_PEERS,
  MAX_DEFERRED_HAVES,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  MAX_SERVER_UNFLUSHED_BYTES,
  OFFERS_DEBOUNCE_MS,
  PEER_EVICTABLE_AFTER_MS,
  OPTIMISTIC_UNCHOKE_INTERVAL_MS,
  PEER_IDLE_TIMEOUT_MS,
  PEER_PROTOCOL,
  PEER_VERSIONS,
  PEX_INTERVAL_MS,
  SERVED_READS_PER_CONNECTION,
  SERVED_READS_PER_SERVER,
  UNCHOKE_INTERVAL_MS,
  UPLOAD_INTEREST_MS,
  UPLOAD_SLOTS,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { readFileChunk, type SharedFile } from '../storage/shared-folder.js';
import { chunkCount, chunkLength, type Manifest } from '../storage/manifest.js';
import { ProtocolError } from '../wire/codec.js';
import { FramedConnection } from '../wire/connection.js';
import { ConnectionGate } from '../wire/connection-gate.js';
import { serverHandshake } from '../wire/handshake.js';
import { ephemeralCredentials, type Credentials } from '../transport/credentials.js';
import { createSecureServer } from '../transport/tls.js';
import { Choker } from './choker.js';
import type { RateLimiter } from './rate-limiter.js';
import {
  decodePeerMessage,
  encodePeerMessage,
  encodePieceHeader,
  offersThatFit,
  type Offer,
  type PeerInfo,
} from '../wire/peer-messages.js';

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
  /**
   * Connections served at once from one address; more are closed on arrival.
   * Default MAX_PEER_CONNECTIONS_PER_ADDRESS.
   */
  maxConnectionsPerAddress?: number;
  /** Close a connection idle this long. Default PEER_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /**
   * When full, a newcomer may take the place of a connection that has asked for nothing this long.
   * Default PEER_EVICTABLE_AFTER_MS.
   */
  evictableAfterMs?: number;
  /** Deadline for a client's HELLO. Default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
  /** The frame deadline (see FramedConnectionOptions.frameTimeoutMs). Default FRAME_TIMEOUT_MS. */
  frameTimeoutMs?: number;
  /** Our identity for TLS (and swarm key, in a private swarm); a throw-away one if not given. */
  credentials?: Credentials;
  /** No TLS, no peer authentication: only for measuring what encryption costs (bench/encryption.ts). */
  unencrypted?: boolean;
  /** How we introduce ourselves in INFO (its port is the one we listen on, known after listen()). */
  self?: { name: string };
  /** What we hold now, complete and partial files, for OFFERS. */
  offers?: () => Offer[];
  /** Other peers we know, where they serve, for PEERS (peer exchange). */
  knownPeers?: () => Endpoint[];
  /**
   * The manifest of a file we hold, for GET_MANIFEST (null: REJECT ERR_UNKNOWN_FILE). With it, the
   * length of a requested chunk is known before it is read: its budget and upload tokens are taken
   * for exactly that length, and before the read rather than after.
   */
  manifest?: (fileId: Buffer) => Manifest | null;
  /**
   * A client introduced itself and serves at `port` on `host` (the address we see it from). Not
   * called for a client that does not serve (port 0) or that is ourselves (our own peer id).
   */
  onPeerInfo?: (info: { peerId: Buffer; name: string; host: string; port: number }) => void;
  /** PEERS is sent to every client this often. Default PEX_INTERVAL_MS. */
  pexIntervalMs?: number;
  /** Caps the bytes of chunks sent per second, shared with whatever else uses the same limiter. */
  uploadLimiter?: RateLimiter;
  /**
   * Bytes of chunks read (or being read) whose PIECE has not yet been flushed to the kernel, across
   * all connections. Default MAX_SERVER_UNFLUSHED_BYTES.
   */
  maxUnflushedBytes?: number;
  /**
   * Connections sent chunks at once, besides one optimistic slot; the others are choked (see
   * src/peer/choker.ts). Default UPLOAD_SLOTS; Infinity chokes nobody.
   */
  uploadSlots?: number;
  /**
   * Verified chunk bytes the peer with this id (hex, from its INFO) gave us lately: the regular slots
   * go to those who gave the most (tit-for-tat). Without it, or while nobody gives us anything, they
   * go round (the seeding choker).
   */
  reciprocation?: (peerId: string) => number;
  /** Tuning for tests. Defaults UNCHOKE_INTERVAL_MS, OPTIMISTIC_UNCHOKE_INTERVAL_MS, UPLOAD_INTEREST_MS. */
  unchokeIntervalMs?: number;
  optimisticUnchokeIntervalMs?: number;
  interestMs?: number;
}

export interface ChunkServerStats {
  /** Chunk bytes sent (PIECE payloads). */
  uploadedBytes: number;
  servedChunks: number;
  rejectedRequests: number;
  /** Requests cancelled by the client before their PIECE was sent. */
  cancelledRequests: number;
  /** Connections open now, including those still in the TLS handshake. */
  connections: number;
  /** Connections accepted since the server started. */
  acceptedConnections: number;
  /** Connections closed to make room for a newcomer when the server was full (see evictIdlest). */
  evictedConnections: number;
  /**
   * Bytes of the server's budget held now: chunks being read (a chunk of unknown length holds
   * MAX_CHUNK_SIZE until it is read) or whose PIECE is not yet flushed to the kernel.
   */
  unflushedBytes: number;
  /** Chunks holding a part of that budget now. */
  unflushedChunks: number;
  /** Connections holding an upload slot now. */
  unchoked: number;
  /** Connections choked and waiting for an upload slot now. */
  choked: number;
}

/** HAVEs to every client leave in batches this often (a few ms of delay against a write per HAVE). */
const HAVE_BATCH_MS = 25;
/** HAVEs in one batch at most; beyond, the batch becomes fresh OFFERS. */
const MAX_BATCHED_HAVES = 256;
/** REJECT codes a provider's error may carry to the client; anything else is reported as ERR_IO. */
const PASSED_ON_CODES = new Set(['ERR_UNKNOWN_CHUNK', 'ERR_UNKNOWN_FILE']);

export class ChunkServer {
  private readonly provider: ChunkProvider;
  private readonly options: ChunkServerOptions;
  private readonly logger: Logger;
  private readonly gate: ConnectionGate;
  private readonly idleTimeoutMs: number;
  private readonly evictableAfterMs: number;
  private readonly handshakeTimeoutMs: number | undefined;
  private readonly frameTimeoutMs: number;
  private readonly connections = new Set<FramedConnection>();
  /** Connections past the handshake: those a newcomer may take the place of. */
  private readonly sessions = new Set<ServedConnection>();
  /** Connections whose client introduced itself and was answered: they get OFFERS, HAVE and PEERS. */
  private readonly greeted = new Set<ServedConnection>();
  private readonly diskReads = new Limiter(SERVED_READS_PER_SERVER);
  private readonly budget: SendBudget;
  private server: net.Server | null = null;
  private listenCalled = false;
  private credentials: Credentials | null = null;
  private closed = false;
  private listeningPort = 0;
  private offersTimer: NodeJS.Timeout | null = null;
  /** HAVE frames waiting for the next batch (see broadcastHave). */
  private pendingHaves: Buffer[] = [];
  private haveTimer: NodeJS.Timeout | null = null;
  private pexTimer: NodeJS.Timeout | null = null;
  private rechokeTimer: NodeJS.Timeout | null = null;
  private optimisticTimer: NodeJS.Timeout | null = null;
  /** @internal Who holds an upload slot; ServedConnections report to it. */
  readonly slots: Choker<ServedConnection>;
  /** The last "too many offers" warning, so it is logged once per change, not once per client. */
  private lastOffersCut = '';
  private readonly counters = {
    uploadedBytes: 0,
    servedChunks: 0,
    rejectedRequests: 0,
    cancelledRequests: 0,
    acceptedConnections: 0,
    evictedConnections: 0,
  };

  constructor(options: ChunkServerOptions) {
    this.provider = options.provider;
    this.options = options;
    this.logger = options.logger ?? silentLogger();
    this.gate = new ConnectionGate({
      maxConnections: options.maxConnections ?? MAX_PEER_CONNECTIONS,
      maxPerAddress: options.maxConnectionsPerAddress ?? MAX_PEER_CONNECTIONS_PER_ADDRESS,
    });
    this.idleTimeoutMs = options.idleTimeoutMs ?? PEER_IDLE_TIMEOUT_MS;
    this.evictableAfterMs = options.evictableAfterMs ?? PEER_EVICTABLE_AFTER_MS;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.frameTimeoutMs = options.frameTimeoutMs ?? FRAME_TIMEOUT_MS;
    this.budget = new SendBudget(options.maxUnflushedBytes ?? MAX_SERVER_UNFLUSHED_BYTES);
    const reciprocation = options.reciprocation;
    this.slots = new Choker<ServedConnection>({
      slots: options.uploadSlots ?? UPLOAD_SLOTS,
      onChange: (session, choked) => (choked ? session.choke() : session.unchoke()),
      busy: (session) => session.hasChunkRequests,
      interestMs: options.interestMs ?? UPLOAD_INTEREST_MS,
      rechokeIntervalMs: options.unchokeIntervalMs ?? UNCHOKE_INTERVAL_MS,
      ...(reciprocation
        ? {
            reciprocation: (peerId: string) => {
              try {
                return reciprocation(peerId);
              } catch (err) {
                this.logger.error({ err: errorMessage(err) }, 'reciprocation failed');
                return 0;
              }
            },
          }
        : {}),
    });
  }

  get uploadedBytes(): number {
    return this.counters.uploadedBytes;
  }

  get stats(): ChunkServerStats {
    return {
      ...this.counters,
      connections: this.gate.connections,
      unflushedBytes: this.budget.bytes,
      unflushedChunks: this.budget.chunks,
      ...this.slots.stats,
    };
  }

  /** Starts listening; resolves with the address actually bound (port 0 picks a free port). */
  listen(port: number, host: string = DEFAULT_HOST): Promise<{ host: string; port: number }> {
    if (this.listenCalled)
      return Promise.reject(new SwarmError('ERR_INVALID_ARGUMENT', 'the chunk server is already listening'));
    this.listenCalled = true;
    return this.listenSecure(port, host);
  }

  private async listenSecure(port: number, host: string): Promise<{ host: string; port: number }> {
    const credentials = this.options.credentials ?? (await ephemeralCredentials());
    this.credentials = credentials;
    if (this.closed) throw new SwarmError('ERR_CLOSED', 'the chunk server was closed');
    const server = createSecureServer(
      {
        credentials,
        unencrypted: this.options.unencrypted === true,
        handshakeTimeoutMs: this.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
        admit: (socket) => this.admitSocket(socket),
        onRefused: (err, socket) =>
          this.logger.debug({ remote: socket.remoteAddress, err: errorMessage(err) }, 'TLS handshake failed'),
      },
      (socket, remotePeerId) => this.accept(socket, remotePeerId),
    );
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
        this.listeningPort = address.port;
        if (this.options.knownPeers) {
          this.pexTimer = setInterval(
            () => this.broadcastPeers(),
            this.options.pexIntervalMs ?? PEX_INTERVAL_MS,
          );
          this.pexTimer.unref();
        }
        this.rechokeTimer = setInterval(
          () => this.slots.rechoke(),
          this.options.unchokeIntervalMs ?? UNCHOKE_INTERVAL_MS,
        );
        this.rechokeTimer.unref();
        this.optimisticTimer = setInterval(
          () => this.slots.rotateOptimistic(),
          this.options.optimisticUnchokeIntervalMs ?? OPTIMISTIC_UNCHOKE_INTERVAL_MS,
        );
        this.optimisticTimer.unref();
        this.logger.info({ host: address.address, port: address.port }, 'chunk server listening');
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting, closes every connection, and resolves when the listener is closed. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.closed = true;
    if (this.pexTimer) clearInterval(this.pexTimer);
    if (this.offersTimer) clearTimeout(this.offersTimer);
    if (this.haveTimer) clearTimeout(this.haveTimer);
    this.haveTimer = null;
    this.pendingHaves = [];
    if (this.rechokeTimer) clearInterval(this.rechokeTimer);
    if (this.optimisticTimer) clearInterval(this.optimisticTimer);
    this.pexTimer = this.offersTimer = this.rechokeTimer = this.optimisticTimer = null;
    for (const conn of this.connections) conn.destroy();
    // Those still in the TLS handshake too: the listener's close waits for every connection.
    this.gate.closeAll();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Decides on a TCP connection before any TLS work: the limits (in total and per address) count
   * connections still in the handshake too.
   */
  private admitSocket(socket: net.Socket): boolean {
    const remote = socket.remoteAddress ?? '';
    const refused = this.gate.admit(socket, () => this.evictIdlest(remote));
    if (refused) {
      this.logger.warn({ remote, ...refused }, 'too many peer connections');
      return false;
    }
    return true;
  }

  private accept(socket: net.Socket, remotePeerId: Buffer | null): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const conn = new FramedConnection(socket, {
      maxFrame: MAX_PEER_CLIENT_FRAME,
      idleTimeoutMs: this.idleTimeoutMs,
      frameTimeoutMs: this.frameTimeoutMs,
      remotePeerId,
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
    serverHandshake(
      conn,
      PEER_PROTOCOL,
      PEER_VERSIONS,
      this.handshakeTimeoutMs,
      this.credentials?.swarmKey ?? null,
    ).then(
      () => {
        if (conn.isClosed) return;
        const session = new ServedConnection(conn, this);
        conn.onFrame((body) => session.handleFrame(body));
        this.sessions.add(session);
        conn.once('close', () => {
          this.greeted.delete(session);
          this.sessions.delete(session);
        });
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
   * Closes the connection that asked for nothing the longest, if that was at least evictableAfterMs
   * ago and it has nothing in flight, to make room for a newcomer from `newcomer`. Returns whether it
   * closed one. (A scan of at most maxConnections, and only when the server is full.)
   */
  private evictIdlest(newcomer: string): boolean {
    const cutoff = Date.now() - this.evictableAfterMs;
    let idlest: ServedConnection | null = null;
    let idlestSince = Infinity;
    for (const session of this.sessions) {
      const since = session.askedNothingSince;
      if (since !== null && since <= cutoff && since < idlestSince) {
        idlest = session;
        idlestSince = since;
      }
    }
    if (!idlest) return false;
    this.sessions.delete(idlest);
    this.counters.evictedConnections++;
    // Debug, not info: under a flood of newcomers this would be a line per connection.
    this.logger.debug(
      { remote: idlest.remoteAddress, newcomer, idleMs: Date.now() - idlestSince },
      'peer connection closed to make room for a newcomer',
    );
    idlest.evict();
    return true;
  }

  /**
   * Sends HAVE to every connected client: we verified chunk `index` of `fileId`. A client not
   * draining its socket gets it (or fresh OFFERS, if many pile up) once it does.
   */
  broadcastHave(fileId: Buffer, index: number): void {
    if (!this.options.offers || this.greeted.size === 0 || !this.server) return;
    if (this.pendingHaves.length >= MAX_BATCHED_HAVES) {
      // More news than a batch holds: fresh OFFERS say it all at once.
      this.pendingHaves = [];
      this.broadcastOffers();
      return;
    }
    this.pendingHaves.push(encodePeerMessage({ type: 'have', fileId, index }));
    // A chunk verified every few ms would cost each client a write and a read per HAVE; batched over
    // HAVE_BATCH_MS they leave in one write per client.
    this.haveTimer ??= setTimeout(() => {
      this.haveTimer = null;
      const frames = this.pendingHaves;
      this.pendingHaves = [];
      for (const session of this.greeted) session.sendHaves(frames);
    }, HAVE_BATCH_MS);
  }

  /**
   * Sends fresh OFFERS to every connected client: what we hold changed. A burst of calls leaves as
   * one message, OFFERS_DEBOUNCE_MS after the first.
   */
  broadcastOffers(): void {
    if (!this.options.offers || this.offersTimer || !this.server) return;
    this.offersTimer = setTimeout(() => {
      this.offersTimer = null;
      if (this.greeted.size === 0) return;
      const frame = this.offersFrame();
      if (frame) for (const session of this.greeted) session.sendOffers(frame);
    }, OFFERS_DEBOUNCE_MS);
    this.offersTimer.unref();
  }

  /** @internal A client introduced itself: pass it on, then answer with INFO, OFFERS and PEERS. */
  greet(session: ServedConnection, info: PeerInfo): void {
    const { self, onPeerInfo } = this.options;
    const selfId = this.credentials?.peerId;
    if (onPeerInfo && info.port !== 0 && !(selfId && info.peerId.equals(selfId))) {
      try {
        onPeerInfo({ peerId: info.peerId, name: info.name, host: session.remoteAddress, port: info.port });
      } catch (err) {
        this.logger.error({ err: errorMessage(err) }, 'onPeerInfo failed');
      }
    }
    if (self && selfId) {
      const port = this.listeningPort;
      session.send(encodePeerMessage({ type: 'info', peerId: selfId, name: self.name, port }));
    }
    const offers = this.offersFrame();
    if (offers) session.send(offers);
    const peers = this.peersFrame(session);
    if (peers) session.send(peers);
    this.greeted.add(session);
  }

  /** @internal A fresh OFFERS frame, or null without an offers option (or if it fails). */
  offersFrame(): Buffer | null {
    if (!this.options.offers) return null;
    try {
      const all = this.options.offers();
      const fit = offersThatFit(all);
      if (fit.length < all.length) {
        const cut = `${fit.length}/${all.length}`;
        if (cut !== this.lastOffersCut) {
          this.logger.warn(
            { offered: all.length, sent: fit.length },
            'too many files for one OFFERS message: offering the first ones',
          );
        }
        this.lastOffersCut = cut;
      } else {
        this.lastOffersCut = '';
      }
      return encodePeerMessage({ type: 'offers', offers: fit });
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'cannot list our offers');
      return null;
    }
  }

  /** @internal A PEERS frame for one client (not naming the client itself), or null without knownPeers. */
  peersFrame(session: ServedConnection): Buffer | null {
    if (!this.options.knownPeers) return null;
    try {
      const peers = this.options.knownPeers().filter((p) => isAdvertisable(p) && !session.isAt(p));
      return encodePeerMessage({ type: 'peers', peers: sample(peers, MAX_PEX_PEERS) });
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'cannot list known peers');
      return null;
    }
  }

  /** PEERS to every client; one not draining its socket gets a fresh one once it does. */
  private broadcastPeers(): void {
    for (const session of this.greeted) session.sendPeers();
  }

  /** @internal False for a file we know we do not hold (with a manifest option to ask); else true. */
  mayHold(fileId: Buffer): boolean {
    if (!this.options.manifest) return true;
    try {
      return this.options.manifest(fileId) !== null;
    } catch {
      return true; // the provider will tell
    }
  }

  /** @internal The manifest for GET_MANIFEST (null: not ours to give). */
  lookupManifest(fileId: Buffer): Manifest | null {
    return this.options.manifest ? this.options.manifest(fileId) : null;
  }

  /**
   * @internal Reads one chunk for a PIECE to `share`'s client: null if the provider has no such chunk,
   * or if `unwanted()` (a request cancelled, a connection closed) at any step, in which case nothing
   * more is read or spent. First it takes its part of the server's budget, which the caller gives back
   * (release) once the PIECE is flushed; then, with an upload limiter, its tokens (before the read if
   * the chunk's length is known, after it otherwise); then a disk read slot. Tokens taken for a chunk
   * that is not sent after all are refunded (discard).
   */
  async read(
    fileId: Buffer,
    index: number,
    share: BudgetShare,
    unwanted: () => boolean,
  ): Promise<ReadChunk | null> {
    const expected = this.expectedLength(fileId, index);
    let held = expected ?? MAX_CHUNK_SIZE;
    if (!(await this.budget.acquire(held, share, unwanted))) return null;
    const limiter = this.options.uploadLimiter;
    let tokens = 0;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.budget.release(held, share);
    };
    const discard = (): void => {
      if (tokens > 0) limiter?.refund(tokens);
      tokens = 0;
      release();
    };
    try {
      if (limiter && expected) {
        await limiter.take(expected, share); // connections take turns
        tokens = expected;
        if (unwanted()) {
          discard();
          return null;
        }
      }
      const data = await this.diskReads.run(async () => (unwanted() ? null : this.provider(fileId, index)));
      if (data === null || unwanted()) {
        discard();
        return null;
      }
      this.budget.resize(share, held, data.length);
      held = data.length;
      if (limiter && data.length !== tokens) {
        if (data.length > tokens) await limiter.take(data.length - tokens, share);
        else limiter.refund(tokens - data.length);
        tokens = data.length;
        if (unwanted()) {
          discard();
          return null;
        }
      }
      return { data, release, discard };
    } catch (err) {
      discard();
      throw err;
    }
  }

  /** The length of chunk `index` of `fileId` if its manifest is at hand, else null. */
  private expectedLength(fileId: Buffer, index: number): number | null {
    if (!this.options.manifest) return null;
    try {
      const manifest = this.options.manifest(fileId);
      if (!manifest || !Number.isInteger(index) || index < 0 || index >= chunkCount(manifest)) return null;
      return chunkLength(manifest, index);
    } catch {
      return null; // the provider will tell
    }
  }

  /** @internal A request or a connection is no longer wanted: let others have what it waited for. */
  wake(): void {
    this.budget.grant();
  }

  /** @internal How long a connection may hold a PIECE that it does not take (0: for ever). */
  get stallTimeoutMs(): number {
    return this.idleTimeoutMs;
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
  /** Its connection was choked before the chunk was read: it is answered with ERR_CHOKED. */
  choked: boolean;
  /**
   * Its PIECE is written: for the client it is answered (it may already have it, and asked again)
   * though the chunk keeps its memory budget until the PIECE is flushed.
   */
  answered?: boolean;
}

/** @internal A chunk read for one PIECE; it holds its part of the server's budget until released. */
interface ReadChunk {
  readonly data: Buffer;
  /** Its PIECE was flushed to the kernel, or never will be: give its budget back. Idempotent. */
  release(): void;
  /** It will not be sent: give its budget and its upload tokens back. Idempotent. */
  discard(): void;
}

/** Discovery frames held back for a client that is not draining its socket. */
interface Deferred {
  haves: Buffer[];
  /** Fresh OFFERS (which also cover every HAVE held back). */
  offers: boolean;
  /** Fresh PEERS. */
  peers: boolean;
}

/**
 * One client's requests on one connection: a bounded queue and a few concurrent disk reads; and,
 * once the client has introduced itself, the discovery messages pushed to it.
 */
class ServedConnection {
  private readonly waiting: Request[] = [];
  private readonly active = new Map<number, Request>();
  /** GET_MANIFEST request ids being answered. */
  private readonly manifestRequests = new Set<number>();
  /** Manifests are sent one at a time, each once the socket has drained: at most ~2 MiB queued. */
  private manifestQueue: Promise<void> = Promise.resolve();
  private introduced = false;
  /** The client's serving port, from its INFO (0 before it, or if it does not serve). */
  private clientPort = 0;
  /** Discovery frames waiting for the socket to drain (null: none). */
  private deferred: Deferred | null = null;
  /** This connection's part of the server's budget. */
  private readonly share: BudgetShare = { bytes: 0, chunks: 0 };
  /** PIECEs written and not yet flushed to the kernel. */
  private unflushed = 0;
  /** Closes the connection when its unflushed PIECEs make no progress for stallTimeoutMs. */
  private stallTimer: NodeJS.Timeout | null = null;
  /** When the client last asked for a chunk or manifest of a file we hold (or completed the handshake). */
  private lastAskedAt = Date.now();

  constructor(
    private readonly conn: FramedConnection,
    private readonly server: ChunkServer,
  ) {
    server.slots.add(this);
    conn.once('close', () => {
      if (this.stallTimer) clearTimeout(this.stallTimer);
      this.stallTimer = null;
      this.server.slots.remove(this);
      this.server.wake();
    });
  }

  /**
   * Since when this client has asked for nothing, while nothing it asked for is still in flight;
   * null while something is.
   */
  get askedNothingSince(): number | null {
    if (this.hasChunkRequests || this.manifestRequests.size > 0) return null;
    return this.lastAskedAt;
  }

  /** Closes the connection to make room for a newcomer (see ChunkServer.evictIdlest). */
  evict(): void {
    this.conn.destroy(
      new SwarmError('ERR_LIMIT', 'closed to make room for a newcomer: this client asked for nothing lately'),
    );
  }

  /** True while chunk requests of this client are queued, being read or being sent. */
  get hasChunkRequests(): boolean {
    return this.waiting.length > 0 || this.active.size > 0;
  }

  /**
   * It lost its upload slot: CHOKE, then REJECT ERR_CHOKED for its queued requests and for those whose
   * chunk is not read yet (one already read is sent: the client wants it and the work is done).
   */
  choke(): void {
    if (this.conn.isClosed) return;
    this.conn.send(encodePeerMessage({ type: 'choke' }));
    for (const request of this.waiting.splice(0)) this.rejectChoked(request);
    for (const request of this.active.values()) request.choked = true;
    // Those waiting for the server's budget no longer need it.
    this.server.wake();
  }

  /** It has an upload slot again. */
  unchoke(): void {
    if (!this.conn.isClosed) this.conn.send(encodePeerMessage({ type: 'unchoke' }));
  }

  private rejectChoked(request: Request): void {
    this.reject(request, 'ERR_CHOKED', 'no upload slot for you now: wait for UNCHOKE');
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  /** True if `endpoint` is where this client serves, as we see it. */
  isAt(endpoint: Endpoint): boolean {
    return this.clientPort !== 0 && endpoint.port === this.clientPort && endpoint.host === this.remoteAddress;
  }

  send(frame: Buffer): void {
    this.conn.send(frame);
  }

  /**
   * Sends `frame` (OFFERS) now, or, while the client is not draining its socket, a fresh one once it
   * does: the offers of that moment include every HAVE sent meanwhile, and a slow client never has
   * more than one OFFERS queued because of us.
   */
  sendOffers(frame: Buffer): void {
    if (!this.backedUp) this.conn.send(frame);
    else
      this.defer((d) => {
        d.offers = true;
        d.haves = [];
      });
  }

  /** Sends HAVEs now in one write, or once the client drains its socket. */
  sendHaves(frames: Buffer[]): void {
    if (this.backedUp) {
      for (const frame of frames) this.sendHave(frame);
      return;
    }
    this.conn.socket.cork();
    for (const frame of frames) this.conn.send(frame);
    this.conn.socket.uncork();
  }

  /** Sends a HAVE now, or once the client drains its socket (fresh OFFERS instead if many wait). */
  sendHave(frame: Buffer): void {
    if (!this.backedUp) this.conn.send(frame);
    else
      this.defer((d) => {
        if (d.offers) return;
        if (d.haves.length < MAX_DEFERRED_HAVES) {
          d.haves.push(frame);
        } else {
          d.haves = [];
          d.offers = true;
        }
      });
  }

  /** Sends a fresh PEERS now, or a fresh one once the client drains its socket. */
  sendPeers(): void {
    if (this.backedUp) {
      this.defer((d) => (d.peers = true));
      return;
    }
    const frame = this.server.peersFrame(this);
    if (frame) this.conn.send(frame);
  }

  /** True while the client is not taking what was sent (or it is gone): send it nothing more. */
  private get backedUp(): boolean {
    return this.conn.isClosed || this.conn.socket.writableNeedDrain;
  }

  private defer(update: (deferred: Deferred) => void): void {
    if (this.conn.isClosed) return;
    const waiting = this.deferred !== null;
    this.deferred ??= { haves: [], offers: false, peers: false };
    update(this.deferred);
    if (!waiting) void this.conn.drain().then(() => this.sendDeferred());
  }

  private sendDeferred(): void {
    const deferred = this.deferred;
    this.deferred = null;
    if (!deferred || this.conn.isClosed) return;
    const frames: Buffer[] = [];
    if (deferred.offers) {
      const offers = this.server.offersFrame();
      if (offers) frames.push(offers);
    } else {
      frames.push(...deferred.haves);
    }
    const peers = deferred.peers ? this.server.peersFrame(this) : null;
    if (peers) frames.push(peers);
    for (const frame of frames) this.conn.sendCoalesced(frame);
  }

  handleFrame(body: Buffer): void {
    const msg = decodePeerMessage(body);
    switch (msg.type) {
      case 'request': {
        this.admit(msg.req);
        const request = {
          req: msg.req,
          fileId: msg.fileId,
          index: msg.index,
          cancelled: false,
          choked: false,
        };
        // A file we do not hold is refused at once: asking for it does not compete for a slot, so
        // requests for junk cannot take upload slots from clients we can serve.
        if (!this.server.mayHold(msg.fileId)) {
          this.reject(request, 'ERR_UNKNOWN_FILE', 'this peer does not hold that file');
          return;
        }
        // Asking for what we hold keeps a connection's place when the server is full; junk does not.
        this.lastAskedAt = Date.now();
        // Asking makes it compete for a slot; without one (CHOKE already sent) it is refused at once.
        if (!this.server.slots.request(this)) {
          this.rejectChoked(request);
          return;
        }
        this.waiting.push(request);
        this.pump();
        return;
      }
      case 'get_manifest': {
        this.admit(msg.req);
        const { req, fileId } = msg;
        this.manifestRequests.add(req);
        this.manifestQueue = this.manifestQueue
          .then(() => this.serveManifest(req, fileId))
          .catch((err: unknown) => this.conn.destroy(err as Error))
          .finally(() => this.manifestRequests.delete(req));
        return;
      }
      case 'info': {
        if (this.introduced) throw new ProtocolError('INFO sent twice');
        // The id a client introduces itself with is the one its certificate proved, or it lies.
        // (No proven id only on an unencrypted connection, made for measuring alone.)
        const proven = this.conn.remotePeerId;
        if (proven && !msg.peerId.equals(proven)) {
          throw new ProtocolError('INFO names another peer id than its key');
        }
        this.introduced = true;
        this.clientPort = msg.port;
        this.server.slots.identify(this, msg.peerId.toString('hex'));
        this.server.greet(this, msg);
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
          if (request && !request.cancelled) {
            request.cancelled = true;
            // It may be waiting for the server's budget: it no longer needs any.
            this.server.wake();
          }
        }
        return;
      }
      default:
        throw new ProtocolError(`a client may not send ${msg.type.toUpperCase()}`);
    }
  }

  /** Checks a new request id against the in-flight limit and the ids in flight. */
  private admit(req: number): void {
    if (this.inFlight() >= MAX_SERVED_REQUESTS_PER_CONNECTION) {
      throw new ProtocolError(`more than ${MAX_SERVED_REQUESTS_PER_CONNECTION} requests in flight`);
    }
    const active = this.active.get(req);
    if (
      (active && !active.answered) ||
      this.manifestRequests.has(req) ||
      this.waiting.some((r) => r.req === req)
    ) {
      throw new ProtocolError(`request id ${req} is already in flight`);
    }
  }

  /** Requests the client is waiting for; a cancelled one no longer counts, even while it is read. */
  private inFlight(): number {
    let count = this.waiting.length + this.manifestRequests.size;
    for (const request of this.active.values()) if (!request.cancelled && !request.answered) count++;
    return count;
  }

  private pump(): void {
    while (this.active.size < SERVED_READS_PER_CONNECTION && this.waiting.length > 0 && !this.conn.isClosed) {
      const request = this.waiting.shift()!;
      this.active.set(request.req, request);
      void this.serve(request).finally(() => {
        // (A client may reuse the id of an answered request whose PIECE is still being flushed.)
        if (this.active.get(request.req) === request) this.active.delete(request.req);
        this.pump();
      });
    }
  }

  /** Reads and sends one chunk; resolves once its PIECE is flushed (or not sent after all). */
  private async serve(request: Request): Promise<void> {
    // Read nothing more while the client is not taking what was already sent.
    await this.conn.drain();
    if (this.conn.isClosed) return;
    if (request.cancelled) {
      this.server.record('cancelled');
      return;
    }
    if (request.choked) {
      this.rejectChoked(request);
      return;
    }
    let chunk: ReadChunk | null;
    try {
      chunk = await this.server.read(
        request.fileId,
        request.index,
        this.share,
        () => this.conn.isClosed || request.cancelled || request.choked,
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
    if (this.conn.isClosed || request.cancelled) {
      chunk?.discard();
      if (!this.conn.isClosed) this.server.record('cancelled');
      return;
    }
    if (chunk === null && request.choked) {
      this.rejectChoked(request);
      return;
    }
    if (chunk === null) {
      this.reject(request, 'ERR_UNKNOWN_CHUNK', `chunk ${request.index} of this file is not here`);
      return;
    }
    this.server.record('served', chunk.data.length);
    this.server.slots.sent(this, chunk.data.length);
    await this.sendPiece(request, chunk);
  }

  /**
   * Writes a PIECE, its header and the chunk as read (not copied together), and resolves once the
   * kernel has taken all of it or the connection is gone: until then the chunk keeps its part of the
   * server's budget, so a client that does not read holds at most SERVED_READS_PER_CONNECTION
   * chunks.
   */
  private async sendPiece(request: Request, chunk: ReadChunk): Promise<void> {
    this.pieceWritten();
    request.answered = true;
    try {
      await this.conn.sendFlushed(encodePieceHeader(request.req, request.index), chunk.data);
    } finally {
      chunk.release();
      this.pieceFlushed();
    }
  }

  private pieceWritten(): void {
    this.unflushed++;
    const timeoutMs = this.server.stallTimeoutMs;
    if (this.stallTimer || timeoutMs <= 0) return;
    this.stallTimer = setTimeout(
      () =>
        this.conn.destroy(
          new SwarmError('ERR_TIMEOUT', `took none of the chunks it asked for in ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    this.stallTimer.unref();
  }

  private pieceFlushed(): void {
    this.unflushed--;
    if (!this.stallTimer) return;
    if (this.unflushed > 0) {
      this.stallTimer.refresh();
    } else {
      clearTimeout(this.stallTimer);
      this.stallTimer = null;
    }
  }

  private reject(request: Request, code: string, message: string): void {
    if (this.conn.isClosed || request.cancelled) return;
    this.conn.send(encodePeerMessage({ type: 'reject', req: request.req, code, message }));
    this.server.record('rejected');
  }

  /** Answers a GET_MANIFEST once the client takes what it was sent: a manifest may be 2 MiB. */
  private async serveManifest(req: number, fileId: Buffer): Promise<void> {
    await this.conn.drain();
    if (this.conn.isClosed) return;
    let frame: Buffer;
    try {
      const manifest = this.server.lookupManifest(fileId);
      // Asking for what we hold keeps a connection's place when the server is full; junk does not.
      if (manifest) this.lastAskedAt = Date.now();
      frame = manifest
        ? encodePeerMessage({ type: 'manifest', req, manifest })
        : encodePeerMessage({
            type: 'reject',
            req,
            code: 'ERR_UNKNOWN_FILE',
            message: 'this peer does not hold that file',
          });
    } catch (err) {
      this.server.log.warn({ err: errorMessage(err) }, 'cannot give a requested manifest');
      frame = encodePeerMessage({
        type: 'reject',
        req,
        code: 'ERR_IO',
        message: 'the manifest could not be read',
      });
    }
    this.conn.send(frame);
  }
}

/** An address worth passing on: a host a PEERS message can carry and a port that serves. */
function isAdvertisable({ host, port }: Endpoint): boolean {
  return host.length > 0 && Buffer.byteLength(host, 'utf8') <= MAX_HOST_BYTES && port > 0 && port <= 0xffff;
}

/** Up to `count` items of `items` chosen at random (all of them, in order, if there are few enough). */
function sample<T>(items: T[], count: number): T[] {
  if (items.length <= count) return items;
  const pool = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(Math.random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

/** @internal What one connection holds of the server's budget. */
interface BudgetShare {
  bytes: number;
  chunks: number;
}

interface BudgetWaiter {
  bytes: number;
  share: BudgetShare;
  unwanted: () => boolean;
  resolve: (granted: boolean) => void;
}

/**
 * The server-wide budget of chunk bytes read (or being read) and not yet flushed to the kernel. The
 * first chunk of a connection that holds none may use all of it; further chunks of a connection only
 * the first half, so connections that stop reading with several chunks each cannot take all of it
 * from the others. Waiting first chunks are served in arrival order. One chunk is always let through
 * when nothing is held, whatever its size.
 */
class SendBudget {
  private used = 0;
  private held = 0;
  private readonly waiters: BudgetWaiter[] = [];

  constructor(private readonly limit: number) {}

  get bytes(): number {
    return this.used;
  }

  get chunks(): number {
    return this.held;
  }

  /** Resolves with true once `bytes` are granted to `share`, or false once `unwanted()` first. */
  acquire(bytes: number, share: BudgetShare, unwanted: () => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      this.waiters.push({ bytes, share, unwanted, resolve });
      this.grant();
    });
  }

  /** Gives back one chunk of `bytes` granted to `share`. */
  release(bytes: number, share: BudgetShare): void {
    this.used -= bytes;
    this.held--;
    share.bytes -= bytes;
    share.chunks--;
    this.grant();
  }

  /** A chunk granted `from` bytes turned out to be `to` bytes long (more is taken regardless). */
  resize(share: BudgetShare, from: number, to: number): void {
    this.used += to - from;
    share.bytes += to - from;
    if (to < from) this.grant();
  }

  /** Grants what the rules allow now, and drops waiters no longer wanted. */
  grant(): void {
    for (let i = 0; i < this.waiters.length;) {
      const waiter = this.waiters[i]!;
      if (waiter.unwanted()) {
        this.waiters.splice(i, 1);
        waiter.resolve(false);
        continue;
      }
      const first = waiter.share.chunks === 0;
      if (this.used === 0 || this.used + waiter.bytes <= (first ? this.limit : this.limit / 2)) {
        this.waiters.splice(i, 1);
        this.used += waiter.bytes;
        this.held++;
        waiter.share.bytes += waiter.bytes;
        waiter.share.chunks++;
        waiter.resolve(true);
        continue;
      }
      // A first chunk that does not fit keeps its place: later ones do not pass it. (A further chunk
      // that does not fit waits on without holding up the others.)
      if (first) break;
      i++;
    }
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
