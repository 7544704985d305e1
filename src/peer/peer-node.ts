/**
 * A running peer: the shared folder, the chunk server, the discovery sources (trackers, and the
 * mesh of peers reached directly) and the downloads, tied together. The CLI's `peer` command, the
 * shell, the one-shot `get` and the demo all drive this one class; it holds no user-interface logic.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { formatEndpoint, type Endpoint, type TrackerAddress } from '../address.js';
import {
  MAX_PEER_NAME_BYTES,
  MAX_SHARED_FILES,
  MAX_SOURCES_PER_DOWNLOAD,
  NO_SOURCE_TIMEOUT_MS,
  RECIPROCATION_WINDOW_MS,
  RELOCATE_INTERVAL_MS,
  TRACKER_READY_TIMEOUT_MS,
} from '../constants.js';
import { Discovery, type CatalogView } from '../discovery/discovery.js';
import { watchHostsFile } from '../discovery/hosts-file.js';
import { LanDiscovery, type LanDiscoveryOptions } from '../discovery/lan.js';
import { MeshSource } from '../discovery/mesh-source.js';
import { PeerMesh, type MeshPeer } from '../discovery/mesh.js';
import { TrackerSource } from '../discovery/tracker-source.js';
import { SwarmError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { Bitfield } from '../storage/bitfield.js';
import { loadOrCreateIdentity } from '../storage/identity.js';
import { credentialsFor, ephemeralCredentials, type Credentials } from '../transport/credentials.js';
import type { SwarmKey } from '../transport/swarm-secret.js';
import { fileNameProblem, quoteName, safeFileName } from '../storage/file-name.js';
import { chunkCount, chunkLength, fileIdHex, isFileIdHex, type Manifest } from '../storage/manifest.js';
import { SharedFolder, type SharedFile } from '../storage/shared-folder.js';
import { TrackerLink } from '../tracker/link.js';
import type { Offer } from '../wire/peer-messages.js';
import type { AnnounceResult, FileSummary } from '../wire/tracker-messages.js';
import { ChunkServer } from './chunk-server.js';
import { Download, type DownloadResult } from './download.js';
import { RateLimiter } from './rate-limiter.js';
import { RecentBytes } from './recent-bytes.js';
import { matchesNameOrId, resolveInCatalog } from './resolve.js';

export { resolveInCatalog } from './resolve.js';

export interface PeerNodeOptions {
  /** The folder whose files are shared and where downloads land. */
  dir: string;
  /** Trackers to register with (all of them: one going down loses nothing). */
  trackers?: TrackerAddress[];
  /** Known hosts to keep connected to, without a tracker. */
  peers?: Endpoint[];
  /** A file of known hosts (`host:port` per line), re-read when it changes. */
  hostsFile?: string;
  /** Announce ourselves and hear others on the LAN (multicast offers); options for tests. */
  lan?: boolean | Partial<Pick<LanDiscoveryOptions, 'group' | 'port' | 'interfaceAddress' | 'intervalMs'>>;
  /** Bytes per second this peer uploads at most, over all connections. */
  uploadLimit?: number;
  /** Bytes per second this peer downloads at most, over all connections of all its downloads. */
  downloadLimit?: number;
  /** Connections our chunk server uploads to at once, besides the optimistic one. Default UPLOAD_SLOTS. */
  uploadSlots?: number;
  /** Address and port the chunk server listens on (port 0: any free port). */
  host?: string;
  port?: number;
  /** A human name shown to other peers. */
  name?: string;
  /** Share every file in `dir` at start (the `peer` command); off for a one-shot `get`. */
  shareOnStart?: boolean;
  /** Use a throw-away peer id instead of the one persisted in the state folder. */
  ephemeralIdentity?: boolean;
  /** The private swarm's key (see transport/swarm-secret.ts); none: an open swarm. */
  swarmKey?: SwarmKey | null;
  logger?: Logger;
  /** Tuning for tests and the demo. */
  relocateIntervalMs?: number;
  noSourceTimeoutMs?: number;
  reconnectMinMs?: number;
}

export interface ActiveDownload {
  manifest: Manifest;
  download: Download;
  startedAt: number;
}

export interface PeerNodeEvents {
  'download-started': [ActiveDownload];
  'download-finished': [ActiveDownload, DownloadResult];
  'download-failed': [ActiveDownload, Error];
  /** The set of files we share changed (shared, unshared, or a download finished). */
  'shared-changed': [];
  'tracker-up': [label: string];
  'tracker-down': [label: string, reason: Error | undefined];
  'peer-up': [MeshPeer];
  'peer-down': [MeshPeer];
}

export interface SwarmPeer {
  peerId: string;
  name: string;
  address: string;
  /** The file it holds chunks of, or '' for a connected peer that shares nothing we have. */
  file: string;
  chunks: number;
  totalChunks: number;
}

/** `peers` asks about at most this many of our files. */
const MAX_SWARMS_SHOWN = 50;
/** At most this many connected peers are named in PEERS messages (peer exchange). */
const MAX_PEX_SHARED = 50;
/** Under a download limit, each source should deliver a chunk about this often at its share. */
const LIMITED_SOURCE_CHUNK_MS = 30_000;

export class PeerNode extends EventEmitter<PeerNodeEvents> {
  readonly folder: SharedFolder;
  readonly peerId: Buffer;
  readonly name: string;
  readonly logger: Logger;
  readonly discovery: Discovery;
  private readonly server: ChunkServer;
  private readonly uploadLimiter: RateLimiter | null;
  private readonly downloadLimiter: RateLimiter | null;
  /** Created once the chunk server listens: the mesh tells peers the port we serve on. */
  private mesh!: PeerMesh;
  private readonly trackerSources: TrackerSource[] = [];
  private lan: LanDiscovery | null = null;
  private hostsWatcher: { close(): void } | null = null;
  private readonly shared = new Map<string, SharedFile>();
  private readonly downloads = new Map<string, ActiveDownload>();
  private listening: Endpoint = { host: '', port: 0 };
  private closed = false;
  /**
   * Verified bytes each peer (hex id) gave our downloads lately: our chunk server's upload slots go to
   * those who gave the most (tit-for-tat). Fed by every download's onChunk, which names the source.
   */
  private readonly received = new RecentBytes<string>(RECIPROCATION_WINDOW_MS);

  private constructor(
    folder: SharedFolder,
    private readonly credentials: Credentials,
    private readonly options: PeerNodeOptions,
  ) {
    super();
    const peerId = credentials.peerId;
    this.folder = folder;
    this.peerId = peerId;
    this.name = options.name ?? defaultPeerName(peerId);
    this.logger = options.logger ?? silentLogger();
    this.discovery = new Discovery(peerId, this.logger);
    this.uploadLimiter = options.uploadLimit ? new RateLimiter(options.uploadLimit) : null;
    this.downloadLimiter = options.downloadLimit ? new RateLimiter(options.downloadLimit) : null;
    this.server = new ChunkServer({
      ...(this.uploadLimiter ? { uploadLimiter: this.uploadLimiter } : {}),
      ...(options.uploadSlots !== undefined ? { uploadSlots: options.uploadSlots } : {}),
      reciprocation: (peerId) => this.received.get(peerId),
      provider: (fileId, index) => this.readChunk(fileId, index),
      logger: this.logger,
      credentials,
      self: { name: this.name },
      offers: () => this.offers(),
      knownPeers: () =>
        this.mesh
          .peers()
          .slice(0, MAX_PEX_SHARED)
          .map((p) => ({ host: p.host, port: p.port })),
      manifest: (fileId) => this.manifestOf(fileId),
      // A peer that connects to us and serves too becomes a known host: we connect back to it.
      onPeerInfo: (info) => this.mesh.addHost({ host: info.host, port: info.port }, 'inbound'),
    });
  }

  /** Opens the folder, starts serving and discovering, and (optionally) shares the folder. */
  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const nameProblem = options.name === undefined ? null : peerNameProblem(options.name);
    if (nameProblem) throw new SwarmError('ERR_INVALID_ARGUMENT', `bad peer name: ${nameProblem}`);
    const folder = await SharedFolder.open(options.dir, { logger: options.logger });
    const swarmKey = options.swarmKey ?? null;
    const credentials = options.ephemeralIdentity
      ? await ephemeralCredentials(swarmKey)
      : await credentialsFor(await loadOrCreateIdentity(folder.stateDir), swarmKey);
    const node = new PeerNode(folder, credentials, options);
    try {
      await node.startServices();
    } catch (err) {
      await node.close();
      throw err;
    }
    return node;
  }

  private async startServices(): Promise<void> {
    this.listening = await this.server.listen(this.options.port ?? 0, this.options.host ?? '0.0.0.0');
    this.mesh = new PeerMesh({
      credentials: this.credentials,
      self: { peerId: this.peerId, name: this.name, port: this.listening.port },
      logger: this.logger,
      ...(this.options.reconnectMinMs ? { reconnectMinMs: this.options.reconnectMinMs } : {}),
    });
    this.discovery.add(new MeshSource(this.mesh, this.server));
    if (this.options.shareOnStart !== false) {
      for (const file of await this.folder.scan()) this.addShared(file);
    }
    for (const tracker of this.options.trackers ?? []) this.addTracker(tracker);

    this.mesh.on('peer-up', (peer) => this.emit('peer-up', peer));
    this.mesh.on('peer-down', (peer) => {
      if (!this.closed) this.emit('peer-down', peer);
    });
    for (const peer of this.options.peers ?? []) this.mesh.addHost(peer, 'static');
    if (this.options.hostsFile) this.watchHosts(this.options.hostsFile);
    if (this.options.lan) await this.startLan(this.options.lan === true ? {} : this.options.lan);
  }

  private addTracker(endpoint: TrackerAddress): void {
    // Created only now: the link registers the chunk server's port, known once it listens.
    const link = new TrackerLink({
      host: endpoint.host,
      port: endpoint.port,
      ...(endpoint.trackerId ? { trackerId: endpoint.trackerId } : {}),
      credentials: this.credentials,
      identity: { name: this.name, port: this.listening.port },
      logger: this.logger,
      holdings: () => this.holdings(),
      // Trackers never see transfers: each heartbeat tells them how much we have served.
      uploadedBytes: () => this.server.uploadedBytes,
    });
    const source = new TrackerSource(link, endpoint, TRACKER_READY_TIMEOUT_MS);
    link.on('up', () => this.emit('tracker-up', source.label));
    link.on('down', (reason) => {
      if (!this.closed) this.emit('tracker-down', source.label, reason);
    });
    this.trackerSources.push(source);
    this.discovery.add(source);
    link.start();
  }

  private watchHosts(file: string): void {
    let current = new Map<string, Endpoint>();
    const apply = (hosts: Endpoint[]): void => {
      const next = new Map(hosts.map((h) => [formatEndpoint(h), h]));
      for (const [key, host] of next) if (!current.has(key)) this.mesh.addHost(host, 'file');
      for (const [key, host] of current) if (!next.has(key)) this.mesh.removeHost(host, 'file');
      current = next;
    };
    const watcher = watchHostsFile(file, apply, { logger: this.logger });
    apply(watcher.current());
    this.hostsWatcher = watcher;
  }

  private async startLan(overrides: Exclude<PeerNodeOptions['lan'], boolean | undefined>): Promise<void> {
    const lan = new LanDiscovery({
      self: { peerId: this.peerId, name: this.name, port: this.listening.port },
      offers: () =>
        this.sharedFiles().map(({ manifest }) => ({
          fileId: manifest.id,
          name: manifest.name,
          size: manifest.size,
        })),
      swarmKey: this.options.swarmKey ?? null,
      logger: this.logger,
      ...overrides,
    });
    lan.on('offer', (offer) => this.mesh.addHost({ host: offer.host, port: offer.port }, 'lan'));
    lan.on('expired', (offer) => this.mesh.removeHost({ host: offer.host, port: offer.port }, 'lan'));
    await lan.start();
    this.lan = lan;
  }

  get peerIdHex(): string {
    return this.peerId.toString('hex');
  }

  /** Where the chunk server listens. */
  get address(): Endpoint {
    return this.listening;
  }

  get trackerConnected(): boolean {
    return this.trackerSources.some((s) => s.available);
  }

  /** One line per tracker: its address and whether we are registered with it. */
  trackerStates(): { label: string; connected: boolean }[] {
    return this.trackerSources.map((s) => ({ label: s.label, connected: s.available }));
  }

  /** Peers connected directly (known hosts, peer exchange, LAN). */
  meshPeers(): MeshPeer[] {
    return this.mesh.peers();
  }

  /**
   * Waits until discovery has had its first say: every tracker registered (or failed for the
   * timeout) and every known host tried once. Resolves with the trackers that did not answer.
   */
  async discoverySettled(timeoutMs = TRACKER_READY_TIMEOUT_MS): Promise<string[]> {
    const results = await Promise.allSettled([
      ...this.trackerSources.map((s) => s.link.ready(timeoutMs)),
      this.mesh.settled(timeoutMs),
    ]);
    return results
      .slice(0, this.trackerSources.length)
      .flatMap((r, i) => (r.status === 'rejected' ? [this.trackerSources[i]!.label] : []));
  }

  /** Waits until every tracker session is registered (and holdings announced). */
  async trackerReady(timeoutMs = TRACKER_READY_TIMEOUT_MS): Promise<void> {
    if (this.trackerSources.length === 0)
      throw new SwarmError('ERR_INVALID_ARGUMENT', 'this peer has no tracker');
    await Promise.all(this.trackerSources.map((s) => s.link.ready(timeoutMs)));
  }

  sharedFiles(): SharedFile[] {
    return [...this.shared.values()];
  }

  activeDownloads(): ActiveDownload[] {
    return [...this.downloads.values()];
  }

  get uploadedBytes(): number {
    return this.server.uploadedBytes;
  }

  // ---- Sharing -----------------------------------------------------------------------------------

  /** Shares a file or folder inside the peer's folder and announces it everywhere. */
  async share(path: string): Promise<{ file: SharedFile; result: AnnounceResult | null }[]> {
    const files = await this.folder.share(path);
    for (const file of files) this.addShared(file);
    const results = await this.announce(files.map((f) => f.manifest));
    return files.map((file) => ({
      file,
      result: results?.find((r) => r.fileId.equals(file.manifest.id)) ?? null,
    }));
  }

  /** Stops sharing a file, by name or id (or id prefix). Returns what was unshared. */
  async unshare(nameOrId: string): Promise<SharedFile> {
    const matches = this.sharedFiles().filter((f) => matchesNameOrId(f.manifest, nameOrId));
    if (matches.length === 0)
      throw new SwarmError('ERR_NOT_FOUND', `not sharing anything called "${nameOrId}"`);
    if (matches.length > 1) {
      throw new SwarmError(
        'ERR_AMBIGUOUS_NAME',
        `"${nameOrId}" matches ${matches.length} shared files; use an id`,
      );
    }
    const file = matches[0]!;
    this.shared.delete(fileIdHex(file.manifest.id));
    this.emit('shared-changed');
    await this.discovery.unshare(file.manifest.id);
    this.lan?.announceNow();
    return file;
  }

  private async announce(manifests: Manifest[]): Promise<AnnounceResult[] | null> {
    const results = await this.discovery.announce(manifests);
    this.lan?.announceNow();
    return results;
  }

  private addShared(file: SharedFile): void {
    const key = fileIdHex(file.manifest.id);
    if (!this.shared.has(key) && this.shared.size >= MAX_SHARED_FILES) {
      throw new SwarmError('ERR_LIMIT', `already sharing ${MAX_SHARED_FILES} files`);
    }
    this.shared.set(key, file);
    this.emit('shared-changed');
  }

  /** What a tracker must know after every (re)connection: whole files and partial downloads. */
  private holdings(): { complete: Manifest[]; partial: { fileId: Buffer; indices: number[] }[] } {
    return {
      complete: this.sharedFiles().map((f) => f.manifest),
      partial: this.activeDownloads().map(({ manifest, download }) => ({
        fileId: manifest.id,
        indices: [...download.have.indices()],
      })),
    };
  }

  /** What we hold, as offered to directly connected peers: whole files and partial downloads. */
  private offers(): Offer[] {
    const whole = this.sharedFiles().map(({ manifest }) =>
      offerOf(manifest, Bitfield.full(chunkCount(manifest))),
    );
    const partial = this.activeDownloads().map(({ manifest, download }) => offerOf(manifest, download.have));
    return [...whole, ...partial];
  }

  private manifestOf(fileId: Buffer): Manifest | null {
    const key = fileIdHex(fileId);
    return this.shared.get(key)?.manifest ?? this.downloads.get(key)?.manifest ?? null;
  }

  private async readChunk(fileId: Buffer, index: number): Promise<Buffer | null> {
    const key = fileIdHex(fileId);
    const file = this.shared.get(key);
    if (file) return this.folder.readChunk(file, index);
    const active = this.downloads.get(key);
    if (active) return active.download.readChunk(index);
    return null;
  }

  // ---- Catalog -----------------------------------------------------------------------------------

  /** The files every source knows of (trackers and connected peers), merged. */
  list(query = ''): Promise<CatalogView> {
    return this.discovery.catalog(query);
  }

  /**
   * Resolves what a person typed (a full id, an id prefix of 6+ hex digits, or an exact name) to one
   * catalog entry. Several files with that name: ERR_AMBIGUOUS_NAME listing them.
   */
  async resolve(nameOrId: string): Promise<FileSummary> {
    return resolveInCatalog(await this.list(''), nameOrId, (q) => this.list(q));
  }

  /** The other peers in the swarms of the files we share or download, and the peers we reach directly. */
  async swarmPeers(): Promise<SwarmPeer[]> {
    const files = [
      ...this.sharedFiles().map((f) => f.manifest),
      ...this.activeDownloads().map((d) => d.manifest),
    ];
    const rows: SwarmPeer[] = [];
    const seen = new Set<string>();
    for (const manifest of files.slice(0, MAX_SWARMS_SHOWN)) {
      const sources = await this.discovery.sources(manifest.id).catch(() => []);
      for (const s of sources) {
        seen.add(s.peerId);
        rows.push({
          peerId: s.peerId,
          name: s.name,
          address: formatEndpoint(s),
          file: manifest.name,
          chunks: s.chunks.setCount,
          totalChunks: s.chunks.size,
        });
      }
    }
    for (const peer of this.mesh.peers()) {
      if (seen.has(peer.peerId)) continue;
      rows.push({
        peerId: peer.peerId,
        name: peer.name,
        address: formatEndpoint(peer),
        file: '',
        chunks: 0,
        totalChunks: 0,
      });
    }
    return rows;
  }

  // ---- Downloading -------------------------------------------------------------------------------

  /** Downloads a file by name or id into the folder. Resolves when it is complete and verified. */
  async get(nameOrId: string): Promise<DownloadResult> {
    const target = await this.resolveTarget(nameOrId);
    return this.download(target.id, target.name);
  }

  /**
   * What to download for what a person typed: a full id needs no catalog (it may be past the
   * first page of a large one); a name or id prefix is looked up, and its catalog name kept.
   * A name no file may have (fileNameProblem) is ERR_BAD_NAME: such a file, which only a hostile
   * source lists, is downloaded by its id, and saved under a safe name.
   */
  async resolveTarget(nameOrId: string): Promise<{ id: Buffer; name?: string }> {
    const text = nameOrId.trim();
    if (isFileIdHex(text)) return { id: Buffer.from(text, 'hex') };
    const problem = fileNameProblem(text);
    if (problem) {
      throw new SwarmError(
        'ERR_BAD_NAME',
        `cannot get ${quoteName(text)}: ${problem}; to download a file listed under such a name, give its id`,
      );
    }
    const entry = await this.resolve(text);
    return { id: entry.id, name: entry.name };
  }

  /** Downloads a file; `name` (the one the user chose it by) wins over the name a source gives. */
  async download(fileId: Buffer, name?: string): Promise<DownloadResult> {
    const { finished } = await this.startDownload(fileId, name);
    return finished;
  }

  /**
   * Starts downloading a file into the folder and resolves as soon as it is under way (its
   * manifest found), with the download and a promise of its result, which the caller must handle.
   * Rejects as download() does before that point: already downloading, no manifest anywhere.
   */
  async startDownload(
    fileId: Buffer,
    name?: string,
  ): Promise<{ active: ActiveDownload; finished: Promise<DownloadResult> }> {
    const key = fileIdHex(fileId);
    const alreadyDownloading = (): SwarmError =>
      new SwarmError('ERR_IN_PROGRESS', `already downloading ${key.slice(0, 12)}`);
    if (this.downloads.has(key)) throw alreadyDownloading();
    const found = await this.discovery.manifest(fileId);
    // The name is not part of the id: whichever source answered first chose it, so the name the
    // user picked the file by (a catalog's) wins. Both came from the network: the file is shown,
    // offered and saved under a safe name derived from it (safeFileName; the id if nothing is left).
    const manifest = { ...found, name: safeFileName(name || found.name, fileIdHex(fileId)) };
    // Another call may have started it while the manifest was on its way.
    if (this.downloads.has(key)) throw alreadyDownloading();
    const download = new Download({
      manifest,
      dir: this.folder.dir,
      stateDir: this.folder.stateDir,
      logger: this.logger,
      relocateIntervalMs: this.options.relocateIntervalMs ?? RELOCATE_INTERVAL_MS,
      noSourceTimeoutMs: this.options.noSourceTimeoutMs ?? NO_SOURCE_TIMEOUT_MS,
      findSources: () => this.discovery.sources(fileId),
      credentials: this.credentials,
      self: { name: this.name },
      onChunk: (index, fromPeerId) => {
        this.discovery.have(fileId, index);
        if (fromPeerId) this.received.add(fromPeerId, chunkLength(manifest, index));
      },
      ...this.limitedDownloadOptions(manifest),
      // Every connection of every download pays the one download limiter.
      ...(this.downloadLimiter ? { receiveLimiter: this.downloadLimiter } : {}),
    });
    const active: ActiveDownload = { manifest, download, startedAt: Date.now() };
    this.downloads.set(key, active);
    // Peers connected to us learn at once that we hold (part of) this file.
    this.server.broadcastOffers();
    this.emit('download-started', active);
    return { active, finished: this.runDownload(key, active) };
  }

  /**
   * Under a download limit, the sources of a download share the rate fairly, so their chunks arrive
   * together, each at its share. It uses so many sources that each still delivers a chunk every
   * LIMITED_SOURCE_CHUNK_MS or so (a chunk server drops a client that takes none of its chunks for
   * two minutes), and may go twice as long as that takes without a verified chunk.
   */
  private limitedDownloadOptions(manifest: Manifest): { maxSources?: number; noSourceTimeoutMs?: number } {
    const limit = this.options.downloadLimit;
    if (!limit) return {};
    const chunksInTime = Math.floor((limit * LIMITED_SOURCE_CHUNK_MS) / 1000 / manifest.chunkSize);
    const maxSources = Math.min(Math.max(chunksInTime, 1), MAX_SOURCES_PER_DOWNLOAD);
    const allSourcesMs = ((maxSources * manifest.chunkSize) / limit) * 1000;
    return {
      maxSources,
      noSourceTimeoutMs:
        this.options.noSourceTimeoutMs ?? Math.max(NO_SOURCE_TIMEOUT_MS, Math.ceil(2 * allSourcesMs)),
    };
  }

  private async runDownload(key: string, active: ActiveDownload): Promise<DownloadResult> {
    const { manifest, download } = active;
    try {
      const result = await download.start();
      // The finished file is shared under the name it landed with. Every chunk was verified on
      // arrival, so the manifest is known: no need to hash the file again.
      const file: SharedFile = { manifest: { ...manifest, name: result.name }, path: result.path };
      if (this.downloads.get(key) === active) this.downloads.delete(key);
      this.addShared(file);
      await this.announce([file.manifest]);
      this.emit('download-finished', active, result);
      return result;
    } catch (err) {
      this.emit('download-failed', active, err as Error);
      throw err;
    } finally {
      if (this.downloads.get(key) === active) this.downloads.delete(key);
    }
  }

  /** Pauses a download in progress, by full file id (hex); see Download.pause. */
  pauseDownload(idHex: string): ActiveDownload {
    const active = this.activeDownload(idHex);
    active.download.pause();
    return active;
  }

  /** Resumes a paused download, by full file id (hex). */
  resumeDownload(idHex: string): ActiveDownload {
    const active = this.activeDownload(idHex);
    active.download.resume();
    return active;
  }

  private activeDownload(idHex: string): ActiveDownload {
    const active = this.downloads.get(idHex.toLowerCase());
    if (!active) throw new SwarmError('ERR_NOT_FOUND', `no download in progress with id ${idHex}`);
    return active;
  }

  /** Cancels every download, removing their partial files. */
  cancelDownloads(): void {
    for (const { download } of this.downloads.values()) download.cancel();
  }

  /** Stops every download, keeping their partial files and state for a resume; resolves once saved. */
  async stopDownloads(): Promise<void> {
    await Promise.allSettled([...this.downloads.values()].map(({ download }) => download.stop()));
  }

  describe(): string {
    return `${this.name} (${this.peerIdHex.slice(0, 12)}) serving on ${formatEndpoint(this.listening)}`;
  }

  /**
   * Stops downloads (kept for a resume: getting the file again picks up where it stopped), leaves
   * the trackers, stops serving and discovering. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopDownloads();
    this.hostsWatcher?.close();
    await this.lan?.close();
    await this.discovery.close();
    this.uploadLimiter?.close();
    this.downloadLimiter?.close();
    await this.server.close();
  }
}

function offerOf(manifest: Manifest, chunks: Bitfield): Offer {
  return {
    fileId: manifest.id,
    name: manifest.name,
    size: manifest.size,
    chunkSize: manifest.chunkSize,
    chunks,
  };
}

/** Why a peer name cannot be used (it travels in REGISTER, INFO and LAN offers), or null. */
export function peerNameProblem(name: string): string | null {
  if (name.length === 0) return 'it is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_PEER_NAME_BYTES) return `it is over ${MAX_PEER_NAME_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it contains a control character';
  return null;
}

/** "host-1a2b3c": the host name, cut to fit the wire's limit, and the start of the peer id. */
function defaultPeerName(peerId: Buffer): string {
  const suffix = `-${peerId.toString('hex').slice(0, 6)}`;
  const room = MAX_PEER_NAME_BYTES - suffix.length;
  // eslint-disable-next-line no-control-regex
  let host = os.hostname().replace(/[\u0000-\u001f\u007f]/g, '') || 'peer';
  while (Buffer.byteLength(host, 'utf8') > room) host = host.slice(0, -1);
  return `${host}${suffix}`;
}
