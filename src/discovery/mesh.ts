/**
 * Discovery without a tracker: a connector that keeps a control connection (a PeerClient) to each
 * known host, and the view of what those peers offer.
 *
 * - Known hosts come from several origins (the command line, a hosts file, peer exchange, LAN
 *   offers, peers that connected to us). A host stays known while any origin lists it.
 * - The connector dials each known host, and again when it goes away and comes back: a host that
 *   drops is retried after about reconnectMinMs, one that stays away ever less often (exponential
 *   back-off with jitter, up to reconnectMaxMs).
 * - A link is a peer once its INFO arrives. An address whose INFO carries our own peer id is
 *   ourselves: remembered, never dialled again. An address leading to a peer already linked is an
 *   alias of it: dialled again only while that peer is down. So there is one link per peer id.
 * - PEERS messages add hosts (origin 'pex').
 * - Everything is bounded: known hosts (maxHosts; hosts a person configured are always kept),
 *   concurrent links (maxConnections), and new connection attempts per second overall (a token
 *   bucket), so a lying peer cannot make us dial a storm of addresses.
 */
import { EventEmitter } from 'node:events';
import { formatEndpoint, type Endpoint } from '../address.js';
import {
  CONNECT_TIMEOUT_MS,
  MAX_HOST_BYTES,
  MAX_KNOWN_HOSTS,
  MAX_MESH_CONNECTIONS,
  MESH_DIALS_PER_SECOND,
  MESH_RECONNECT_MAX_MS,
  MESH_RECONNECT_MIN_MS,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { SourceInfo } from '../peer/download.js';
import { PeerClient } from '../peer/peer-client.js';
import { fileIdHex, type Manifest } from '../storage/manifest.js';
import type { Offer, PeerInfo } from '../wire/peer-messages.js';
import type { FileSummary } from '../wire/tracker-messages.js';
import { Backoff, TokenBucket } from './backoff.js';
import { catalogOf, sourcesOf } from './mesh-catalog.js';
import { MeshLink } from './mesh-link.js';
import type { Credentials } from '../transport/credentials.js';

export interface PeerMeshOptions {
  /** Who we are: sent in INFO, and how we recognise a link to ourselves. Port 0: we do not serve. */
  self: { peerId: Buffer; name: string; port: number };
  /** Our identity for TLS (and swarm key); a throw-away one if not given (tests). */
  credentials?: Credentials;
  logger?: Logger;
  /** First delay before reconnecting to a host. Default MESH_RECONNECT_MIN_MS (1 s). */
  reconnectMinMs?: number;
  /** Longest delay between attempts to a host that stays away. Default MESH_RECONNECT_MAX_MS (30 s). */
  reconnectMaxMs?: number;
  /** Known addresses remembered; extra pex/lan/inbound ones are dropped. Default MAX_KNOWN_HOSTS. */
  maxHosts?: number;
  /** Links (connected or connecting) at once. Default MAX_MESH_CONNECTIONS. */
  maxConnections?: number;
  /** Deadline for TCP connect, then the handshake, then the peer's INFO. Default CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** New connection attempts per second, overall. Default MESH_DIALS_PER_SECOND. */
  dialsPerSecond?: number;
}

/** Where a known host came from. 'static' and 'file' are a person's choice and always kept. */
export type HostOrigin = 'static' | 'file' | 'pex' | 'lan' | 'inbound';

/** A connected peer and what it offers (a live view, updated by its OFFERS and HAVE). */
export interface MeshPeer {
  /** Peer id, hex. */
  peerId: string;
  name: string;
  /** The address we reach it at (where it serves). */
  host: string;
  port: number;
  /** By file id (hex). */
  offers: ReadonlyMap<string, Offer>;
}

export interface KnownHost {
  host: string;
  port: number;
  origins: HostOrigin[];
  /** A peer is linked through this address now. */
  connected: boolean;
}

export interface PeerMeshEvents {
  'peer-up': [peer: MeshPeer];
  'peer-down': [peer: MeshPeer];
  /** What a peer offers changed (OFFERS, or a HAVE for a chunk it did not have). */
  offers: [peer: MeshPeer];
}

const PINNED_ORIGINS: ReadonlySet<HostOrigin> = new Set<HostOrigin>(['static', 'file']);
/** After a peer's INFO, how long settled() waits for its OFFERS and PEERS if they do not come. */
const GREETING_GRACE_MS = 1_000;
/** A dynamic host that failed this many times in a row may be forgotten to make room for a new one. */
const EVICTABLE_FAILURES = 2;

interface HostEntry {
  key: string;
  host: string;
  port: number;
  origins: Set<HostOrigin>;
  backoff: Backoff;
  /** Not dialled before this time (performance.now()). */
  retryAt: number;
  connecting: boolean;
  link: MeshLink | null;
  /** Set while this entry's link is the live link of a peer. */
  peer: MeshPeer | null;
  /** One attempt has run its course: greeted, failed, or found to be ourselves or an alias. */
  tried: boolean;
  /** This address is ourselves. */
  self: boolean;
  /** This address leads to this peer (id hex), linked through another address. */
  aliasOf: string | null;
}

/**
 * Keeps connected to the known hosts and tells what their peers offer. See the file header; the
 * connector runs in the background from construction until close().
 */
export class PeerMesh extends EventEmitter<PeerMeshEvents> {
  private readonly self: PeerMeshOptions['self'];
  private readonly credentials: Credentials | null;
  private readonly logger: Logger;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly maxHosts: number;
  private readonly maxConnections: number;
  private readonly connectTimeoutMs: number;
  private readonly dials: TokenBucket;
  /** By formatted address. */
  private readonly hosts = new Map<string, HostEntry>();
  /** Peer id (hex) → the entry whose link is that peer's. */
  private readonly live = new Map<string, HostEntry>();
  private readonly settleWaiters = new Set<() => void>();
  private readonly ticker: NodeJS.Timeout;
  private pumpQueued = false;
  private attempts = 0;
  private closed = false;

  constructor(options: PeerMeshOptions) {
    super();
    this.self = options.self;
    this.credentials = options.credentials ?? null;
    this.logger = (options.logger ?? silentLogger()).child({ component: 'mesh' });
    this.minMs = options.reconnectMinMs ?? MESH_RECONNECT_MIN_MS;
    this.maxMs = Math.max(this.minMs, options.reconnectMaxMs ?? MESH_RECONNECT_MAX_MS);
    this.maxHosts = options.maxHosts ?? MAX_KNOWN_HOSTS;
    this.maxConnections = options.maxConnections ?? MAX_MESH_CONNECTIONS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.dials = new TokenBucket(options.dialsPerSecond ?? MESH_DIALS_PER_SECOND);
    // The connector's loop: due hosts are dialled on each tick (and at once when one is added).
    this.ticker = setInterval(() => this.pump(), Math.max(10, Math.min(100, Math.floor(this.minMs / 2))));
    this.ticker.unref();
  }

  /** Connection attempts made so far (for tests and status). */
  get dialAttempts(): number {
    return this.attempts;
  }

  /** Adds a known host for `origin`; idempotent. It is dialled, and kept dialled, in the background. */
  addHost(endpoint: Endpoint, origin: HostOrigin): void {
    if (this.closed) return;
    const problem = endpointProblem(endpoint);
    if (problem) {
      // A person's typo deserves a warning; a peer's bad address only a note.
      const level = PINNED_ORIGINS.has(origin) ? 'warn' : 'debug';
      this.logger[level]({ host: endpoint.host, port: endpoint.port, origin, problem }, 'host ignored');
      return;
    }
    const host = endpoint.host.toLowerCase();
    const key = formatEndpoint({ host, port: endpoint.port });
    const known = this.hosts.get(key);
    if (known) {
      known.origins.add(origin);
      return;
    }
    if (!PINNED_ORIGINS.has(origin) && this.hosts.size >= this.maxHosts && !this.evictOne()) {
      this.logger.debug({ host: key, origin, limit: this.maxHosts }, 'known hosts full: host dropped');
      return;
    }
    this.hosts.set(key, {
      key,
      host,
      port: endpoint.port,
      origins: new Set([origin]),
      backoff: new Backoff(this.minMs, this.maxMs),
      retryAt: 0,
      connecting: false,
      link: null,
      peer: null,
      tried: false,
      self: false,
      aliasOf: null,
    });
    this.pumpSoon();
  }

  /** Forgets `endpoint` for `origin`; with no origin left, it is forgotten and its link closed. */
  removeHost(endpoint: Endpoint, origin: HostOrigin): void {
    const key = formatEndpoint({ host: endpoint.host.toLowerCase(), port: endpoint.port });
    const entry = this.hosts.get(key);
    if (!entry) return;
    entry.origins.delete(origin);
    if (entry.origins.size > 0) return;
    this.hosts.delete(key);
    entry.link?.close();
    this.checkSettled();
  }

  /** Every known address, with where it came from and whether a peer is linked through it now. */
  knownHosts(): KnownHost[] {
    return [...this.hosts.values()].map((e) => ({
      host: e.host,
      port: e.port,
      origins: [...e.origins],
      connected: e.peer !== null,
    }));
  }

  /** Connected peers (their INFO received), with what they offer now. */
  peers(): MeshPeer[] {
    return [...this.live.values()].map((e) => e.peer!);
  }

  /** The files connected peers offer, merged by id, whose name contains `query` (case-insensitive). */
  catalog(query = ''): FileSummary[] {
    return catalogOf(this.peers(), query);
  }

  /** Connected peers holding chunks of `fileId`, with a copy of which chunks. */
  sources(fileId: Buffer): SourceInfo[] {
    return sourcesOf(this.peers(), fileId);
  }

  /**
   * The manifest of `fileId`, asked of the peers that offer it (those with the whole file first), one
   * after another. Each answer is validated against the id; a peer that lies is logged and skipped.
   * ERR_NOT_FOUND if none gives a good one.
   */
  async fetchManifest(fileId: Buffer): Promise<Manifest> {
    const key = fileIdHex(fileId);
    const holders = [...this.live.values()]
      .filter((e) => e.peer!.offers.has(key))
      .sort((a, b) => completeness(b, key) - completeness(a, key));
    for (const entry of holders) {
      const { link, peer } = entry;
      if (!link || !peer || link.client.isClosed) continue;
      try {
        return await link.client.getManifest(fileId);
      } catch (err) {
        const context = { peer: peer.peerId, host: entry.key, file: key, err: errorMessage(err) };
        if (errorCode(err) === 'ERR_BAD_MANIFEST') {
          this.logger.warn(context, 'peer sent a false manifest; asking another');
        } else {
          this.logger.debug(context, 'peer could not give a manifest');
        }
      }
    }
    throw new SwarmError('ERR_NOT_FOUND', `no connected peer could give the manifest of ${key.slice(0, 12)}`);
  }

  /**
   * Resolves once every known host (including any learned while waiting) has been tried at least
   * once: linked and greeted (its INFO, OFFERS and PEERS in), or failed. Never waits past timeoutMs.
   */
  settled(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.allTried()) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.settleWaiters.delete(check);
        resolve();
      };
      const check = (): void => {
        if (this.closed || this.allTried()) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.settleWaiters.add(check);
    });
  }

  /** Closes every link and stops the connector. Emits nothing more. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    for (const entry of this.hosts.values()) entry.link?.close();
    this.hosts.clear();
    this.live.clear();
    for (const check of [...this.settleWaiters]) check();
  }

  // ---- The connector -----------------------------------------------------------------------------

  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Dials the hosts that are due, configured ones first, within the link and rate bounds. */
  private pump(): void {
    if (this.closed) return;
    const now = performance.now();
    let busy = 0;
    for (const entry of this.hosts.values()) if (entry.link || entry.connecting) busy++;
    for (const pinned of [true, false]) {
      for (const entry of this.hosts.values()) {
        if (busy >= this.maxConnections) return;
        if (isPinned(entry) !== pinned || !this.isDue(entry, now)) continue;
        if (!this.dials.tryTake()) return;
        busy++;
        void this.dial(entry);
      }
    }
  }

  private isDue(entry: HostEntry, now: number): boolean {
    if (entry.link || entry.connecting || entry.self || entry.retryAt > now) return false;
    return !(entry.aliasOf && this.live.has(entry.aliasOf));
  }

  private async dial(entry: HostEntry): Promise<void> {
    entry.connecting = true;
    this.attempts++;
    let client: PeerClient;
    try {
      client = await PeerClient.connect(entry.host, entry.port, {
        logger: this.logger,
        connectTimeoutMs: this.connectTimeoutMs,
        ...(this.credentials ? { credentials: this.credentials } : {}),
        self: { name: this.self.name, port: this.self.port },
      });
    } catch (err) {
      entry.connecting = false;
      if (!this.isCurrent(entry)) return;
      entry.retryAt = performance.now() + entry.backoff.fail();
      this.logger.debug(
        { host: entry.key, code: errorCode(err), failures: entry.backoff.failureCount },
        'cannot reach known host',
      );
      this.markTried(entry);
      return;
    }
    entry.connecting = false;
    if (!this.isCurrent(entry)) {
      client.close();
      return;
    }
    const link = new MeshLink(client, {
      infoTimeoutMs: this.connectTimeoutMs,
      greetingGraceMs: GREETING_GRACE_MS,
    });
    entry.link = link;
    link.on('info', (info) => this.identify(entry, link, info));
    link.on('offers', () => {
      if (entry.peer && entry.link === link) this.emit('offers', entry.peer);
    });
    link.on('peers', (peers) => {
      if (entry.peer && entry.link === link) for (const peer of peers) this.addHost(peer, 'pex');
    });
    link.on('greeted', () => {
      this.markTried(entry);
      // Announced only now, so that whoever hears of the peer can already see what it offers.
      if (entry.peer && entry.link === link) this.emit('peer-up', entry.peer);
    });
    link.on('close', (reason) => this.unlink(entry, link, reason));
  }

  /** The link's INFO arrived: ourselves, an alias of a linked peer, or a new peer. */
  private identify(entry: HostEntry, link: MeshLink, info: PeerInfo): void {
    if (entry.link !== link || this.closed) return;
    const peerId = info.peerId.toString('hex');
    if (info.peerId.equals(this.self.peerId)) {
      entry.self = true;
      this.logger.debug({ host: entry.key }, 'this address is ourselves: not dialled again');
      link.close();
      return;
    }
    if (this.live.has(peerId)) {
      entry.aliasOf = peerId;
      this.logger.debug({ host: entry.key, peer: peerId }, 'another address of a linked peer');
      link.close();
      return;
    }
    entry.aliasOf = null;
    entry.backoff.reset();
    const peer: MeshPeer = {
      peerId,
      name: info.name,
      host: entry.host,
      port: entry.port,
      offers: link.offers,
    };
    entry.peer = peer;
    this.live.set(peerId, entry);
    this.logger.info({ host: entry.key, peer: peerId, name: info.name }, 'peer connected');
  }

  private unlink(entry: HostEntry, link: MeshLink, reason: Error | undefined): void {
    if (entry.link !== link) return;
    entry.link = null;
    const peer = entry.peer;
    entry.peer = null;
    if (peer && this.live.get(peer.peerId) === entry) this.live.delete(peer.peerId);
    if (this.closed) return;
    const context = { host: entry.key, peer: peer?.peerId, err: reason && errorMessage(reason) };
    if (reason && errorCode(reason) === 'ERR_PROTOCOL')
      this.logger.warn(context, 'peer sent bad input: link closed');
    else this.logger.debug(context, 'link closed');
    // A peer that was up (or found elsewhere) is retried soon; a host that never identified backs off.
    const delay = peer || entry.aliasOf ? entry.backoff.reset() : entry.backoff.fail();
    entry.retryAt = performance.now() + delay;
    this.markTried(entry);
    if (peer) {
      this.logger.info({ host: entry.key, peer: peer.peerId }, 'peer disconnected');
      // 'peer-down' pairs with 'peer-up', which waits for the link's greeting.
      if (link.isGreeted) this.emit('peer-down', peer);
    }
    this.pumpSoon();
  }

  /** True while `entry` is still the known host of its address and the mesh runs. */
  private isCurrent(entry: HostEntry): boolean {
    return !this.closed && this.hosts.get(entry.key) === entry;
  }

  /** Makes room for a new dynamic host by forgetting the one that failed most (if any failed enough). */
  private evictOne(): boolean {
    let worst: HostEntry | null = null;
    for (const entry of this.hosts.values()) {
      if (isPinned(entry) || entry.link || entry.connecting) continue;
      const failures = entry.backoff.failureCount;
      if (failures >= EVICTABLE_FAILURES && (!worst || failures > worst.backoff.failureCount)) worst = entry;
    }
    if (!worst) return false;
    this.hosts.delete(worst.key);
    this.logger.debug({ host: worst.key }, 'unreachable host forgotten to make room');
    return true;
  }

  // ---- settled() ---------------------------------------------------------------------------------

  private markTried(entry: HostEntry): void {
    if (entry.tried) return;
    entry.tried = true;
    this.checkSettled();
  }

  private checkSettled(): void {
    for (const check of [...this.settleWaiters]) check();
  }

  private allTried(): boolean {
    for (const entry of this.hosts.values()) if (!entry.tried) return false;
    return true;
  }
}

function isPinned(entry: HostEntry): boolean {
  for (const origin of entry.origins) if (PINNED_ORIGINS.has(origin)) return true;
  return false;
}

/** 1 for a peer holding the whole file, 0 otherwise: the order in which manifests are asked for. */
function completeness(entry: HostEntry, fileKey: string): number {
  return entry.peer?.offers.get(fileKey)?.chunks.complete ? 1 : 0;
}

/** Why an address cannot be dialled, or null if it can. */
function endpointProblem({ host, port }: Endpoint): string | null {
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) return `port ${port} out of range`;
  if (!host || Buffer.byteLength(host, 'utf8') > MAX_HOST_BYTES) return 'empty or over-long host';
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) return 'not a host name or address';
  if (host === '0.0.0.0' || host === '::') return 'an unspecified address';
  return null;
}
