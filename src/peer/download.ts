/**
 * Downloads one file from many peers at once.
 *
 * Sources come from `findSources` (the tracker, which knows every holder's chunks), asked at the start
 * and every relocate interval; a connected source also tells us what it holds (OFFERS) and each chunk
 * it gains (HAVE), so its chunk map is current between relocates. Up to maxSources are connected in
 * parallel. Chunks are picked rarest first across all the sources we know of (ties broken at random,
 * so sources spread over the file), except the first RANDOM_FIRST_CHUNKS, which are picked at random
 * so a newcomer soon has something to trade. When every missing chunk is already requested, an idle
 * source may duplicate a request still in flight at one other source ("end game"), so one slow source
 * cannot hold up the end; the first verified copy wins and the other request is cancelled.
 *
 * Pipelining adapts per source: each is kept busy for its round trip plus REQUEST_QUEUE_TARGET_MS at
 * its measured rate (at least MIN_REQUESTS_PER_SOURCE, at most MAX_IN_FLIGHT_BYTES_PER_SOURCE), so a
 * fast source never waits for our next request and a slow one holds little work hostage. Chunks
 * received but not yet written are capped (MAX_WRITE_QUEUE_BYTES): a slow disk slows the requests
 * instead of filling memory. A source that chokes us (its upload slots are taken) keeps its
 * connection but gets no requests until it unchokes us.
 *
 * Every chunk is checked against the manifest (exact length and SHA-256) before it is written; the
 * manifest must prove the file id (the caller checks it against the id it asked for; the constructor
 * checks the hashes against the manifest's id again), so no source ever supplies the hashes its own
 * data is checked against. A source that disconnects or times out loses its requests to the others and
 * may be reconnected later: a flaky network is nobody's fault.
 *
 * Bad peers: blame goes to the source whose connection delivered the bytes, never to another holder of
 * the chunk. A chunk that fails its check (corrupt bytes, or the right bytes under the wrong index,
 * which hash against the index asked for) is discarded, never written, and asked of another source,
 * never again of that one; at MAX_BAD_CHUNKS_PER_SOURCE the source is banned. A protocol violation
 * (data we never asked that connection for, a PIECE labelled with another chunk than the one asked
 * for) bans it at once: an honest peer never does it, and such data cannot be checked against
 * anything (the late answer to a request we cancelled is not one: see PeerClient). A banned source is
 * disconnected and, for the rest of the download, never connected again nor re-added when discovery
 * lists it again, neither under its peer id nor at its address; the ban is a logged warning, a
 * 'source-banned' event, and shows in sourceStats() and progress.
 *
 * Progress is a verified chunk, nothing else: connecting to sources and asking them for chunks is
 * not. With no chunk verified for noSourceTimeoutMs the download fails with ERR_NO_SOURCES, after
 * giving the requests in flight at that moment (and a chunk being verified) until their own
 * deadline (chunkTimeoutMs from when each was sent) to deliver; requests made after that moment do
 * not extend it. So a source that accepts requests and never answers fails the download within
 * noSourceTimeoutMs + chunkTimeoutMs, while a slow source that does deliver (each chunk within its
 * request deadline) keeps it going.
 *
 * The partial file outlives the download: a failure or stop() keeps it with its state, and a new
 * Download of the same file into the same state folder resumes from it, hashing again what it
 * claims (see PartialFile); only cancel() removes it. Before the file is moved into place it is read
 * back whole, and a chunk that changed on disk meanwhile is fetched again.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { formatEndpoint } from '../address.js';
import { releaseBuffer } from '../buffer-pool.js';
import {
  AVAILABILITY_REFRESH_MS,
  CHUNK_REQUEST_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  MAX_BAD_CHUNKS_PER_SOURCE,
  MAX_BANNED_SOURCES_PER_DOWNLOAD,
  MAX_IN_FLIGHT_BYTES_PER_SOURCE,
  MAX_LOCATE_PEERS,
  MAX_SERVED_REQUESTS_PER_CONNECTION,
  MAX_SOURCES_PER_DOWNLOAD,
  MAX_WRITE_QUEUE_BYTES,
  MIN_REQUESTS_PER_SOURCE,
  NO_SOURCE_TIMEOUT_MS,
  RANDOM_FIRST_CHUNKS,
  RELOCATE_INTERVAL_MS,
  REQUEST_QUEUE_TARGET_MS,
  REQUESTS_PER_SOURCE,
} from '../constants.js';
import { RemoteError, SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { Bitfield } from '../storage/bitfield.js';
import { safeFileName } from '../storage/file-name.js';
import {
  chunkCount,
  chunkLength,
  fileIdHex,
  validateManifestContent,
  type Manifest,
} from '../storage/manifest.js';
import { BadChunksError, PartialFile } from '../storage/partial-file.js';
import type { Credentials } from '../transport/credentials.js';
import { readFileChunk } from '../storage/shared-folder.js';
import type { ReceiveLimiter } from '../wire/connection.js';
import type { Offer } from '../wire/peer-messages.js';
import { PeerClient } from './peer-client.js';

/** A peer that holds some or all of the file, as the tracker reports it. */
export interface SourceInfo {
  /** Peer id, hex. */
  peerId: string;
  name: string;
  host: string;
  port: number;
  /** The chunks it holds; must have one bit per chunk of the file. */
  chunks: Bitfield;
}

export interface DownloadOptions {
  /**
   * Checked by the caller against the file id it asked for; the constructor throws ERR_BAD_MANIFEST
   * unless its hashes prove its own id (its name is the caller's business: see safeFileName).
   */
  manifest: Manifest;
  /** Destination folder: the finished file lands here, under a name that takes nothing away. */
  dir: string;
  /** The partial file lives in `stateDir/partial` until the download completes. */
  stateDir: string;
  /** Called at the start and every relocateIntervalMs; errors are logged and it is asked again later. */
  findSources: () => Promise<SourceInfo[]>;
  /**
   * After chunk `index` is verified and written (the caller tells the tracker); also for each chunk
   * found verified on disk when the download resumes, with fromPeerId ''.
   */
  onChunk?: (index: number, fromPeerId: string) => void;
  logger?: Logger;
  relocateIntervalMs?: number;
  /**
   * Fail with ERR_NO_SOURCES after this long without a verified chunk (requests in flight then get
   * until their own deadline; see the top of this file).
   */
  noSourceTimeoutMs?: number;
  /** A chunk request unanswered this long is given to another source. */
  chunkTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Who we are to the sources: the identity we prove (by default a throw-away one) and our name. */
  credentials?: Credentials;
  self?: { name: string };
  /** No TLS, no peer authentication: only for measuring what encryption costs (bench/encryption.ts). */
  unencrypted?: boolean;
  /** A fixed number of requests in flight per source; by default it adapts to each source's rate. */
  requestsPerSource?: number;
  maxSources?: number;
  /**
   * Caps the bytes received per second on the download's connections, shared with whatever else
   * uses it (PeerNode's process-wide download limiter).
   */
  receiveLimiter?: ReceiveLimiter;
}

export interface DownloadResult {
  /** Absolute path of the finished file. */
  path: string;
  /** The name it landed under (the manifest's name, or `name (1).ext` if that was taken). */
  name: string;
  size: number;
  seconds: number;
  /** Verified bytes already on disk when it started (a resumed download); the sources gave the rest. */
  resumedBytes: number;
  /** Every source connected during the download, with the verified bytes it supplied. */
  sources: { peerId: string; name: string; bytes: number; banned: boolean }[];
}

export interface DownloadProgress {
  verifiedChunks: number;
  totalChunks: number;
  /** Verified bytes. */
  bytes: number;
  size: number;
  /** Of those, the bytes found verified on disk when the download resumed. */
  resumedBytes: number;
  /** Over the last few seconds. */
  bytesPerSecond: number;
  /** Sources connected now. */
  sources: number;
  /** Sources banned from this download (bad chunks, protocol violations). */
  bannedSources: number;
  /** Paused: no new requests are made (see Download.pause). */
  paused: boolean;
}

/** One source as a progress display shows it: who, how much it sent, whether it is connected. */
export interface SourceStats {
  peerId: string;
  name: string;
  /** Verified bytes it supplied. */
  bytes: number;
  connected: boolean;
  /** Chunk requests outstanding at it now. */
  inFlight: number;
  /** Requests it is kept busy with (adapted to its rate and round trip). */
  depth: number;
  /** Verified bytes per second it delivers, recently. */
  bytesPerSecond: number;
  /** It has no upload slot for us now. */
  choked: boolean;
  /** Chunks from it that failed verification. */
  badChunks: number;
  /** Banned from this download (see BanReason). */
  banned: boolean;
}

/** Why a source was banned: too many chunks failed verification, or it broke the protocol. */
export type BanReason = 'bad-chunks' | 'protocol';

/** Why a source stopped being used: a stable word for logs, UIs and tests. */
export type SourceLostReason = 'disconnected' | 'timeout' | 'idle' | BanReason;

/** A source banned from the download: who, where, and why. */
export interface SourceBan {
  peerId: string;
  name: string;
  /** host:port, as we connected to it. */
  address: string;
  reason: BanReason;
  /** For people: what it did. */
  detail: string;
}

export interface DownloadEvents {
  progress: [progress: DownloadProgress];
  /** An earlier run's partial file was found: these chunks and bytes were verified again and kept. */
  resumed: [chunks: number, bytes: number];
  source: [peerId: string, name: string];
  'source-lost': [peerId: string, reason: SourceLostReason];
  /** A source was banned for the rest of the download (then 'source-lost' follows, if it was connected). */
  'source-banned': [ban: SourceBan];
}

/** Sources remembered at once (listed now, connected, or having contributed). */
const MAX_KNOWN_SOURCES = 4 * MAX_LOCATE_PEERS;
/** A source's reconnect delay doubles per failure up to this many relocate intervals. */
const MAX_BACKOFF_INTERVALS = 16;
/** Window for the transfer rate. */
const RATE_WINDOW_MS = 5_000;
const RATE_SAMPLE_MS = 250;

/** Identifies one chunk request (by identity) and when it was sent. */
interface RequestToken {
  sentAt: number;
}

/** Waiting this long for an upload slot at sources that have what we need fails the download. */
const MAX_CHOKED_WAIT_MS = 5 * 60_000;
/** With nothing in flight, sources are asked for again this soon after the last time. */
const RELOCATE_SOON_MS = 500;

/** A source's delivery rate is measured over windows this long at least, then smoothed. */
const SOURCE_RATE_WINDOW_MS = 250;

/** While the no-progress deadline waits for a chunk being verified, it looks again this often. */
const WRITE_POLL_MS = 50;

interface Source {
  peerId: string;
  info: SourceInfo;
  /** Our copy of its chunks (the caller's bitfield may change under us). */
  chunks: Bitfield;
  /** Chunks it refused (REJECT) since its bitfield was last refreshed. */
  refused: Set<number>;
  client: PeerClient | null;
  connecting: boolean;
  everConnected: boolean;
  /** In-flight requests: chunk index → a token identifying that very request. */
  inFlight: Map<number, RequestToken>;
  bytes: number;
  badChunks: number;
  /** Chunks it sent that failed verification: never asked of it again (at most MAX_BAD_CHUNKS_PER_SOURCE). */
  failedChunks: Set<number>;
  failures: number;
  retryAt: number;
  /** Banned for the rest of this download, and why (null: not banned). */
  banned: BanReason | null;
  /** Listed by the latest findSources answer. */
  listed: boolean;
  /** Set just before we close the connection ourselves, to report why. */
  closingFor: SourceLostReason | null;
  /** It told us it has no upload slot for us: no requests until it unchokes us. */
  choked: boolean;
  /** Requests to keep in flight at it (see pipelineDepth). */
  depth: number;
  /** Smoothed bytes per second it delivered (0 until measured). */
  rate: number;
  /** The current rate window: since when, and the bytes delivered in it. */
  windowStart: number;
  windowBytes: number;
  /** The quickest answer to a request, in ms: a round trip plus one chunk's transfer. */
  minLatencyMs: number;
}

export class Download extends EventEmitter<DownloadEvents> {
  /** Verified chunks, which this peer can serve to others while it downloads. */
  readonly have: Bitfield;
  readonly manifest: Manifest;
  private readonly options: DownloadOptions;
  private readonly logger: Logger;
  private readonly fileId: Buffer;
  private readonly totalChunks: number;
  private readonly relocateIntervalMs: number;
  private readonly noSourceTimeoutMs: number;
  private readonly chunkTimeoutMs: number;
  /** Fixed by the caller, or null: adapted per source. */
  private readonly requestsPerSource: number | null;
  private readonly maxSources: number;
  /** Most requests in flight at one source: by the protocol's cap and the bytes they bring. */
  private readonly maxDepth: number;

  /** Sources we may use, by peer id (a banned source moves to `banned`). */
  private readonly sources = new Map<string, Source>();
  /** Banned sources by peer id, oldest first (at most MAX_BANNED_SOURCES_PER_DOWNLOAD). */
  private readonly banned = new Map<string, Source>();
  /** The addresses (addressKey) of the banned sources, each to the peer id banned there. */
  private readonly bannedAddresses = new Map<string, string>();
  /** Chunk index → the sources it is requested from right now (at most two, in the end game). */
  private readonly requested = new Map<number, Set<Source>>();
  /** Chunks received and being verified/written, and their bytes. */
  private readonly writing = new Set<number>();
  private writingBytes = 0;
  /** A HAVE or OFFERS changed what sources hold since the order was built (see AVAILABILITY_REFRESH_MS). */
  private availabilityDirty = false;
  private orderBuiltAt = 0;
  private pumpScheduled = false;
  private relocateSoonTimer: NodeJS.Timeout | null = null;
  private lastRelocateAt = 0;
  /** Since when every source with chunks we need has been choking us (0: not now). */
  private chokedSince = 0;
  /** Missing chunks that some source holds, rarest first; rebuilt when the sources change. */
  private order: number[] = [];
  private orderStart = 0;
  private orderStale = true;

  private partial: PartialFile | null = null;
  private partialReady: Promise<PartialFile | null> | null = null;
  private startPromise: Promise<DownloadResult> | null = null;
  private settle: { resolve: (r: DownloadResult) => void; reject: (e: Error) => void } | null = null;
  private finished = false;
  private paused = false;
  private finalPath: string | null = null;
  private startedAt = 0;
  private verifiedBytes = 0;
  private resumedBytes = 0;
  /** Closing out (finishing, failing, stopping): settles once the partial file is done with. */
  private closing: Promise<void> | null = null;
  /** A stop or cancel asked for while the file was being finished (its final check may need chunks). */
  private endRequest: { error: Error; discard: boolean } | null = null;
  /** When a chunk was last verified (or the download started or resumed). */
  private lastProgressAt = 0;
  /** Past the no-progress deadline: when the requests in flight at that moment are due (0: not past it). */
  private graceUntil = 0;
  private locating = false;
  private relocateTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private readonly rateSamples: { at: number; bytes: number }[] = [];

  constructor(options: DownloadOptions) {
    super();
    // The hashes every chunk is checked against must be the ones the file id commits to.
    validateManifestContent(options.manifest);
    this.options = options;
    this.manifest = options.manifest;
    this.fileId = options.manifest.id;
    this.totalChunks = chunkCount(options.manifest);
    this.have = new Bitfield(this.totalChunks);
    this.logger = (options.logger ?? silentLogger()).child({ file: options.manifest.name });
    this.relocateIntervalMs = options.relocateIntervalMs ?? RELOCATE_INTERVAL_MS;
    this.noSourceTimeoutMs = options.noSourceTimeoutMs ?? NO_SOURCE_TIMEOUT_MS;
    this.chunkTimeoutMs = options.chunkTimeoutMs ?? CHUNK_REQUEST_TIMEOUT_MS;
    this.requestsPerSource =
      options.requestsPerSource === undefined
        ? null
        : clamp(options.requestsPerSource, 1, MAX_SERVED_REQUESTS_PER_CONNECTION);
    this.maxDepth = clamp(
      MAX_IN_FLIGHT_BYTES_PER_SOURCE / Math.max(options.manifest.chunkSize, 1),
      MIN_REQUESTS_PER_SOURCE,
      MAX_SERVED_REQUESTS_PER_CONNECTION,
    );
    this.maxSources = clamp(options.maxSources ?? MAX_SOURCES_PER_DOWNLOAD, 1, MAX_SOURCES_PER_DOWNLOAD);
  }

  /** Runs the download; resolves when the file is complete, verified and in place. Idempotent. */
  start(): Promise<DownloadResult> {
    if (!this.startPromise) {
      this.startPromise = new Promise<DownloadResult>((resolve, reject) => {
        this.settle = { resolve, reject };
      });
      if (this.finished) {
        this.settle?.reject(cancelledError(this.manifest));
      } else {
        this.startedAt = Date.now();
        this.lastProgressAt = this.startedAt;
        this.rateSamples.push({ at: this.startedAt, bytes: 0 });
        this.begin().catch((err: unknown) => this.fail(err));
      }
    }
    return this.startPromise;
  }

  /**
   * Stops the download for good: start() rejects with ERR_CANCELLED once the temp file and its state
   * are removed (a failed or stopped download keeps them for a resume; a cancelled one does not).
   */
  cancel(): void {
    void this.end(cancelledError(this.manifest), true);
  }

  /**
   * Stops the download, keeping its partial file and state for a later resume: start() rejects with
   * ERR_INTERRUPTED. Resolves once the state is saved and the file closed.
   */
  stop(): Promise<void> {
    const error = new SwarmError(
      'ERR_INTERRUPTED',
      `download of ${this.manifest.name} stopped; the partial download is kept for a resume`,
    );
    return this.end(error, false);
  }

  /**
   * Pauses the download: no new chunk is requested and no source connected; requests in flight may
   * still arrive (and are kept), and connections stay open. While paused the download does not time
   * out for want of sources. Returns false if it was already paused or is over.
   */
  pause(): boolean {
    if (this.paused || this.finished) return false;
    this.paused = true;
    this.logger.info({ verified: this.have.setCount }, 'download paused');
    // A pause may be long: what is verified so far is saved now rather than at the next chunk.
    this.partial
      ?.saveNow()
      .catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, 'cannot save state'));
    this.emit('progress', this.progress);
    return true;
  }

  /** Resumes a paused download. Returns false if it was not paused or is over. */
  resume(): boolean {
    if (!this.paused || this.finished) return false;
    this.paused = false;
    // The time spent paused does not count against the sources.
    this.noteProgress();
    this.logger.info({ verified: this.have.setCount }, 'download resumed');
    this.emit('progress', this.progress);
    this.pump();
    this.connectMore();
    return true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Every source connected during the download so far, with the verified bytes it supplied: the
   * live counterpart of DownloadResult.sources. Bounded like the sources themselves.
   */
  sourceStats(): SourceStats[] {
    return this.everConnected().map((s) => ({
      peerId: s.peerId,
      name: s.info.name,
      bytes: s.bytes,
      connected: s.client !== null,
      inFlight: s.inFlight.size,
      depth: s.depth,
      bytesPerSecond: Math.round(s.rate),
      choked: s.choked,
      badChunks: s.badChunks,
      banned: s.banned !== null,
    }));
  }

  /** Every source connected during the download so far, banned ones included. */
  private everConnected(): Source[] {
    return [...this.sources.values(), ...this.banned.values()].filter((s) => s.everConnected);
  }

  /** A verified chunk (from the partial file, or the finished file), or null. */
  async readChunk(index: number): Promise<Buffer | null> {
    if (!this.have.has(index)) return null;
    if (this.finalPath) return readFileChunk(this.finalPath, this.manifest, index).catch(() => null);
    return this.partial ? this.partial.read(index) : null;
  }

  get progress(): DownloadProgress {
    return {
      verifiedChunks: this.have.setCount,
      totalChunks: this.totalChunks,
      bytes: this.verifiedBytes,
      size: this.manifest.size,
      resumedBytes: this.resumedBytes,
      bytesPerSecond: this.rate(),
      sources: this.connectedSources().length,
      bannedSources: this.banned.size,
      paused: this.paused,
    };
  }

  // ---- Lifecycle -----------------------------------------------------------------------------------

  private async begin(): Promise<void> {
    // Resumes what an earlier run left in the state folder, hashing again whatever it claims.
    this.partialReady = PartialFile.create(this.options.stateDir, this.manifest, {
      logger: this.logger,
    }).then(
      (partial) => partial,
      (err: unknown) => {
        void this.fail(err);
        return null;
      },
    );
    const partial = await this.partialReady;
    if (!partial || this.finished) return; // fail() closes it
    this.partial = partial;
    this.adoptResumed(partial);
    this.logger.info(
      { size: this.manifest.size, chunks: this.totalChunks, resumed: this.have.setCount },
      'download started',
    );
    if (this.have.complete) {
      await this.complete();
      return;
    }
    this.relocateTimer = setInterval(() => this.relocateSafely(), this.relocateIntervalMs);
    this.armWatchdog();
    this.relocateSafely();
  }

  /** Chunks an earlier run left verified on disk count (and are offered) from the start. */
  private adoptResumed(partial: PartialFile): void {
    const { chunks, bytes } = partial.resumed;
    if (chunks === 0) return;
    for (const index of partial.have.indices()) this.have.set(index);
    this.verifiedBytes += bytes;
    this.resumedBytes = bytes;
    // The rate counts what arrives from now on; the time spent hashing is no source's fault.
    this.rateSamples.length = 0;
    this.rateSamples.push({ at: Date.now(), bytes: this.verifiedBytes });
    this.noteProgress();
    for (const index of partial.have.indices()) {
      try {
        this.options.onChunk?.(index, '');
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, 'onChunk callback threw');
      }
    }
    this.emit('resumed', chunks, bytes);
    this.emit('progress', this.progress);
  }

  private async complete(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopEverything();
    const finishing = this.finish();
    this.closing = finishing;
    await finishing;
  }

  /** Checks the whole file and moves it into place (see PartialFile.finalize). */
  private async finish(): Promise<void> {
    try {
      // The manifest's name came from the network: saved under a safe name derived from it.
      const name = safeFileName(this.manifest.name, fileIdHex(this.fileId));
      const finalPath = await this.partial!.finalize(this.options.dir, name);
      this.finalPath = finalPath;
      const seconds = (Date.now() - this.startedAt) / 1000;
      this.logger.info({ path: finalPath, seconds }, 'download complete');
      this.settle?.resolve({
        path: finalPath,
        name: path.basename(finalPath),
        size: this.manifest.size,
        seconds,
        resumedBytes: this.resumedBytes,
        sources: this.everConnected().map((s) => ({
          peerId: s.peerId,
          name: s.info.name,
          bytes: s.bytes,
          banned: s.banned !== null,
        })),
      });
    } catch (err) {
      if (err instanceof BadChunksError) await this.refetch(err.chunks);
      else this.settle?.reject(asError(err));
    }
  }

  /** The final check found chunks changed on disk since they were verified: they are fetched again. */
  private async refetch(bad: number[]): Promise<void> {
    for (const index of bad) {
      if (this.have.clear(index)) this.verifiedBytes -= chunkLength(this.manifest, index);
    }
    this.resumedBytes = Math.min(this.resumedBytes, this.verifiedBytes);
    this.finished = false;
    this.closing = null;
    const ended = this.endRequest;
    if (ended) {
      await this.fail(ended.error, ended.discard);
      return;
    }
    this.logger.warn({ chunks: bad.length }, 'fetching again the chunks that failed the final check');
    this.emit('progress', this.progress);
    this.orderStale = true;
    this.graceUntil = 0;
    this.noteProgress();
    this.relocateTimer = setInterval(() => this.relocateSafely(), this.relocateIntervalMs);
    this.armWatchdog();
    this.relocateSafely();
  }

  /** Ends the download on request (stop, cancel); while it is being finished, once that is over. */
  private end(error: Error, discard: boolean): Promise<void> {
    if (this.finished) {
      this.endRequest ??= { error, discard };
      return this.closing ?? Promise.resolve();
    }
    return this.fail(error, discard);
  }

  /** Ends the download; its partial file and state are kept for a resume unless `discard`. */
  private async fail(err: unknown, discard = false): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopEverything();
    const closing = this.closeOut(asError(err), discard);
    this.closing = closing;
    await closing;
  }

  private async closeOut(error: Error, discard: boolean): Promise<void> {
    const stopped = discard || errorCode(error) === 'ERR_INTERRUPTED';
    this.logger[stopped ? 'info' : 'warn'](
      { err: error.message, verified: this.have.setCount },
      'download ended',
    );
    try {
      const partial = this.partial ?? (await this.partialReady);
      if (discard) await partial?.abort();
      else await partial?.close();
    } catch (closeErr) {
      this.logger.warn({ err: errorMessage(closeErr) }, 'could not close the partial file');
    }
    this.settle?.reject(error);
  }

  private stopEverything(): void {
    if (this.relocateTimer) clearInterval(this.relocateTimer);
    if (this.relocateSoonTimer) clearTimeout(this.relocateSoonTimer);
    this.relocateSoonTimer = null;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.relocateTimer = null;
    this.watchdog = null;
    for (const source of this.sources.values()) {
      source.client?.close();
      source.client = null;
      source.inFlight.clear();
    }
    this.requested.clear();
  }

  /** Restarts the no-progress deadline; ends a grace period (its timer is set for the old one). */
  private noteProgress(): void {
    this.lastProgressAt = Date.now();
    if (this.graceUntil === 0 || !this.watchdog) return;
    this.graceUntil = 0;
    clearTimeout(this.watchdog);
    this.armWatchdog();
  }

  /** Checks progress when the no-progress deadline is due (or after `delayMs`). */
  private armWatchdog(delayMs?: number): void {
    const due = delayMs ?? this.lastProgressAt + this.noSourceTimeoutMs - Date.now();
    this.watchdog = setTimeout(
      () => {
        this.watchdog = null;
        this.checkProgress();
      },
      Math.max(due, 1),
    );
  }

  /**
   * Fails the download once no chunk has been verified for noSourceTimeoutMs and the requests in
   * flight at that moment have had until their deadline to deliver (see the top of this file).
   */
  private checkProgress(): void {
    if (this.finished) return;
    const now = Date.now();
    // A paused download has no sources in use by choice: that is not a reason to fail. Nor is waiting
    // for an upload slot at sources that have what we need, for a while (MAX_CHOKED_WAIT_MS).
    if (this.paused) this.lastProgressAt = now;
    if (this.waitingForSlot()) {
      this.chokedSince ||= now;
      if (now - this.chokedSince < MAX_CHOKED_WAIT_MS) this.lastProgressAt = now;
    } else {
      this.chokedSince = 0;
    }
    if (now < this.lastProgressAt + this.noSourceTimeoutMs) {
      this.graceUntil = 0;
      this.armWatchdog();
      return;
    }
    // Only the requests in flight now may still deliver in time; later ones do not move this.
    if (this.graceUntil === 0) this.graceUntil = Math.max(now, this.latestRequestDeadline());
    if (now < this.graceUntil) {
      this.armWatchdog(this.graceUntil - now);
      return;
    }
    // A chunk that arrived is being verified and written: its outcome decides.
    if (this.writing.size > 0) {
      this.armWatchdog(WRITE_POLL_MS);
      return;
    }
    const known = [...this.sources.values()].filter((s) => s.listed).length;
    void this.fail(
      new SwarmError(
        'ERR_NO_SOURCES',
        `no source delivered a chunk of ${this.manifest.name} in ${this.noSourceTimeoutMs} ms ` +
          `(${this.have.setCount} of ${this.totalChunks} chunks verified, ${known} sources known)`,
      ),
    );
  }

  /** True when every connected source that has a chunk we need is choking us (and there is one). */
  private waitingForSlot(): boolean {
    let choked = false;
    for (const source of this.sources.values()) {
      if (!source.client || !this.offersAnything(source)) continue;
      if (!source.choked) return false;
      choked = true;
    }
    return choked;
  }

  /** When the last of the requests in flight now is due (0 if none is in flight). */
  private latestRequestDeadline(): number {
    let latest = 0;
    for (const source of this.sources.values()) {
      for (const token of source.inFlight.values()) {
        latest = Math.max(latest, token.sentAt + this.chunkTimeoutMs);
      }
    }
    return latest;
  }

  // ---- Sources -----------------------------------------------------------------------------------

  /** Runs relocate(); a bug surfacing there (a throwing event listener, say) fails the download. */
  private relocateSafely(): void {
    this.relocate().catch((err: unknown) => this.fail(err));
  }

  /**
   * Asks for sources now rather than at the next interval, when nothing is in flight: every source
   * chokes us or has nothing we need (a newcomer to a swarm learns of the other newcomers this way).
   * At most once per RELOCATE_SOON_MS.
   */
  private relocateSoon(): void {
    if (this.relocateSoonTimer || this.finished || this.paused) return;
    const wait = Math.max(0, this.lastRelocateAt + RELOCATE_SOON_MS - Date.now());
    this.relocateSoonTimer = setTimeout(() => {
      this.relocateSoonTimer = null;
      if (!this.finished && this.requested.size === 0) this.relocateSafely();
    }, wait);
  }

  private async relocate(): Promise<void> {
    if (this.locating || this.finished) return;
    this.locating = true;
    this.lastRelocateAt = Date.now();
    try {
      const found = await this.options.findSources();
      if (this.finished) return;
      this.mergeSources(found);
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'finding sources failed; will retry');
    } finally {
      this.locating = false;
    }
    if (this.finished) return;
    this.pump();
    this.connectMore();
  }

  private mergeSources(found: SourceInfo[]): void {
    const listed = new Set<string>();
    for (const info of found.slice(0, MAX_LOCATE_PEERS)) {
      if (
        typeof info.peerId !== 'string' ||
        !(info.chunks instanceof Bitfield) ||
        info.chunks.size !== this.totalChunks
      ) {
        this.logger.warn(
          { peer: info.peerId },
          'source with a chunk map that does not fit this file; ignored',
        );
        continue;
      }
      if (listed.has(info.peerId)) continue;
      if (this.isBanned(info)) continue;
      let source = this.sources.get(info.peerId);
      if (!source) {
        if (this.sources.size >= MAX_KNOWN_SOURCES) continue;
        source = newSource(info);
        this.sources.set(info.peerId, source);
      }
      listed.add(info.peerId);
      source.info = info;
      source.chunks = new Bitfield(info.chunks.size, info.chunks.bytes);
      source.refused.clear();
      source.listed = true;
    }
    for (const [peerId, source] of this.sources) {
      if (listed.has(peerId)) continue;
      source.listed = false;
      const forgettable = !source.client && !source.connecting && !source.everConnected;
      if (forgettable) this.sources.delete(peerId);
    }
    this.orderStale = true;
  }

  /** Connects to more sources (in random order) while fewer than maxSources are connected or connecting. */
  private connectMore(): void {
    if (this.finished || this.paused) return;
    const now = Date.now();
    const candidates = shuffle(
      [...this.sources.values()].filter(
        (s) => !s.client && !s.connecting && s.listed && s.retryAt <= now && this.offersAnything(s),
      ),
    );
    for (const source of candidates) {
      if (this.busySources() >= this.maxSources && !this.makeRoom()) break;
      this.connect(source).catch((err: unknown) => this.fail(err));
    }
  }

  private busySources(): number {
    let busy = 0;
    for (const s of this.sources.values()) if (s.client || s.connecting) busy++;
    return busy;
  }

  /** At the limit: lets go of one connected source that has nothing for us. */
  private makeRoom(): boolean {
    for (const s of this.sources.values()) {
      if (s.client && s.inFlight.size === 0 && !this.offersAnything(s)) {
        this.closeSource(s, 'idle');
        return true;
      }
    }
    return false;
  }

  private async connect(source: Source): Promise<void> {
    if (source.client || source.connecting) return;
    source.connecting = true;
    const { host, port } = source.info;
    let client: PeerClient;
    try {
      client = await PeerClient.connect(host, port, {
        logger: this.logger,
        connectTimeoutMs: this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        requestTimeoutMs: this.chunkTimeoutMs,
        maxInFlight: this.requestsPerSource ?? this.maxDepth,
        // Our proven peer id lets the source credit what we upload to it (tit-for-tat); port 0: this
        // connection is not a place to connect back to.
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        ...(this.options.unencrypted ? { unencrypted: true } : {}),
        self: { name: this.options.self?.name ?? '', port: 0 },
        // Whoever answers at the address must be the peer the tracker or mesh named.
        expectedPeerId: /^[0-9a-f]{64}$/.test(source.peerId) ? Buffer.from(source.peerId, 'hex') : undefined,
        maxChunkSize: this.manifest.chunkSize,
        receiveLimiter: this.options.receiveLimiter,
      });
    } catch (err) {
      source.connecting = false;
      this.penalise(source);
      this.logger.debug(
        { peer: source.peerId, host, port, err: errorMessage(err) },
        'cannot connect to source',
      );
      return;
    }
    source.connecting = false;
    if (this.finished || source.banned || client.isClosed) {
      client.close();
      return;
    }
    source.client = client;
    source.everConnected = true;
    source.closingFor = null;
    source.choked = false;
    // Never more than the connection admits: big chunks allow fewer requests (maxDepth).
    source.depth = this.requestsPerSource ?? Math.min(REQUESTS_PER_SOURCE, this.maxDepth);
    source.rate = 0;
    source.windowStart = Date.now();
    source.windowBytes = 0;
    client.on('close', (reason) => this.onSourceClosed(source, client, reason));
    client.on('offers', (offers) => this.onOffers(source, client, offers));
    client.on('have', (fileId, index) => this.onHave(source, client, fileId, index));
    client.on('choke', () => {
      if (source.client === client) source.choked = true;
    });
    client.on('unchoke', () => {
      if (source.client !== client) return;
      source.choked = false;
      this.pump();
    });
    this.logger.debug({ peer: source.peerId, host, port }, 'source connected');
    this.emit('source', source.peerId, source.info.name);
    this.pump();
  }

  /** Closes a source's connection ourselves, recording why; onSourceClosed does the rest. */
  private closeSource(source: Source, reason: SourceLostReason): void {
    if (!source.client) return;
    source.closingFor = reason;
    source.client.close();
  }

  private onSourceClosed(source: Source, client: PeerClient, reason: Error | undefined): void {
    if (source.client !== client) return;
    source.client = null;
    for (const index of source.inFlight.keys()) this.removeHolder(index, source);
    source.inFlight.clear();
    if (this.finished) return;
    let why = source.closingFor ?? 'disconnected';
    if (!source.closingFor && reason && errorCode(reason) === 'ERR_PROTOCOL') {
      // Unrequested data, a mislabelled PIECE, a malformed frame: no honest peer sends these.
      why = 'protocol';
      this.ban(source, 'protocol', errorMessage(reason));
    }
    source.closingFor = null;
    if (why !== 'idle') this.penalise(source);
    this.logger.info(
      { peer: source.peerId, reason: why, detail: reason && errorMessage(reason) },
      'source lost',
    );
    this.emit('source-lost', source.peerId, why);
    this.pump();
    if (why !== 'idle') this.connectMore(); // (an idle source was closed by connectMore itself)
  }

  /** Delays the next connection attempt: one relocate interval, doubling per failure. */
  private penalise(source: Source): void {
    source.failures++;
    const intervals = Math.min(2 ** (source.failures - 1), MAX_BACKOFF_INTERVALS);
    source.retryAt = Date.now() + intervals * this.relocateIntervalMs;
  }

  /** True if the source holds a chunk we still miss (and has not refused it). */
  private offersAnything(source: Source): boolean {
    if (this.orderStale) this.rebuildOrder();
    for (let k = this.orderStart; k < this.order.length; k++) {
      const index = this.order[k]!;
      if (this.have.has(index) || !source.chunks.has(index)) continue;
      if (!source.refused.has(index) && !source.failedChunks.has(index)) return true;
    }
    return false;
  }

  private connectedSources(): Source[] {
    return [...this.sources.values()].filter((s) => s.client !== null);
  }

  // ---- Scheduling --------------------------------------------------------------------------------

  /**
   * Every missing chunk, rarest first across the sources we know of (the tracker's view of the whole
   * swarm, kept current by OFFERS and HAVE), ties in random order; chunks nobody offers come last.
   */
  private rebuildOrder(): void {
    const availability = new Uint16Array(this.totalChunks);
    for (const source of this.sources.values()) {
      if (!source.listed && !source.client) continue; // gone, as far as we know
      for (const index of source.chunks.indices()) availability[index]!++;
    }
    const missing: number[] = [];
    for (let i = 0; i < this.totalChunks; i++) if (!this.have.has(i)) missing.push(i);
    shuffle(missing);
    // Stable: ties keep the random order. Unavailable chunks sort last, where a HAVE can find them.
    missing.sort((a, b) => (availability[a]! || 0x10000) - (availability[b]! || 0x10000));
    this.order = missing;
    this.orderStart = 0;
    this.orderStale = false;
    this.availabilityDirty = false;
    this.orderBuiltAt = Date.now();
  }

  /** Coalesces the pumps that a burst of events (HAVE, OFFERS) asks for into one. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Fills every connected, unchoked source up to its pipeline depth, while the write queue has room. */
  private pump(): void {
    if (this.finished || this.paused || !this.partial) return;
    const now = Date.now();
    if (this.orderStale || (this.availabilityDirty && now - this.orderBuiltAt >= AVAILABILITY_REFRESH_MS)) {
      this.rebuildOrder();
    }
    for (const source of this.sources.values()) {
      if (!source.client || source.client.isClosed || source.choked) continue;
      while (source.inFlight.size < source.depth && this.writingBytes < MAX_WRITE_QUEUE_BYTES) {
        const index = this.pickChunk(source);
        if (index === undefined) break;
        this.request(source, index);
      }
    }
    if (this.requested.size === 0 && this.writing.size === 0) this.relocateSoon();
  }

  private pickChunk(source: Source): number | undefined {
    // Bit tests first: in a swarm most chunks fail the first test, and map lookups cost more.
    const usable = (index: number): boolean =>
      source.chunks.has(index) &&
      !this.have.has(index) &&
      !this.requested.has(index) &&
      !this.writing.has(index) &&
      !source.refused.has(index) &&
      !source.failedChunks.has(index);
    while (this.orderStart < this.order.length && this.have.has(this.order[this.orderStart]!)) {
      this.orderStart++; // verified chunks at the front are never looked at again
    }
    const count = this.order.length - this.orderStart;
    // The first few chunks at random: rarest first would send every newcomer to the same few holders.
    const offset = this.have.setCount < RANDOM_FIRST_CHUNKS ? Math.floor(Math.random() * count) : 0;
    for (let k = 0; k < count; k++) {
      const index = this.order[this.orderStart + ((k + offset) % count)]!;
      if (usable(index)) return index;
    }
    if (!this.inEndGame()) return undefined;
    for (const [index, holders] of this.requested) {
      if (holders.size !== 1 || holders.has(source) || this.writing.has(index)) continue;
      if (source.chunks.has(index) && !source.refused.has(index) && !source.failedChunks.has(index))
        return index;
    }
    return undefined;
  }

  /** A source's OFFERS: what it holds now, replacing what we knew. */
  private onOffers(source: Source, client: PeerClient, offers: Offer[]): void {
    if (source.client !== client) return;
    const offer = offers.find((o) => o.fileId.equals(this.fileId));
    if (!offer || offer.chunks.size !== this.totalChunks) return;
    source.chunks = new Bitfield(offer.chunks.size, offer.chunks.bytes);
    source.refused.clear();
    this.availabilityDirty = true;
    this.schedulePump();
  }

  /** A source's HAVE: it verified one more chunk, which we may ask it for at once. */
  private onHave(source: Source, client: PeerClient, fileId: Buffer, index: number): void {
    if (source.client !== client || !fileId.equals(this.fileId)) return;
    if (!Number.isInteger(index) || index < 0 || index >= this.totalChunks || source.chunks.has(index))
      return;
    source.chunks.set(index);
    source.refused.delete(index);
    if (this.have.has(index)) return;
    this.availabilityDirty = true;
    if (!source.choked && source.inFlight.size < source.depth) this.schedulePump();
  }

  /**
   * Learns a source's rate and quickest answer from a chunk that arrived, and from them its
   * pipeline depth: enough requests to cover a round trip plus REQUEST_QUEUE_TARGET_MS at that rate.
   */
  private measure(source: Source, token: RequestToken, bytes: number): void {
    const now = Date.now();
    source.minLatencyMs = Math.min(source.minLatencyMs, now - token.sentAt);
    source.windowBytes += bytes;
    const elapsed = now - source.windowStart;
    if (elapsed < SOURCE_RATE_WINDOW_MS) return;
    const sample = (source.windowBytes * 1000) / elapsed;
    source.rate = source.rate === 0 ? sample : 0.7 * source.rate + 0.3 * sample;
    source.windowStart = now;
    source.windowBytes = 0;
    if (this.requestsPerSource !== null) return;
    const seconds = (source.minLatencyMs + REQUEST_QUEUE_TARGET_MS) / 1000;
    source.depth = clamp(
      Math.ceil((source.rate * seconds) / this.manifest.chunkSize),
      MIN_REQUESTS_PER_SOURCE,
      this.maxDepth,
    );
  }

  /** True when every missing chunk is already requested or being written. */
  private inEndGame(): boolean {
    let busy = this.writing.size;
    for (const index of this.requested.keys()) if (!this.writing.has(index)) busy++;
    return busy >= this.totalChunks - this.have.setCount;
  }

  private request(source: Source, index: number): void {
    const client = source.client!;
    const token: RequestToken = { sentAt: Date.now() };
    source.inFlight.set(index, token);
    let holders = this.requested.get(index);
    if (!holders) this.requested.set(index, (holders = new Set()));
    holders.add(source);
    client
      .requestChunk(this.fileId, index)
      .then(
        (data) => this.onChunkData(source, index, token, data),
        (err: unknown) => this.onRequestFailed(source, index, token, err),
      )
      .catch((err: unknown) => this.fail(err));
  }

  private removeHolder(index: number, source: Source): void {
    const holders = this.requested.get(index);
    if (!holders) return;
    holders.delete(source);
    if (holders.size === 0) this.requested.delete(index);
  }

  private onRequestFailed(source: Source, index: number, token: RequestToken, err: unknown): void {
    if (source.inFlight.get(index) !== token) return; // cancelled by us, or the source already closed
    source.inFlight.delete(index);
    this.removeHolder(index, source);
    if (this.finished) return;
    if (errorCode(err) === 'ERR_CHOKED') {
      // Not now rather than not at all: the chunk goes to another source, and this one gets requests
      // again when it unchokes us (which may already have been handled: ask the client).
      source.choked = source.client?.choked ?? source.choked;
    } else if (err instanceof RemoteError) {
      // It does not have the chunk after all (its tracker entry was stale): ask someone else.
      this.logger.debug({ peer: source.peerId, index, code: err.code }, 'source refused a chunk');
      source.refused.add(index);
    } else if (errorCode(err) === 'ERR_TIMEOUT') {
      this.logger.info({ peer: source.peerId, index }, 'chunk request timed out');
      this.closeSource(source, 'timeout');
    } else {
      this.logger.debug({ peer: source.peerId, index, err: errorMessage(err) }, 'chunk request failed');
    }
    this.pump();
  }

  private async onChunkData(source: Source, index: number, token: RequestToken, data: Buffer): Promise<void> {
    if (source.inFlight.get(index) === token) {
      source.inFlight.delete(index);
      this.removeHolder(index, source);
    }
    if (this.finished) return;
    this.measure(source, token, data.length);
    if (this.have.has(index) || this.writing.has(index)) {
      // A duplicate from the end game: the other copy won. (A copy is only ever being written once it
      // has passed its check, which PartialFile.write makes before it first yields, so a bad copy never
      // crowds out a good one.)
      releaseBuffer(data);
      this.pump();
      return;
    }
    this.writing.add(index);
    this.writingBytes += data.length;
    try {
      if (data.length !== chunkLength(this.manifest, index)) {
        releaseBuffer(data);
        throw new SwarmError('ERR_CHUNK_HASH_MISMATCH', `chunk ${index} has ${data.length} bytes`);
      }
      await this.partial!.write(index, data); // verifies length and SHA-256 first
    } catch (err) {
      this.writing.delete(index);
      this.writingBytes -= data.length;
      if (this.finished) return;
      if (errorCode(err) === 'ERR_CHUNK_HASH_MISMATCH') {
        this.blame(source, index, errorMessage(err));
        this.pump();
      } else {
        // A full or unwritable disk says so itself, and where; anything else is an I/O error.
        const code = errorCode(err);
        void this.fail(
          code === 'ERR_DISK_FULL' || code === 'ERR_NOT_WRITABLE'
            ? err
            : new SwarmError('ERR_IO', `cannot write ${this.manifest.name}: ${errorMessage(err)}`, {
                cause: err,
              }),
        );
      }
      return;
    }
    this.writing.delete(index);
    this.writingBytes -= data.length;
    if (this.finished) return;
    this.accept(source, index, data.length);
  }

  /** A verified, written chunk: record it, cancel any duplicate request, report, go on or finish. */
  private accept(source: Source, index: number, length: number): void {
    this.have.set(index);
    this.noteProgress();
    this.verifiedBytes += length;
    source.bytes += length;
    source.failures = 0;
    for (const other of this.requested.get(index) ?? []) {
      other.inFlight.delete(index);
      other.client?.cancel(this.fileId, index);
    }
    this.requested.delete(index);
    this.sampleRate();
    try {
      this.options.onChunk?.(index, source.peerId);
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'onChunk callback threw');
    }
    this.emit('progress', this.progress);
    if (this.have.complete) void this.complete();
    else this.pump();
  }

  /**
   * A chunk from `source` failed verification: its bytes were discarded, the chunk goes to another
   * source (never to this one again), and the source is banned after too many.
   */
  private blame(source: Source, index: number, why: string): void {
    source.badChunks++;
    if (source.failedChunks.size < MAX_BAD_CHUNKS_PER_SOURCE) source.failedChunks.add(index);
    this.logger.warn(
      {
        peer: source.peerId,
        name: source.info.name,
        address: addressOf(source.info),
        index,
        bad: source.badChunks,
        err: why,
      },
      'chunk failed verification; discarded, to be fetched from another source',
    );
    if (source.badChunks < MAX_BAD_CHUNKS_PER_SOURCE || source.banned) return;
    this.ban(source, 'bad-chunks', `${source.badChunks} chunks failed verification`);
    if (source.client) this.closeSource(source, 'bad-chunks');
    else this.emit('source-lost', source.peerId, 'bad-chunks');
  }

  /**
   * Bans a source for the rest of the download, by peer id and by address: it is no longer used nor
   * connected again, and discovery listing it again (under either) does not bring it back. The caller
   * closes its connection.
   */
  private ban(source: Source, reason: BanReason, detail: string): void {
    if (source.banned) return;
    source.banned = reason;
    this.sources.delete(source.peerId);
    this.banned.set(source.peerId, source);
    const address = addressOf(source.info);
    this.bannedAddresses.set(addressKey(source.info), source.peerId);
    if (this.banned.size > MAX_BANNED_SOURCES_PER_DOWNLOAD) {
      const [oldestId, oldest] = this.banned.entries().next().value!;
      this.banned.delete(oldestId);
      const key = addressKey(oldest.info);
      if (this.bannedAddresses.get(key) === oldestId) this.bannedAddresses.delete(key);
    }
    this.orderStale = true;
    const ban: SourceBan = { peerId: source.peerId, name: source.info.name, address, reason, detail };
    this.logger.warn(
      { peer: ban.peerId, name: ban.name, address, reason, detail },
      'source banned for the rest of the download',
    );
    this.emit('source-banned', ban);
  }

  /** True if this listing names a banned peer, or a banned address under any peer id. */
  private isBanned(info: SourceInfo): boolean {
    return this.banned.has(info.peerId) || this.bannedAddresses.has(addressKey(info));
  }

  // ---- Rate --------------------------------------------------------------------------------------

  /** Samples of (time, verified bytes) at least RATE_SAMPLE_MS apart, covering the last window. */
  private sampleRate(): void {
    const now = Date.now();
    const last = this.rateSamples[this.rateSamples.length - 1];
    if (!last || now - last.at >= RATE_SAMPLE_MS)
      this.rateSamples.push({ at: now, bytes: this.verifiedBytes });
    this.dropOldSamples(now);
  }

  /** Keeps one sample at or before the window's start as the baseline. */
  private dropOldSamples(now: number): void {
    while (this.rateSamples.length > 2 && this.rateSamples[1]!.at <= now - RATE_WINDOW_MS)
      this.rateSamples.shift();
  }

  private rate(): number {
    const now = Date.now();
    this.dropOldSamples(now);
    const base = this.rateSamples[0];
    if (!base) return 0;
    const seconds = Math.max((now - base.at) / 1000, 0.001);
    return Math.round((this.verifiedBytes - base.bytes) / seconds);
  }
}

function cancelledError(manifest: Manifest): SwarmError {
  return new SwarmError('ERR_CANCELLED', `download of ${manifest.name} cancelled`);
}

function newSource(info: SourceInfo): Source {
  return {
    peerId: info.peerId,
    info,
    chunks: info.chunks,
    refused: new Set(),
    client: null,
    connecting: false,
    everConnected: false,
    inFlight: new Map(),
    bytes: 0,
    badChunks: 0,
    failures: 0,
    retryAt: 0,
    failedChunks: new Set(),
    banned: null,
    listed: true,
    closingFor: null,
    choked: false,
    depth: REQUESTS_PER_SOURCE,
    rate: 0,
    windowStart: 0,
    windowBytes: 0,
    minLatencyMs: Infinity,
  };
}

/** host:port of a source, for people. */
function addressOf(info: Pick<SourceInfo, 'host' | 'port'>): string {
  return formatEndpoint(info);
}

/** host:port of a source, as a ban is keyed: one address however it is spelt (case, IPv4-mapped IPv6). */
function addressKey(info: Pick<SourceInfo, 'host' | 'port'>): string {
  const host = info.host.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return formatEndpoint({ host, port: info.port });
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(Math.floor(value), min), max);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
