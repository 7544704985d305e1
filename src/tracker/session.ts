/**
 * One peer's session on the tracker, after the handshake.
 *
 * Requests are decoded as they arrive (a bad frame closes the connection at once) and handled one
 * at a time, in order, so replies leave in request order and a session never has more than one
 * store operation running. At most MAX_TRACKER_REQUESTS_IN_FLIGHT requests may wait; a peer that
 * sends more is violating the protocol and is disconnected.
 *
 * Backpressure: the session stops reading its socket (so TCP holds the peer back) while a reply
 * waits for the peer to read (drain), while its waiting requests exceed a byte budget
 * (MAX_SESSION_QUEUED_BYTES), or while the server's budget across sessions (a QueueBudget,
 * MAX_TRACKER_QUEUED_BYTES) is spent and this session has requests waiting. A session with
 * nothing waiting may always read its next request, so stalled sessions cannot starve the others.
 * What a paused session still takes in is the rest of the data already read: at most the frame it
 * was receiving (MAX_TRACKER_FRAME) and one socket read.
 *
 * LIST, LOCATE, PING and LEAVE are served without REGISTER (one-shot clients use them);
 * ANNOUNCE, UNSHARE and HAVE need a registered peer. Sent by a session that is not registered and
 * has no REGISTER waiting, they are decoded (a bad frame still closes the connection) and then
 * kept as their request id alone, to be refused in turn with ERR_NOT_REGISTERED: such a session
 * never makes the tracker hold more than the one frame being decoded.
 *
 * Announced manifests must be valid (validateManifest) and use the chunk size chunkSizeFor() gives
 * their size, as every manifest swarmshare makes does (ERR_BAD_MANIFEST otherwise). That rule is
 * the tracker's alone, checked here at ANNOUNCE: peers accept any valid manifest from each other.
 * It keeps an honest manifest to at most TARGET_MAX_CHUNKS hashes up to 16 GiB; the store bounds
 * manifest bytes per peer and in all (ERR_LIMIT).
 *
 * Rate: each request but LEAVE takes a token from the session's RequestRate
 * (TRACKER_REQUESTS_PER_SECOND, TRACKER_REQUEST_BURST); one that finds none is kept as its request
 * id alone and answered in turn with ERR_RATE_LIMITED, unhandled. REGISTER may be tried
 * MAX_REGISTER_ATTEMPTS_PER_SESSION times (ERR_LIMIT beyond). A request still being handled after the
 * handling timeout (a store that does not answer) closes the session: the server's sweep checks
 * every session (checkHandling).
 */
import {
  MAX_ERROR_MESSAGE_BYTES,
  MAX_LIST_RESULTS,
  MAX_LOCATE_PEERS,
  MAX_REGISTER_ATTEMPTS_PER_SESSION,
  MAX_SESSION_QUEUED_BYTES,
  MAX_TRACKER_QUEUED_BYTES,
  MAX_TRACKER_REQUESTS_IN_FLIGHT,
  TRACKER_REQUEST_BURST,
  TRACKER_REQUESTS_PER_SECOND,
} from '../constants.js';
import { SwarmError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { chunkSizeFor, validateManifest, type Manifest } from '../storage/manifest.js';
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
import { RequestRate } from './request-rate.js';
import type { PeerRecord, TrackerStore } from './store.js';

export interface SessionContext {
  store: TrackerStore;
  logger: Logger;
  /** Where changes and counters are reported (for dashboards and metrics). */
  activity: TrackerActivity;
  heartbeatMs: number;
  expiryMs: number;
  /** The server's budget of request bytes waiting across its sessions. */
  budget: QueueBudget;
  /** Request bytes this session may have waiting before its socket is no longer read. */
  maxQueuedBytes?: number;
  /** Requests per second, sustained and in a burst; beyond, ERR_RATE_LIMITED. */
  requestsPerSecond?: number;
  requestBurst?: number;
  /** REGISTER requests this session may send; beyond, ERR_LIMIT. */
  maxRegisterAttempts?: number;
}

/**
 * Request bytes waiting across a server's sessions. Sessions take bytes as requests are queued and
 * give them back once answered (or dropped); while more than `limit` are taken, sessions with
 * requests waiting stop reading, and are told when the total falls back within the limit.
 */
export class QueueBudget {
  private used = 0;
  private count = 0;
  private readonly waiting = new Set<() => void>();

  constructor(readonly limit: number = MAX_TRACKER_QUEUED_BYTES) {}

  /** Request bytes waiting now. */
  get bytes(): number {
    return this.used;
  }

  /** Requests waiting now. */
  get requests(): number {
    return this.count;
  }

  get exceeded(): boolean {
    return this.used > this.limit;
  }

  take(bytes: number): void {
    this.used += bytes;
    this.count++;
  }

  give(bytes: number): void {
    this.used -= bytes;
    this.count--;
    if (this.exceeded || this.waiting.size === 0) return;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const wake of waiting) wake();
  }

  /** Calls `wake` once, the next time the total falls within the limit. */
  whenRoom(wake: () => void): void {
    this.waiting.add(wake);
  }

  cancel(wake: () => void): void {
    this.waiting.delete(wake);
  }
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

/**
 * What is kept of a request that can only be refused: its kind, its id and why. An ANNOUNCE, UNSHARE
 * or HAVE from a session with no registration (nor one waiting); any request but LEAVE over the rate.
 */
interface RefusedRequest {
  type: TrackerRequest['type'];
  req: number;
  refused: 'not-registered' | 'rate-limited';
}

interface Queued {
  request: TrackerRequest | RefusedRequest;
  /** The bytes it counts against the session's and the server's budgets. */
  bytes: number;
  /** Given back to the budgets already. */
  released: boolean;
}

export class TrackerSession {
  /** Resolves once the session is closed and the peer (if any) removed from the store. */
  readonly finished: Promise<void>;
  private peer: PeerRecord | null = null;
  private readonly queue: Queued[] = [];
  /** Bytes of the requests in `queue`. */
  private queuedBytes = 0;
  /** REGISTER requests queued or being handled: requests behind them are kept whole. */
  private registersQueued = 0;
  /** REGISTER requests handled so far (see MAX_REGISTER_ATTEMPTS_PER_SESSION). */
  private registerAttempts = 0;
  private readonly rate: RequestRate;
  /** Rate-limited already (the first refusal is a warning, the rest are not logged). */
  private rateLimited = false;
  /** When the request being handled started (performance.now()); 0 while none is. */
  private handlingSince = 0;
  /** A reply is waiting for the peer to read (drain). */
  private awaitingDrain = false;
  /** The socket is not being read (backpressure). */
  private readingPaused = false;
  private readonly maxQueuedBytes: number;
  private readonly onBudgetRoom = (): void => this.updateFlow();
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
    this.maxQueuedBytes = ctx.maxQueuedBytes ?? MAX_SESSION_QUEUED_BYTES;
    this.rate = new RequestRate(
      ctx.requestsPerSecond ?? TRACKER_REQUESTS_PER_SECOND,
      ctx.requestBurst ?? TRACKER_REQUEST_BURST,
    );
    this.expiryTimer = setTimeout(() => this.expire(), ctx.expiryMs);
    this.expiryTimer.unref();
    // Any byte from the peer counts as a sign of life, even a large frame still arriving.
    conn.socket.on('data', () => this.expiryTimer.refresh());
    this.finished = new Promise((resolve) => {
      conn.once('close', (reason) => void this.onClose(reason).then(resolve));
    });
    conn.onFrame((body) => this.onFrame(body));
    // Frames held since the handshake are handed over in a microtask, after which the connection
    // resumes reading: this one runs after it, to pause again if they filled the budget.
    queueMicrotask(() => this.updateFlow());
  }

  /** True once REGISTER succeeded on this session (and until it ends). */
  get registered(): boolean {
    return this.peer !== null;
  }

  private onFrame(body: Buffer): void {
    const msg = decodeTrackerMessage(body);
    if (!REQUEST_TYPES.has(msg.type)) throw new ProtocolError(`a peer sent a ${msg.type} reply as a request`);
    if (this.conn.isClosed) return;
    if (this.queue.length >= MAX_TRACKER_REQUESTS_IN_FLIGHT) {
      throw new SwarmError('ERR_LIMIT', `more than ${MAX_TRACKER_REQUESTS_IN_FLIGHT} requests in flight`);
    }
    const request = msg as TrackerRequest;
    let item: Queued;
    if (request.type !== 'leave' && !this.rate.tryTake()) {
      item = { request: this.refusal(request, 'rate-limited'), bytes: 0, released: false };
    } else if (this.canOnlyRefuse(request)) {
      item = { request: this.refusal(request, 'not-registered'), bytes: 0, released: false };
    } else {
      item = { request, bytes: body.length, released: false };
      if (request.type === 'register') this.registersQueued++;
    }
    this.queue.push(item);
    this.queuedBytes += item.bytes;
    this.ctx.budget.take(item.bytes);
    this.updateFlow();
    if (!this.pumping) void this.pump();
  }

  private refusal(request: TrackerRequest, why: RefusedRequest['refused']): RefusedRequest {
    return { type: request.type, req: request.req, refused: why };
  }

  /** True for a request that needs a registration this session has not got and is not about to. */
  private canOnlyRefuse(request: TrackerRequest): boolean {
    const needsPeer = request.type === 'announce' || request.type === 'unshare' || request.type === 'have';
    return needsPeer && this.peer === null && this.registersQueued === 0;
  }

  /** Gives back what a queued request counted against the budgets (once). */
  private release(item: Queued): void {
    if (item.released) return;
    item.released = true;
    this.queuedBytes -= item.bytes;
    this.ctx.budget.give(item.bytes);
  }

  /**
   * Reads the socket or not, as the budgets say: not while a reply waits for the peer to read,
   * nor while this session's waiting requests pass its budget, nor while the server's budget is
   * spent and this session has requests waiting (it is woken when the budget has room again).
   */
  private updateFlow(): void {
    if (this.conn.isClosed) return;
    const { budget } = this.ctx;
    const overServerBudget = budget.exceeded && this.queue.length > 0;
    const pause = this.awaitingDrain || this.queuedBytes > this.maxQueuedBytes || overServerBudget;
    if (overServerBudget) budget.whenRoom(this.onBudgetRoom);
    else budget.cancel(this.onBudgetRoom);
    if (pause) this.conn.socket.pause();
    else if (this.readingPaused) this.conn.socket.resume();
    this.readingPaused = pause;
  }

  /** Handles queued requests one at a time; the one being handled stays at the queue's head. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.conn.isClosed && !this.leaving) {
        const item = this.queue[0]!;
        this.handlingSince = performance.now();
        const reply = await this.handle(item.request);
        this.handlingSince = 0;
        if (this.queue[0] === item) this.queue.shift();
        if (item.request.type === 'register' && !('refused' in item.request)) this.registersQueued--;
        this.release(item);
        if (reply && !this.conn.isClosed && !this.send(reply)) {
          // A peer that does not read its replies gets no more of them, and is not read, until it does.
          this.awaitingDrain = true;
          this.updateFlow();
          await this.conn.drain();
          this.awaitingDrain = false;
          // The peer took our replies: a sign of life, though we did not read it meanwhile.
          this.expiryTimer.refresh();
        }
        this.updateFlow();
      }
    } catch (err) {
      this.log.error({ err }, 'tracker session failed');
      this.conn.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Closes the session if the request being handled started `timeoutMs` or more before `now`
   * (performance.now()): the store did not answer, its client has given up, and the requests behind
   * it would wait for ever. Called by the server's sweep.
   */
  checkHandling(now: number, timeoutMs: number): void {
    if (this.handlingSince === 0 || now - this.handlingSince < timeoutMs || this.conn.isClosed) return;
    const type = this.queue[0]?.request.type ?? 'request';
    this.conn.destroy(
      new SwarmError('ERR_TIMEOUT', `a ${type} request was not handled within ${timeoutMs} ms`),
    );
  }

  /** Sends a reply; the replies to one burst of requests leave in one write. */
  private send(reply: TrackerReply): boolean {
    return this.conn.sendCoalesced(encodeTrackerMessage(reply));
  }

  private async handle(request: TrackerRequest | RefusedRequest): Promise<Reply> {
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

  private async dispatch(request: TrackerRequest | RefusedRequest): Promise<Reply> {
    if ('refused' in request) {
      if (request.refused === 'not-registered') throw notRegistered(request.type);
      throw this.rateLimitedError(request.type);
    }
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
    if (!peer) throw notRegistered(request.type);
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

  /** The refusal of a request over the session's rate; the first one is logged. */
  private rateLimitedError(type: string): SwarmError {
    const rate = this.ctx.requestsPerSecond ?? TRACKER_REQUESTS_PER_SECOND;
    if (!this.rateLimited) {
      this.rateLimited = true;
      this.log.warn({ request: type, rate }, 'session over its request rate: refusing requests');
    }
    return new SwarmError(
      'ERR_RATE_LIMITED',
      `more than ${rate} requests per second on this session: try again in ${this.rate.msUntilToken} ms`,
    );
  }

  private async register(request: Extract<TrackerRequest, { type: 'register' }>): Promise<Reply> {
    if (this.peer) throw new SwarmError('ERR_ALREADY_REGISTERED', 'this session is already registered');
    const maxAttempts = this.ctx.maxRegisterAttempts ?? MAX_REGISTER_ATTEMPTS_PER_SESSION;
    if (++this.registerAttempts > maxAttempts) {
      throw new SwarmError('ERR_LIMIT', `at most ${maxAttempts} REGISTER requests on one session`);
    }
    const problem = peerNameProblem(request.name);
    if (problem) throw new SwarmError('ERR_BAD_NAME', problem);
    if (request.port === 0)
      throw new SwarmError('ERR_INVALID_ARGUMENT', 'a peer must serve on a port 1-65535');
    // A peer registers under the id its TLS certificate proved, never one it merely names: so no one
    // can take over, unshare or add to another peer's entries.
    const proven = this.conn.remotePeerId;
    if (!proven || !proven.equals(request.peerId)) {
      throw new SwarmError('ERR_PEER_AUTH', 'a peer registers under the peer id of its own key, not another');
    }
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
          checkChunkSize(manifest);
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
    // The request being handled (the head) gives back its bytes here too; release() is once only.
    for (const item of this.queue) this.release(item);
    this.queue.length = 0;
    this.ctx.budget.cancel(this.onBudgetRoom);
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

function notRegistered(type: string): SwarmError {
  return new SwarmError('ERR_NOT_REGISTERED', `${type} needs REGISTER first`);
}

/**
 * The tracker's rule for announced manifests (see the top of this file): the chunk size is the one
 * chunkSizeFor() picks for the size. Not part of validateManifest(Content), which peers use too.
 */
function checkChunkSize(manifest: Manifest): void {
  const expected = chunkSizeFor(manifest.size);
  if (manifest.chunkSize !== expected) {
    throw new SwarmError(
      'ERR_BAD_MANIFEST',
      `bad manifest for ${JSON.stringify(manifest.name)}: chunk size ${manifest.chunkSize}, ` +
        `where a file of ${manifest.size} bytes has ${expected}`,
    );
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
