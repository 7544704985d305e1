/**
 * One peer's session on the tracker, after the handshake.
 *
 * Requests are decoded as they arrive (a bad frame closes the connection at once) and handled one
 * at a time, in order, so replies leave in request order and a session never has more than one
 * store operation running. At most MAX_TRACKER_REQUESTS_IN_FLIGHT requests may wait; a peer that
 * sends more is violating the protocol and is disconnected.
 *
 * LIST, LOCATE, PING and LEAVE are served without REGISTER (one-shot clients use them);
 * ANNOUNCE, UNSHARE and HAVE need a registered peer.
 */
import {
  MAX_ERROR_MESSAGE_BYTES,
  MAX_LIST_RESULTS,
  MAX_LOCATE_PEERS,
  MAX_TRACKER_REQUESTS_IN_FLIGHT,
} from '../constants.js';
import { SwarmError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { validateManifest } from '../storage/manifest.js';
import { ProtocolError } from '../wire/codec.js';
import type { FramedConnection } from '../wire/connection.js';
import {
  decodeTrackerMessage,
  encodeTrackerMessage,
  type AnnounceResult,
  type TrackerReply,
  type TrackerRequest,
} from '../wire/tracker-messages.js';
import type { CatalogChangeKind, TrackerActivity } from './activity.js';
import type { PeerRecord, TrackerStore } from './store.js';

export interface SessionContext {
  store: TrackerStore;
  logger: Logger;
  /** Where changes and counters are reported (for dashboards and metrics). */
  activity: TrackerActivity;
  heartbeatMs: number;
  expiryMs: number;
}

const REQUEST_TYPES: ReadonlySet<string> = new Set([
  'register',
  'announce',
  'unshare',
  'list',
  'locate',
  'have',
  'ping',
  'leave',
]);

/** The short form of an id used in logs. */
export function shortId(id: Buffer): string {
  return id.toString('hex').slice(0, 12);
}

/** A peer name is shown to people: printable text only. */
function peerNameProblem(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'the peer name contains a control character';
  return null;
}

type Reply = TrackerReply | null;

export class TrackerSession {
  /** Resolves once the session is closed and the peer (if any) removed from the store. */
  readonly finished: Promise<void>;
  private peer: PeerRecord | null = null;
  private readonly queue: TrackerRequest[] = [];
  private pumping = false;
  private leaving = false;
  private expired = false;
  /** The upload count last reported by a heartbeat, to report a change only when it moves. */
  private uploadedBytes = 0;
  private readonly expiryTimer: NodeJS.Timeout;
  private log: Logger;

  constructor(
    private readonly conn: FramedConnection,
    private readonly ctx: SessionContext,
  ) {
    this.log = ctx.logger.child({ addr: `${conn.remoteAddress}:${conn.remotePort}` });
    this.expiryTimer = setTimeout(() => this.expire(), ctx.expiryMs);
    this.expiryTimer.unref();
    // Any byte from the peer counts as a sign of life, even a large frame still arriving.
    conn.socket.on('data', () => this.expiryTimer.refresh());
    this.finished = new Promise((resolve) => {
      conn.once('close', (reason) => void this.onClose(reason).then(resolve));
    });
    conn.onFrame((body) => this.onFrame(body));
  }

  /** True once REGISTER succeeded on this session (and until it ends). */
  get registered(): boolean {
    return this.peer !== null;
  }

  private onFrame(body: Buffer): void {
    const msg = decodeTrackerMessage(body);
    if (!REQUEST_TYPES.has(msg.type)) throw new ProtocolError(`a peer sent a ${msg.type} reply as a request`);
    if (this.queue.length >= MAX_TRACKER_REQUESTS_IN_FLIGHT) {
      throw new SwarmError('ERR_LIMIT', `more than ${MAX_TRACKER_REQUESTS_IN_FLIGHT} requests in flight`);
    }
    this.queue.push(msg as TrackerRequest);
    if (!this.pumping) void this.pump();
  }

  /** Handles queued requests one at a time; the one being handled stays at the queue's head. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.conn.isClosed && !this.leaving) {
        const reply = await this.handle(this.queue[0]!);
        this.queue.shift();
        if (reply && !this.conn.isClosed && !this.send(reply)) {
          // A peer that does not read its replies gets no more of them until it does.
          await this.conn.drain();
        }
      }
    } catch (err) {
      this.log.error({ err }, 'tracker session failed');
      this.conn.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  /** Sends a reply; the replies to one burst of requests leave in one write. */
  private send(reply: TrackerReply): boolean {
    return this.conn.sendCoalesced(encodeTrackerMessage(reply));
  }

  private async handle(request: TrackerRequest): Promise<Reply> {
    this.ctx.activity.requestHandled(request.type);
    try {
      return await this.dispatch(request);
    } catch (err) {
      if (err instanceof SwarmError) {
        this.ctx.activity.refused(request.type, err.code);
        return errorReply(request.req, err);
      }
      this.log.error({ err, request: request.type }, 'tracker request failed');
      return { type: 'error', req: request.req, code: 'ERR_IO', message: 'the tracker failed to serve this' };
    }
  }

  private async dispatch(request: TrackerRequest): Promise<Reply> {
    const { store } = this.ctx;
    const req = request.req;
    switch (request.type) {
      case 'ping':
        await this.recordUploaded(request.uploadedBytes);
        return { type: 'ok', req };
      case 'list': {
        const limit = Math.min(request.limit, MAX_LIST_RESULTS);
        const { total, files } = await store.listFiles(request.query, limit);
        return { type: 'files', req, total, files };
      }
      case 'locate': {
        const location = await store.locate(request.fileId, MAX_LOCATE_PEERS);
        if (!location) throw unknownFile(request.fileId);
        return { type: 'location', req, ...location };
      }
      case 'register':
        return this.register(request);
      case 'leave':
        await this.leave(req);
        return null;
    }
    const peer = this.peer;
    if (!peer) throw new SwarmError('ERR_NOT_REGISTERED', `${request.type} needs REGISTER first`);
    switch (request.type) {
      case 'announce':
        return { type: 'announced', req, results: await this.announce(peer, request.manifests) };
      case 'unshare':
        if (!(await store.removeHolding(peer.peerId, request.fileId))) throw unknownFile(request.fileId);
        this.log.info({ file: shortId(request.fileId) }, 'peer unshared a file');
        this.reportChange('unshare', peer, [request.fileId]);
        return { type: 'ok', req };
      case 'have':
        await store.addChunks(peer.peerId, request.fileId, request.indices);
        this.reportChange('have', peer, [request.fileId]);
        // The hot path (one HAVE per downloaded chunk): build the log record only if it is wanted.
        if (this.log.isLevelEnabled('debug')) {
          this.log.debug(
            { file: shortId(request.fileId), chunks: request.indices.length },
            'peer has chunks',
          );
        }
        return { type: 'ok', req };
    }
  }

  private async register(request: Extract<TrackerRequest, { type: 'register' }>): Promise<Reply> {
    if (this.peer) throw new SwarmError('ERR_ALREADY_REGISTERED', 'this session is already registered');
    const problem = peerNameProblem(request.name);
    if (problem) throw new SwarmError('ERR_BAD_NAME', problem);
    if (request.port === 0)
      throw new SwarmError('ERR_INVALID_ARGUMENT', 'a peer must serve on a port 1-65535');
    const record: PeerRecord = {
      peerId: request.peerId,
      name: request.name,
      host: this.conn.remoteAddress,
      port: request.port,
      connectedAt: Date.now(),
    };
    const log = this.log.child({ peer: shortId(request.peerId), peerName: request.name });
    try {
      await this.ctx.store.addPeer(record);
    } catch (err) {
      log.warn({ code: (err as SwarmError).code, err: errorMessage(err) }, 'registration refused');
      throw err;
    }
    if (this.conn.isClosed) {
      // The connection ended while the store was recording the peer: undo, nobody else will.
      await this.ctx.store.removePeer(record.peerId);
      return null;
    }
    this.peer = record;
    this.log = log;
    log.info({ port: record.port }, 'peer registered');
    this.reportChange('register', record, []);
    return {
      type: 'registered',
      req: request.req,
      host: record.host,
      port: record.port,
      heartbeatMs: this.ctx.heartbeatMs,
      expiryMs: this.ctx.expiryMs,
    };
  }

  private async announce(
    peer: PeerRecord,
    manifests: Extract<TrackerRequest, { type: 'announce' }>['manifests'],
  ): Promise<AnnounceResult[]> {
    const results: AnnounceResult[] = [];
    const accepted: Buffer[] = [];
    try {
      for (const manifest of manifests) {
        try {
          validateManifest(manifest);
          await this.ctx.store.shareFile(peer.peerId, manifest);
          results.push({ fileId: manifest.id, code: '', message: '' });
          accepted.push(manifest.id);
          this.ctx.activity.fileAnnounced(manifest.size);
          this.log.info({ file: shortId(manifest.id), fileName: manifest.name }, 'peer announced a file');
        } catch (err) {
          if (!(err instanceof SwarmError) || err.code === 'ERR_NOT_REGISTERED') throw err;
          results.push({ fileId: manifest.id, code: err.code, message: fitMessage(err.message) });
          this.ctx.activity.refused('announce', err.code);
          this.log.warn({ file: shortId(manifest.id), code: err.code, err: err.message }, 'announce refused');
        }
      }
    } finally {
      if (accepted.length > 0) this.reportChange('announce', peer, accepted);
    }
    return results;
  }

  /** Stores the upload count of a heartbeat; a change is reported only when the count moved. */
  private async recordUploaded(bytes: number): Promise<void> {
    const peer = this.peer;
    if (!peer || bytes === this.uploadedBytes) return;
    this.uploadedBytes = bytes;
    if (await this.ctx.store.setUploadedBytes(peer.peerId, bytes)) this.reportChange('uploaded', peer, []);
  }

  private reportChange(kind: CatalogChangeKind, peer: PeerRecord, fileIds: Buffer[]): void {
    this.ctx.activity.changed({
      kind,
      peerId: peer.peerId.toString('hex'),
      fileIds: fileIds.map((id) => id.toString('hex')),
    });
  }

  /** Removes the peer first, so that when the peer reads OK it is already gone from every list. */
  private async leave(req: number): Promise<void> {
    this.leaving = true;
    await this.unregister('peer left', 'leave');
    this.conn.sendAndEnd(encodeTrackerMessage({ type: 'ok', req }));
  }

  private expire(): void {
    this.expired = true;
    this.conn.destroy(new SwarmError('ERR_TIMEOUT', `nothing received for ${this.ctx.expiryMs} ms`));
  }

  private async onClose(reason: Error | undefined): Promise<void> {
    clearTimeout(this.expiryTimer);
    this.queue.length = 0;
    if (this.expired) {
      await this.unregister('peer expired', 'expire');
    } else if (reason && !isConnectionLoss(reason)) {
      this.log.warn({ code: (reason as SwarmError).code, err: reason.message }, 'closing session: bad input');
      await this.unregister('peer dropped', 'disconnect');
    } else {
      await this.unregister('peer disconnected', 'disconnect');
    }
  }

  private async unregister(what: string, kind: CatalogChangeKind): Promise<void> {
    const peer = this.peer;
    if (!peer) {
      this.log.debug(what === 'peer left' ? 'client left' : 'client disconnected');
      return;
    }
    this.peer = null;
    try {
      await this.ctx.store.removePeer(peer.peerId);
      this.log.info(what);
      this.reportChange(kind, peer, []);
    } catch (err) {
      this.log.error({ err }, 'failed to remove a peer from the store');
    }
  }
}

function unknownFile(fileId: Buffer): SwarmError {
  return new SwarmError('ERR_UNKNOWN_FILE', `no file ${shortId(fileId)} on this tracker`);
}

function errorReply(req: number, err: SwarmError): TrackerReply {
  return { type: 'error', req, code: err.code, message: fitMessage(err.message) };
}

/** Cuts a message to what the wire carries, on a character boundary. */
function fitMessage(message: string): string {
  if (Buffer.byteLength(message, 'utf8') <= MAX_ERROR_MESSAGE_BYTES) return message;
  let cut = Buffer.from(message, 'utf8')
    .subarray(0, MAX_ERROR_MESSAGE_BYTES - 3)
    .toString('utf8');
  // A multi-byte character split by the cut decodes as U+FFFD; drop it.
  while (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return `${cut}...`;
}

/** Errors that mean the network went away, as opposed to the peer misbehaving. */
function isConnectionLoss(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ERR_CLOSED';
}
