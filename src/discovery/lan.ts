/**
 * LAN discovery: every peer announces what it shares in a small UDP datagram (a LAN offer, see
 * src/wire/lan-offer.ts) every few seconds, and learns of the other peers on its link from
 * theirs. The integrator connects to each peer found over TCP as a known host (origin 'lan') and
 * learns its full catalogue there; the files in an offer are a preview.
 *
 * Multicast, not broadcast: a multicast datagram reaches only the hosts that joined the group
 * (their network cards filter the rest, and switches with IGMP snooping keep it off other ports),
 * it needs no per-interface broadcast address, it works the same with IPv6 (which has no
 * broadcast), and several peers on one host all receive it through multicast loopback. It is also
 * what BitTorrent's local service discovery does. The group is organisation-local (see
 * LAN_MULTICAST_GROUP) and sent with a TTL of 1: an offer never leaves its link.
 *
 * Defences, since anyone on the link can send anything:
 * - a datagram is only trusted for what it is: a peer's host is the datagram's SOURCE address,
 *   never one it claims, and a peer is keyed by (peer id, source address), so a datagram naming
 *   another peer's id from elsewhere cannot move that peer;
 * - at most maxDatagramsPerSecond datagrams are read, the rest dropped unread (a token bucket);
 * - at most maxPeers peers are remembered and at most maxNewPeersPerInterval new ones reported
 *   per interval (an address storm becomes a trickle of connections); a refused peer is
 *   reported later when it repeats its offer;
 * - garbage is counted and logged at debug, with a warning at most once per LAN_WARN_INTERVAL_MS.
 *
 * In a private swarm (a swarm key given), every offer is sealed (src/wire/sealed-lan-offer.ts):
 * only members can read or forge one. A member ignores open offers (a node outside the swarm
 * would refuse it at the TLS handshake anyway), sealed ones that do not authenticate (another
 * swarm's on the same link, or forgeries), and sealed ones stamped further than
 * LAN_SEALED_OFFER_MAX_SKEW_MS from its clock or older than the newest seen from the same peer
 * (replays); an open node ignores sealed offers. Those are counted and logged at debug only:
 * another swarm on the link is normal, not an attack worth a warning.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import {
  HASH_BYTES,
  LAN_ANNOUNCE_INTERVAL_MS,
  LAN_EXPIRY_INTERVALS,
  LAN_MIN_ANNOUNCE_GAP_MS,
  LAN_MULTICAST_GROUP,
  LAN_PORT,
  LAN_SEALED_OFFER_MAX_SKEW_MS,
  LAN_WARN_INTERVAL_MS,
  MAX_FILE_SIZE,
  MAX_LAN_DATAGRAMS_PER_SECOND,
  MAX_LAN_FILES_PER_PEER,
  MAX_LAN_INTERFACES,
  MAX_LAN_PEERS,
  MAX_NEW_LAN_PEERS_PER_INTERVAL,
  MAX_PEER_NAME_BYTES,
  MAX_SHARED_FILES,
  MAX_LAN_DATAGRAM,
  PEER_ID_BYTES,
} from '../constants.js';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { fileNameProblem } from '../storage/file-name.js';
import type { SwarmKey } from '../transport/swarm-secret.js';
import { ProtocolError } from '../wire/codec.js';
import {
  LAN_OFFER_MAGIC,
  decodeLanOffer,
  encodeLanOffer,
  type LanOfferFile,
  type LanOfferMessage,
} from '../wire/lan-offer.js';
import {
  MAX_SEALED_LAN_OFFER_PLAINTEXT,
  SEALED_LAN_OFFER_PURPOSE,
  UnauthenticLanOfferError,
  isSealedLanOffer,
  sealLanOffer,
  unsealLanOffer,
} from '../wire/sealed-lan-offer.js';

const LOOPBACK = '127.0.0.1';

/** A file as another peer offers it on the LAN. */
export interface LanFile {
  fileId: string; // hex
  name: string;
  size: number;
}

/** What we know of one peer on the LAN. */
export interface LanOffer {
  peerId: string; // hex
  name: string;
  /** The source address of its datagrams, never an address it claims. */
  host: string;
  /** Its TCP serving port. */
  port: number;
  /** The files its offers carried since its catalogue last changed (at most MAX_LAN_FILES_PER_PEER). */
  files: LanFile[];
  /** How many files it says it shares; `files` may hold fewer (offers rotate through big catalogues). */
  totalFiles: number;
  /** Date.now() of its last offer. */
  lastSeen: number;
}

export interface LanDiscoveryOptions {
  /** Our identity and TCP serving port, as announced. */
  self: { peerId: Buffer; name: string; port: number };
  /** What we share now; called at each announcement. */
  offers: () => { fileId: Buffer; name: string; size: number }[];
  /** Multicast group (default LAN_MULTICAST_GROUP). */
  group?: string;
  /** UDP port (default LAN_PORT). Every peer of a LAN must use the same one. */
  port?: number;
  /**
   * Join the group and announce on this interface (its IPv4 address) only. Default: every
   * non-internal IPv4 interface (loopback if there is none), looked up again at each
   * announcement as interfaces come and go.
   */
  interfaceAddress?: string;
  /** Announce interval (default LAN_ANNOUNCE_INTERVAL_MS), jittered by +-20%. */
  intervalMs?: number;
  /** An offer not repeated within this time expires (default LAN_EXPIRY_INTERVALS intervals). */
  expiryMs?: number;
  /** Peers remembered at once (default MAX_LAN_PEERS). */
  maxPeers?: number;
  /** New peers reported per interval (default MAX_NEW_LAN_PEERS_PER_INTERVAL). */
  maxNewPeersPerInterval?: number;
  /** Datagrams read per second, the rest dropped unread (default MAX_LAN_DATAGRAMS_PER_SECOND). */
  maxDatagramsPerSecond?: number;
  /** A private swarm's key: offers are then sealed, and only sealed ones from members are read. */
  swarmKey?: SwarmKey | null;
  logger?: Logger;
}

/** Counters, for tests and status displays. */
export interface LanStats {
  /** Datagrams that arrived, read or not. */
  received: number;
  /** Dropped unread by the receive rate limit. */
  rateLimited: number;
  /** Over MAX_LAN_DATAGRAM bytes, or not a well-formed offer. */
  garbage: number;
  /** Our own offers, looped back. */
  ownEchoes: number;
  /** Open node: sealed offers of a private swarm, ignored. */
  sealedIgnored: number;
  /** Private swarm: open offers, ignored. */
  openIgnored: number;
  /** Private swarm: sealed offers that do not authenticate (another swarm's, forged, corrupted). */
  unauthentic: number;
  /** Private swarm: authentic sealed offers refused as replays (too old, too far ahead, or superseded). */
  stale: number;
  /** Well-formed offers from other peers. */
  offers: number;
  /** Offers from new peers dropped because the table was full or too many were new this interval. */
  refusedNewPeers: number;
  /** Datagrams we sent (one per interface per announcement). */
  sent: number;
  sendErrors: number;
}

export interface LanDiscoveryEvents {
  /** A peer is new, or its offer changed (port, name, or files). Not fired for repeats. */
  offer: [LanOffer];
  /**
   * A peer's offer was not repeated within expiryMs, or its port changed (the old endpoint is
   * withdrawn, then `offer` reports the new one). Every endpoint (host, port) that `offer`
   * reported is withdrawn by exactly one `expired`, except at close().
   */
  expired: [LanOffer];
}

interface PeerEntry {
  offer: LanOffer;
  /** The newest sealed offer's timestamp (private swarm): an older one is a replay. */
  sentAt: number;
  catalogTag: number;
  files: Map<string, LanFile>; // by file id
}

/** Announces our files on the LAN by multicast and reports the other peers' offers. */
export class LanDiscovery extends EventEmitter<LanDiscoveryEvents> {
  private readonly group: string;
  private readonly port: number;
  private readonly intervalMs: number;
  private readonly expiryMs: number;
  private readonly maxPeers: number;
  private readonly maxNewPeersPerInterval: number;
  private readonly maxDatagramsPerSecond: number;
  private readonly log: Logger;
  private readonly selfHex: string;
  /** The key sealing our offers and opening the members' (private swarm), or null (open swarm). */
  private readonly sealKey: Buffer | null;

  private socket: dgram.Socket | null = null;
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly entries = new Map<string, PeerEntry>();
  /** Interfaces (their IPv4 addresses) whose group membership we hold. */
  private readonly joined = new Set<string>();
  private readonly counters: LanStats = {
    received: 0,
    rateLimited: 0,
    garbage: 0,
    ownEchoes: 0,
    sealedIgnored: 0,
    openIgnored: 0,
    unauthentic: 0,
    stale: 0,
    offers: 0,
    refusedNewPeers: 0,
    sent: 0,
    sendErrors: 0,
  };

  private announceTimer: NodeJS.Timeout | null = null;
  private announceDueAt = Infinity;
  private sweepTimer: NodeJS.Timeout | null = null;
  private lastAnnounceAt = -Infinity;
  /** Sends go one interface after another (setMulticastInterface applies to the next send). */
  private sending: Promise<void> = Promise.resolve();
  private rotation = { tag: -1, cursor: 0 };

  private tokens: number;
  private tokensAt = Date.now();
  private newPeersWindow = { start: -Infinity, count: 0 };
  private warned = { garbage: { at: -Infinity, since: 0 }, full: { at: -Infinity, since: 0 } };

  constructor(private readonly options: LanDiscoveryOptions) {
    super();
    const { peerId, name, port } = options.self;
    if (peerId.length !== PEER_ID_BYTES) throw invalid(`a peer id is ${PEER_ID_BYTES} bytes`);
    // eslint-disable-next-line no-control-regex
    if (Buffer.byteLength(name, 'utf8') > MAX_PEER_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(name)) {
      throw invalid(`a peer name is at most ${MAX_PEER_NAME_BYTES} bytes of printable text`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw invalid(`bad TCP port ${port}`);
    this.group = options.group ?? LAN_MULTICAST_GROUP;
    this.port = options.port ?? LAN_PORT;
    this.intervalMs = positive(options.intervalMs ?? LAN_ANNOUNCE_INTERVAL_MS, 'intervalMs');
    this.expiryMs = positive(options.expiryMs ?? LAN_EXPIRY_INTERVALS * this.intervalMs, 'expiryMs');
    this.maxPeers = positive(options.maxPeers ?? MAX_LAN_PEERS, 'maxPeers');
    this.maxNewPeersPerInterval = positive(
      options.maxNewPeersPerInterval ?? MAX_NEW_LAN_PEERS_PER_INTERVAL,
      'maxNewPeersPerInterval',
    );
    this.maxDatagramsPerSecond = positive(
      options.maxDatagramsPerSecond ?? MAX_LAN_DATAGRAMS_PER_SECOND,
      'maxDatagramsPerSecond',
    );
    this.tokens = this.maxDatagramsPerSecond;
    this.log = (options.logger ?? silentLogger()).child({ component: 'lan' });
    this.selfHex = peerId.toString('hex');
    this.sealKey = options.swarmKey ? options.swarmKey.subkey(SEALED_LAN_OFFER_PURPOSE) : null;
  }

  /**
   * Binds the UDP port (shared with other peers on this host), joins the group, announces at once
   * and then every interval. Rejects if the port cannot be bound, or if an explicit
   * interfaceAddress cannot join the group. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    this.starting ??= this.open();
    return this.starting;
  }

  private async open(): Promise<void> {
    if (this.closing) throw new SwarmError('ERR_CLOSED', 'LAN discovery is closed');
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (datagram, remote) => this.onDatagram(datagram, remote.address));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // Bound to the group address, the socket receives this group only: with 0.0.0.0, Linux
      // would also deliver other groups joined by any socket on this port, and unicast.
      // Windows cannot bind a multicast address.
      const address = process.platform === 'win32' ? '0.0.0.0' : this.group;
      socket.bind({ port: this.port, address }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw new SwarmError('ERR_IO', `cannot bind UDP port ${this.port}: ${errorMessage(err)}`, {
        cause: err,
      });
    });
    socket.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'LAN socket error'));
    if (this.closing) {
      socket.close();
      return;
    }
    this.socket = socket;
    try {
      socket.setMulticastTTL(1);
      socket.setMulticastLoopback(true); // other peers on this host hear us too
      if (this.options.interfaceAddress !== undefined) {
        socket.addMembership(this.group, this.options.interfaceAddress);
        this.joined.add(this.options.interfaceAddress);
        socket.setMulticastInterface(this.options.interfaceAddress);
      } else {
        this.refreshInterfaces();
      }
    } catch (err) {
      await this.close();
      throw new SwarmError('ERR_IO', `cannot join ${this.group}: ${errorMessage(err)}`, { cause: err });
    }
    const sweepMs = Math.min(Math.max(this.expiryMs / 4, 10), 1_000);
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs).unref();
    this.log.debug({ group: this.group, port: this.port }, 'LAN discovery started');
    this.announce();
  }

  /**
   * Announces at once (call it when what we share changes), or as soon as the last announcement
   * is LAN_MIN_ANNOUNCE_GAP_MS old, so a burst of changes sends few datagrams.
   */
  announceNow(): void {
    if (!this.socket || this.closing) return;
    const gap = Math.min(LAN_MIN_ANNOUNCE_GAP_MS, this.intervalMs);
    const wait = this.lastAnnounceAt + gap - Date.now();
    if (wait <= 0) this.announce();
    else this.schedule(wait);
  }

  /** The peers heard from and not expired (copies). */
  peers(): LanOffer[] {
    return [...this.entries.values()].map((entry) => snapshot(entry.offer));
  }

  stats(): LanStats {
    return { ...this.counters };
  }

  /** Stops announcing and listening; forgets every peer without firing `expired`. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.announceTimer) clearTimeout(this.announceTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.announceTimer = this.sweepTimer = null;
    this.entries.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  // ---- Announcing ----------------------------------------------------------------------------

  /** The next announcement in `ms`, unless one is due sooner. */
  private schedule(ms: number): void {
    const due = Date.now() + ms;
    if (this.announceTimer) {
      if (this.announceDueAt <= due) return;
      clearTimeout(this.announceTimer);
    }
    this.announceDueAt = due;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      this.announce();
    }, ms).unref();
  }

  private announce(): void {
    const socket = this.socket;
    if (!socket || this.closing) return;
    if (this.announceTimer) clearTimeout(this.announceTimer);
    this.announceTimer = null;
    this.lastAnnounceAt = Date.now();
    this.schedule(this.intervalMs * (0.8 + 0.4 * Math.random()));
    let datagram: Buffer;
    try {
      datagram = this.encodeNext();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'cannot build a LAN offer');
      return;
    }
    const explicit = this.options.interfaceAddress;
    const interfaces = explicit !== undefined ? [explicit] : this.refreshInterfaces();
    this.sending = this.sending.then(() => this.sendOnEach(socket, datagram, interfaces));
  }

  /** The next datagram of the rotation through our catalogue. */
  private encodeNext(): Buffer {
    const catalogue = this.catalogue();
    const tag = catalogTag(catalogue);
    if (tag !== this.rotation.tag) this.rotation = { tag, cursor: 0 };
    const { peerId, name, port } = this.options.self;
    const { datagram, included } = encodeLanOffer(
      { peerId, name, port, catalogTag: tag },
      catalogue,
      this.rotation.cursor,
      this.sealKey ? MAX_SEALED_LAN_OFFER_PLAINTEXT : MAX_LAN_DATAGRAM,
    );
    this.rotation.cursor = catalogue.length ? (this.rotation.cursor + included) % catalogue.length : 0;
    // One seal for every interface: the same datagram twice is no replay (see isReplay).
    return this.sealKey ? sealLanOffer(this.sealKey, datagram, Date.now()) : datagram;
  }

  /** What we share, valid entries only, in a stable order (so the rotation covers everything). */
  private catalogue(): LanOfferFile[] {
    const valid = this.options.offers().filter((file) => {
      const ok =
        file.fileId.length === HASH_BYTES &&
        Number.isSafeInteger(file.size) &&
        file.size >= 0 &&
        file.size <= MAX_FILE_SIZE &&
        fileNameProblem(file.name) === null;
      if (!ok) this.log.debug({ name: file.name }, 'not offering a file that cannot be described');
      return ok;
    });
    const keyed = valid.map((file) => ({ file, key: file.fileId.toString('hex') + file.name }));
    keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return keyed.slice(0, MAX_SHARED_FILES).map(({ file }) => file);
  }

  private async sendOnEach(socket: dgram.Socket, datagram: Buffer, interfaces: string[]): Promise<void> {
    for (const address of interfaces) {
      if (this.closing) return;
      try {
        socket.setMulticastInterface(address);
        await new Promise<void>((resolve, reject) =>
          socket.send(datagram, this.port, this.group, (err) => (err ? reject(err) : resolve())),
        );
        this.counters.sent++;
      } catch (err) {
        this.counters.sendErrors++;
        this.log.debug({ err: errorMessage(err), interface: address }, 'cannot send a LAN offer');
      }
    }
  }

  /**
   * Joins the group on every non-internal IPv4 interface not joined yet and forgets vanished
   * ones; returns the interfaces to send on. With none (a machine offline), loopback: peers on
   * this host still find each other.
   */
  private refreshInterfaces(): string[] {
    const socket = this.socket;
    if (!socket) return [];
    const current = new Set<string>();
    for (const entries of Object.values(os.networkInterfaces())) {
      for (const entry of entries ?? []) {
        // Node 18.0-18.3 reported the family as a number.
        const v4 = entry.family === 'IPv4' || (entry.family as unknown) === 4;
        if (v4 && !entry.internal && current.size < MAX_LAN_INTERFACES) current.add(entry.address);
      }
    }
    if (current.size === 0) current.add(LOOPBACK);
    for (const address of this.joined) {
      if (current.has(address)) continue;
      this.joined.delete(address);
      try {
        socket.dropMembership(this.group, address);
      } catch {
        // The interface is gone, and its membership with it.
      }
    }
    for (const address of current) {
      if (this.joined.has(address)) continue;
      try {
        socket.addMembership(this.group, address);
        this.joined.add(address);
        this.log.debug({ interface: address }, 'joined the LAN group');
      } catch (err) {
        if (errorCode(err) === 'EADDRINUSE')
          this.joined.add(address); // joined already
        else this.log.debug({ err: errorMessage(err), interface: address }, 'cannot join the LAN group');
      }
    }
    return [...current];
  }

  // ---- Receiving -----------------------------------------------------------------------------

  private onDatagram(datagram: Buffer, host: string): void {
    this.counters.received++;
    if (!this.takeToken()) {
      this.counters.rateLimited++;
      return;
    }
    let message: LanOfferMessage;
    let sentAt = 0;
    try {
      if (this.sealKey) {
        const opened = this.openSealed(datagram, host);
        if (!opened) return;
        sentAt = opened.sentAt;
        message = decodeLanOffer(opened.offer);
      } else {
        if (datagram.length <= MAX_LAN_DATAGRAM && isSealedLanOffer(datagram)) {
          this.counters.sealedIgnored++;
          this.log.debug({ from: host }, 'sealed LAN offer of a private swarm ignored');
          return;
        }
        message = decodeLanOffer(datagram); // refuses oversized datagrams before reading them
      }
    } catch (err) {
      this.counters.garbage++;
      this.log.debug({ from: host, bytes: datagram.length, err: errorMessage(err) }, 'garbage LAN datagram');
      this.warnEvery('garbage', { from: host, err: errorMessage(err) }, 'garbage LAN datagrams');
      return;
    }
    const peerId = message.peerId.toString('hex');
    if (peerId === this.selfHex) {
      this.counters.ownEchoes++;
      return;
    }
    if (this.sealKey && this.isReplay(peerId, host, sentAt)) {
      this.counters.stale++;
      this.log.debug({ from: host, peer: peerId.slice(0, 12), sentAt }, 'replayed LAN offer ignored');
      return;
    }
    this.counters.offers++;
    this.record(peerId, host, message, sentAt);
  }

  /**
   * Private swarm: opens a sealed offer, or counts and ignores an open offer or one that does not
   * authenticate (null). Throws ProtocolError for anything else that is not a readable offer.
   */
  private openSealed(datagram: Buffer, host: string): { sentAt: number; offer: Buffer } | null {
    const sealKey = this.sealKey!;
    if (datagram.length <= MAX_LAN_DATAGRAM && !isSealedLanOffer(datagram)) {
      const open = datagram.subarray(0, LAN_OFFER_MAGIC.length).equals(LAN_OFFER_MAGIC);
      if (!open) throw new ProtocolError('not a swarmshare LAN offer (wrong magic)');
      this.counters.openIgnored++;
      this.log.debug({ from: host }, 'open LAN offer ignored in a private swarm');
      return null;
    }
    try {
      return unsealLanOffer(sealKey, datagram);
    } catch (err) {
      if (!(err instanceof UnauthenticLanOfferError)) throw err;
      this.counters.unauthentic++;
      this.log.debug({ from: host, bytes: datagram.length }, 'sealed LAN offer of another swarm ignored');
      return null;
    }
  }

  /**
   * A sealed offer is a replay if it was sealed too long ago (or too far ahead, by a clock that is
   * off), or before the newest one already seen from the same peer at the same address.
   */
  private isReplay(peerId: string, host: string, sentAt: number): boolean {
    if (Math.abs(Date.now() - sentAt) > LAN_SEALED_OFFER_MAX_SKEW_MS) return true;
    const entry = this.entries.get(`${peerId}@${host}`);
    return entry !== undefined && sentAt < entry.sentAt;
  }

  /** A token bucket: a second's worth of datagrams at most, refilled continuously. */
  private takeToken(): boolean {
    const now = Date.now();
    const rate = this.maxDatagramsPerSecond;
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private record(peerId: string, host: string, message: LanOfferMessage, sentAt: number): void {
    const key = `${peerId}@${host}`;
    const now = Date.now();
    const entry = this.entries.get(key);
    if (!entry) {
      if (!this.admitNewPeer(now, peerId, host)) return;
      const fresh: PeerEntry = {
        offer: {
          peerId,
          name: message.name,
          host,
          port: message.port,
          files: [],
          totalFiles: 0,
          lastSeen: now,
        },
        sentAt,
        catalogTag: message.catalogTag,
        files: new Map(),
      };
      this.entries.set(key, fresh);
      this.update(fresh, message);
      this.log.debug({ peer: peerId.slice(0, 12), host, port: message.port }, 'new LAN peer');
      this.report('offer', fresh.offer);
      return;
    }
    entry.offer.lastSeen = now;
    entry.sentAt = sentAt;
    // A new port is a new endpoint: withdraw the old one first, so that every endpoint an
    // `offer` reported is withdrawn by exactly one `expired`.
    if (entry.offer.port !== message.port) this.report('expired', entry.offer);
    if (this.update(entry, message)) this.report('offer', entry.offer);
  }

  /** Applies an offer to what we know of its peer; true if anything changed. */
  private update(entry: PeerEntry, message: LanOfferMessage): boolean {
    const offer = entry.offer;
    let changed = false;
    if (offer.port !== message.port || offer.name !== message.name) {
      offer.port = message.port;
      offer.name = message.name;
      changed = true;
    }
    if (entry.catalogTag !== message.catalogTag || offer.totalFiles !== message.totalFiles) {
      entry.catalogTag = message.catalogTag;
      offer.totalFiles = message.totalFiles;
      entry.files.clear();
      changed = true;
    }
    for (const file of message.files) {
      const fileId = file.fileId.toString('hex');
      if (entry.files.has(fileId) || entry.files.size >= MAX_LAN_FILES_PER_PEER) continue;
      entry.files.set(fileId, { fileId, name: file.name, size: file.size });
      changed = true;
    }
    if (changed) offer.files = [...entry.files.values()];
    return changed;
  }

  private admitNewPeer(now: number, peerId: string, host: string): boolean {
    if (this.entries.size >= this.maxPeers) {
      this.counters.refusedNewPeers++;
      this.warnEvery('full', { max: this.maxPeers, from: host }, 'LAN peer table full: new peers ignored');
      return false;
    }
    const window = this.newPeersWindow;
    if (now - window.start >= this.intervalMs) {
      window.start = now;
      window.count = 0;
    }
    if (window.count >= this.maxNewPeersPerInterval) {
      this.counters.refusedNewPeers++;
      this.log.debug({ peer: peerId.slice(0, 12), from: host }, 'too many new LAN peers: later');
      return false;
    }
    window.count++;
    return true;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (now - entry.offer.lastSeen <= this.expiryMs) continue;
      this.entries.delete(key);
      this.log.debug({ peer: entry.offer.peerId.slice(0, 12), host: entry.offer.host }, 'LAN peer expired');
      this.report('expired', entry.offer);
    }
  }

  /** Emits a copy of `offer`; a listener that throws is logged, never left to crash the process. */
  private report(event: 'offer' | 'expired', offer: LanOffer): void {
    try {
      this.emit(event, snapshot(offer));
    } catch (err) {
      this.log.error({ err: errorMessage(err), event }, 'a LAN discovery listener failed');
    }
  }

  /** Logs a warning now and then, with how many times it happened since the last one. */
  private warnEvery(kind: 'garbage' | 'full', fields: object, message: string): void {
    const state = this.warned[kind];
    state.since++;
    const now = Date.now();
    if (now - state.at < LAN_WARN_INTERVAL_MS) return;
    this.log.warn({ ...fields, count: state.since }, message);
    state.at = now;
    state.since = 0;
  }
}

/**
 * A u32 that changes whenever the catalogue does: the first bytes of a SHA-256 over every
 * file's id, size and name, in the catalogue's (sorted) order.
 */
function catalogTag(catalogue: readonly LanOfferFile[]): number {
  const hash = createHash('sha256');
  const size = Buffer.allocUnsafe(8);
  for (const file of catalogue) {
    size.writeBigUInt64BE(BigInt(file.size));
    hash.update(file.fileId).update(size).update(file.name).update('\0');
  }
  return hash.digest().readUInt32BE(0);
}

function snapshot(offer: LanOffer): LanOffer {
  return { ...offer, files: offer.files.map((file) => ({ ...file })) };
}

function invalid(message: string): SwarmError {
  return new SwarmError('ERR_INVALID_ARGUMENT', message);
}

function positive(value: number, what: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw invalid(`${what} must be a positive number`);
  return value;
}
