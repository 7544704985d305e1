/**
 * A peer's side of one tracker session: connect, handshake, then typed requests.
 *
 * Requests may overlap: each carries an id its reply repeats. At most
 * MAX_TRACKER_REQUESTS_IN_FLIGHT are on the wire at once (the tracker disconnects a peer that
 * sends more); further callers wait their turn, up to a bound. Nothing from the tracker is trusted
 * blindly: a located manifest is re-checked against the id that was asked for.
 */
import { EventEmitter } from 'node:events';
import { formatEndpoint, type Endpoint } from '../address.js';
import {
  CONNECT_TIMEOUT_MS,
  HASH_BYTES,
  MAX_ANNOUNCE_BATCH,
  MAX_CHUNKS,
  MAX_FILE_NAME_BYTES,
  MAX_HAVE_BATCH,
  MAX_LIST_RESULTS,
  MAX_PEER_NAME_BYTES,
  MAX_QUERY_BYTES,
  MAX_TRACKER_FRAME,
  MAX_TRACKER_REQUESTS_IN_FLIGHT,
  PEER_ID_BYTES,
  TRACKER_PROTOCOL,
  TRACKER_REQUEST_TIMEOUT_MS,
  TRACKER_VERSIONS,
} from '../constants.js';
import { RemoteError, SwarmError, errorCode, errorMessage, isErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { validateManifestContent, type Manifest } from '../storage/manifest.js';
import { ProtocolError } from '../wire/codec.js';
import { ephemeralCredentials, type Credentials } from '../transport/credentials.js';
import { type FramedConnection, connectSecureFramed } from '../wire/connection.js';
import { clientHandshake } from '../wire/handshake.js';
import { PendingRequests } from '../wire/pending-requests.js';
import {
  decodeTrackerMessage,
  encodeTrackerMessage,
  type AnnounceResult,
  type FileSummary,
  type Holder,
  type TrackerReply,
  type TrackerRequest,
} from '../wire/tracker-messages.js';

export interface TrackerClientOptions {
  host: string;
  port: number;
  logger?: Logger;
  /** A request without a reply in this time fails with ERR_TIMEOUT and closes the session. */
  requestTimeoutMs?: number;
  /** Deadline for the TCP connection and then for the handshake. */
  connectTimeoutMs?: number;
  /** Who we are (and our swarm key, in a private swarm); a throw-away identity if not given. */
  credentials?: Credentials;
  /** The tracker's peer id, if known: a tracker with another key is refused (ERR_PEER_AUTH). */
  trackerId?: Buffer;
}

/** What the tracker answered to REGISTER: the address it sees us at, and its timings. */
export interface Registration {
  host: string;
  port: number;
  heartbeatMs: number;
  expiryMs: number;
}

export interface TrackerClientEvents {
  close: [reason: Error | undefined];
}

/** Callers allowed to wait for a free request slot; beyond this, requests fail with ERR_LIMIT. */
const MAX_WAITING_REQUESTS = 1024;
/** An ANNOUNCE frame is filled up to this many bytes of manifests (one larger manifest goes alone). */
const ANNOUNCE_BATCH_BYTES = (MAX_TRACKER_FRAME * 3) / 4;
const MIN_HEARTBEAT_MS = 20;
/** setInterval treats anything longer as 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bytes of a manifest on the wire besides its name and hashes. */
const MANIFEST_OVERHEAD_BYTES = HASH_BYTES + 2 + 8 + 4 + 4;

type RequestBody = TrackerRequest extends infer R
  ? R extends TrackerRequest
    ? Omit<R, 'req'>
    : never
  : never;
type ReplyOf<K extends TrackerReply['type']> = Extract<TrackerReply, { type: K }>;

export class TrackerClient extends EventEmitter<TrackerClientEvents> {
  /** The tracker protocol version agreed in the handshake. */
  readonly version: number;
  readonly remote: Endpoint;
  /** Our peer id, as the tracker authenticated it. */
  readonly peerId: Buffer;
  /** The tracker's peer id, as it proved it in the TLS handshake. */
  readonly trackerId: Buffer;
  private readonly conn: FramedConnection;
  private readonly logger: Logger;
  private readonly pending: PendingRequests<TrackerReply>;
  private inFlight = 0;
  private readonly waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private closedWith: SwarmError | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  /**
   * Connects and completes the handshake. Rejects ERR_UNREACHABLE (naming host:port) when nothing
   * answers, or the tracker's refusal as a RemoteError (e.g. ERR_UNSUPPORTED_VERSION).
   */
  static async connect(options: TrackerClientOptions): Promise<TrackerClient> {
    const where = formatEndpoint(options);
    const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const credentials = options.credentials ?? (await ephemeralCredentials());
    let conn: FramedConnection;
    try {
      conn = await connectSecureFramed(
        options.host,
        options.port,
        { credentials, timeoutMs, expectedPeerId: options.trackerId },
        { maxFrame: MAX_TRACKER_FRAME },
      );
    } catch (err) {
      if (errorCode(err) === 'ERR_UNREACHABLE' || errorCode(err) === 'ERR_PEER_AUTH') throw err;
      throw new SwarmError(
        errorCode(err) === 'ERR_PROTOCOL' ? 'ERR_PROTOCOL' : 'ERR_UNREACHABLE',
        `no tracker handshake with ${where}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    let version: number;
    try {
      version = await clientHandshake(
        conn,
        TRACKER_PROTOCOL,
        TRACKER_VERSIONS,
        timeoutMs,
        credentials.swarmKey,
      );
    } catch (err) {
      conn.destroy();
      if (err instanceof RemoteError || errorCode(err) === 'ERR_SWARM_SECRET') throw err;
      const code = errorCode(err) === 'ERR_PROTOCOL' ? 'ERR_PROTOCOL' : 'ERR_UNREACHABLE';
      throw new SwarmError(code, `no tracker handshake with ${where}: ${errorMessage(err)}`, { cause: err });
    }
    return new TrackerClient(conn, version, where, credentials.peerId, options);
  }

  private constructor(
    conn: FramedConnection,
    version: number,
    where: string,
    peerId: Buffer,
    options: TrackerClientOptions,
  ) {
    super();
    this.conn = conn;
    this.peerId = peerId;
    this.trackerId = conn.remotePeerId!;
    this.version = version;
    this.remote = { host: options.host, port: options.port };
    this.logger = (options.logger ?? silentLogger()).child({ tracker: where });
    this.pending = new PendingRequests(
      MAX_TRACKER_REQUESTS_IN_FLIGHT,
      options.requestTimeoutMs ?? TRACKER_REQUEST_TIMEOUT_MS,
    );
    conn.once('close', (reason) => this.onClose(reason));
    conn.onFrame((body) => this.onFrame(body));
  }

  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  /**
   * Registers this peer; the tracker records the address it sees, with our serving port. The peer id
   * is the one this session authenticated (another is refused by the tracker with ERR_PEER_AUTH).
   */
  async register(info: { peerId?: Buffer; name: string; port: number }): Promise<Registration> {
    const peerId = info.peerId ?? this.peerId;
    if (peerId.length !== PEER_ID_BYTES) invalid(`a peer id is ${PEER_ID_BYTES} bytes`);
    if (Buffer.byteLength(info.name, 'utf8') > MAX_PEER_NAME_BYTES)
      invalid(`a peer name is at most ${MAX_PEER_NAME_BYTES} bytes`);
    if (!Number.isInteger(info.port) || info.port < 1 || info.port > 65535)
      invalid(`port must be 1-65535, got ${info.port}`);
    const reply = await this.request({ type: 'register', ...info, peerId }, 'registered');
    return { host: reply.host, port: reply.port, heartbeatMs: reply.heartbeatMs, expiryMs: reply.expiryMs };
  }

  /**
   * Announces complete files, in as many requests as needed. Returns one result per manifest, in
   * order: code '' when accepted, else why not. Manifests that cannot even be encoded are refused
   * here without asking the tracker.
   */
  async announce(manifests: readonly Manifest[]): Promise<AnnounceResult[]> {
    const results: (AnnounceResult | undefined)[] = manifests.map(localAnnounceProblem);
    let batch: number[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const indices = batch;
      batch = [];
      batchBytes = 0;
      const reply = await this.request(
        { type: 'announce', manifests: indices.map((i) => manifests[i]!) },
        'announced',
      );
      if (reply.results.length !== indices.length) {
        throw this.violation(`${reply.results.length} announce results for ${indices.length} files`);
      }
      indices.forEach((index, i) => (results[index] = reply.results[i]));
    };
    for (let i = 0; i < manifests.length; i++) {
      if (results[i]) continue;
      const bytes = manifestWireBytes(manifests[i]!);
      if (
        batch.length >= MAX_ANNOUNCE_BATCH ||
        (batch.length > 0 && batchBytes + bytes > ANNOUNCE_BATCH_BYTES)
      ) {
        await flush();
      }
      batch.push(i);
      batchBytes += bytes;
    }
    await flush();
    return results as AnnounceResult[];
  }

  /** Stops sharing a file. Rejects ERR_UNKNOWN_FILE if the tracker has us holding nothing of it. */
  async unshare(fileId: Buffer): Promise<void> {
    await this.request({ type: 'unshare', fileId }, 'ok');
  }

  /** Files whose name contains `query` (case-insensitive); `total` counts all matches. */
  async list(query = '', limit: number = MAX_LIST_RESULTS): Promise<{ total: number; files: FileSummary[] }> {
    if (Buffer.byteLength(query, 'utf8') > MAX_QUERY_BYTES)
      invalid(`a query is at most ${MAX_QUERY_BYTES} bytes`);
    const clamped = Math.max(0, Math.min(MAX_LIST_RESULTS, Math.floor(limit)));
    const reply = await this.request({ type: 'list', query, limit: clamped }, 'files');
    return { total: reply.total, files: reply.files };
  }

  /**
   * A file's manifest and the peers holding its chunks (ourselves included, if we do).
   * Rejects ERR_UNKNOWN_FILE, or ERR_BAD_MANIFEST when the tracker's manifest does not prove the id.
   * Its name is whatever the tracker says: a download saves it under safeFileName(name).
   */
  async locate(fileId: Buffer): Promise<{ manifest: Manifest; holders: Holder[] }> {
    const reply = await this.request({ type: 'locate', fileId }, 'location');
    if (!reply.manifest.id.equals(fileId)) {
      throw new SwarmError('ERR_BAD_MANIFEST', 'the tracker answered with the manifest of another file');
    }
    validateManifestContent(reply.manifest);
    return { manifest: reply.manifest, holders: reply.holders };
  }

  /** Tells the tracker we now hold these chunks (so others can fetch them from us). */
  async have(fileId: Buffer, indices: readonly number[]): Promise<void> {
    for (let at = 0; at < indices.length; at += MAX_HAVE_BATCH) {
      await this.request({ type: 'have', fileId, indices: indices.slice(at, at + MAX_HAVE_BATCH) }, 'ok');
    }
  }

  /** A sign of life, carrying how many chunk bytes this peer has sent to others (for dashboards). */
  async ping(uploadedBytes = 0): Promise<void> {
    await this.request({ type: 'ping', uploadedBytes: clampU64(uploadedBytes) }, 'ok');
  }

  /**
   * Pings every `intervalMs` (without keeping the process alive); a failed ping closes the client.
   * Each ping reports `uploadedBytes()` (0 without a provider).
   */
  startHeartbeat(intervalMs: number, uploadedBytes: () => number = () => 0): void {
    this.stopHeartbeat();
    if (this.isClosed) return;
    // The interval may come from the tracker: keep it within what a timer can do sensibly.
    intervalMs = Math.min(Math.max(Math.floor(intervalMs) || 0, MIN_HEARTBEAT_MS), MAX_TIMER_MS);
    let waiting = false;
    this.heartbeat = setInterval(() => {
      if (waiting) return;
      waiting = true;
      this.ping(uploadedBytes()).then(
        () => (waiting = false),
        (err: Error) => {
          this.logger.warn({ code: errorCode(err), err: err.message }, 'tracker heartbeat failed');
          this.close(err);
        },
      );
    }, intervalMs);
    this.heartbeat.unref();
  }

  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Says goodbye (the tracker forgets us before it answers), then closes. */
  async leave(): Promise<void> {
    try {
      await this.request({ type: 'leave' }, 'ok');
    } finally {
      this.close();
    }
  }

  /** Closes the session; pending requests fail with ERR_CLOSED. Idempotent. */
  close(reason?: Error): void {
    this.conn.destroy(reason);
  }

  private async request<K extends TrackerReply['type']>(body: RequestBody, expect: K): Promise<ReplyOf<K>> {
    await this.acquireSlot();
    try {
      const { id, reply } = this.pending.open(body.type, () =>
        this.close(new SwarmError('ERR_TIMEOUT', `the tracker did not answer a ${body.type} in time`)),
      );
      let frame: Buffer | null = null;
      try {
        frame = encodeTrackerMessage({ ...body, req: id } as TrackerRequest);
      } catch (err) {
        this.pending.reject(
          id,
          new SwarmError('ERR_INVALID_ARGUMENT', `cannot send ${body.type}: ${errorMessage(err)}`),
        );
      }
      // Requests made in one burst leave in one write.
      if (frame) this.conn.sendCoalesced(frame);
      const answer = await reply;
      if (answer.type === 'error') {
        throw new RemoteError(isErrorCode(answer.code) ? answer.code : 'ERR_PROTOCOL', answer.message);
      }
      if (answer.type !== expect) throw this.violation(`a ${answer.type} reply to ${body.type}`);
      return answer as ReplyOf<K>;
    } finally {
      this.releaseSlot();
    }
  }

  private async acquireSlot(): Promise<void> {
    if (this.closedWith) throw this.closedWith;
    if (this.inFlight < MAX_TRACKER_REQUESTS_IN_FLIGHT) {
      this.inFlight++;
      return;
    }
    if (this.waiting.length >= MAX_WAITING_REQUESTS) {
      throw new SwarmError('ERR_LIMIT', `more than ${MAX_WAITING_REQUESTS} tracker requests waiting`);
    }
    // The slot is handed over by releaseSlot(), so inFlight does not change.
    await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next.resolve();
    else this.inFlight--;
  }

  private onFrame(body: Buffer): void {
    const msg = decodeTrackerMessage(body);
    if (!isReply(msg)) throw new ProtocolError(`the tracker sent a ${msg.type} request`);
    if (!this.pending.resolve(msg.req, msg)) throw new ProtocolError(`a reply to unknown request ${msg.req}`);
  }

  /** Closes the session because the tracker broke the protocol; returns the error to throw. */
  private violation(what: string): ProtocolError {
    const err = new ProtocolError(`tracker protocol violation: ${what}`);
    this.close(err);
    return err;
  }

  private onClose(reason: Error | undefined): void {
    this.stopHeartbeat();
    const detail = reason ? `: ${reason.message}` : '';
    this.closedWith = new SwarmError('ERR_CLOSED', `the tracker session closed${detail}`, { cause: reason });
    this.pending.close(this.closedWith);
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.closedWith);
    if (reason) this.logger.debug({ code: errorCode(reason), err: reason.message }, 'tracker session closed');
    else this.logger.debug('tracker session closed');
    this.emit('close', reason);
  }
}

/** A counter as the wire carries it: a whole number from 0 to 2^53 - 1. */
function clampU64(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.min(Math.floor(value), Number.MAX_SAFE_INTEGER);
}

function invalid(message: string): never {
  throw new SwarmError('ERR_INVALID_ARGUMENT', message);
}

function isReply(msg: TrackerRequest | TrackerReply): msg is TrackerReply {
  return (
    msg.type === 'ok' ||
    msg.type === 'error' ||
    msg.type === 'registered' ||
    msg.type === 'announced' ||
    msg.type === 'files' ||
    msg.type === 'location'
  );
}

function manifestWireBytes(manifest: Manifest): number {
  return MANIFEST_OVERHEAD_BYTES + Buffer.byteLength(manifest.name, 'utf8') + manifest.hashes.length;
}

/** Why a manifest cannot be put on the wire at all, as a result; undefined if it can. */
function localAnnounceProblem(manifest: Manifest): AnnounceResult | undefined {
  const fileId = manifest.id;
  if (Buffer.byteLength(manifest.name, 'utf8') > MAX_FILE_NAME_BYTES) {
    return { fileId, code: 'ERR_BAD_NAME', message: `a file name is at most ${MAX_FILE_NAME_BYTES} bytes` };
  }
  const encodable =
    manifest.id.length === HASH_BYTES &&
    manifest.hashes.length <= MAX_CHUNKS * HASH_BYTES &&
    Number.isSafeInteger(manifest.size) &&
    manifest.size >= 0 &&
    Number.isInteger(manifest.chunkSize) &&
    manifest.chunkSize >= 0 &&
    manifest.chunkSize <= 0xffffffff;
  if (!encodable) return { fileId, code: 'ERR_BAD_MANIFEST', message: 'the manifest is malformed' };
  return undefined;
}
