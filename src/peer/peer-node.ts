/**
 * A running peer: the shared folder, the chunk server, the link to the tracker and the downloads,
 * tied together. The CLI's `peer` command, the shell, the one-shot `get` and the demo all drive
 * this one class; it holds no user-interface logic.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { formatEndpoint, type Endpoint } from '../address.js';
import {
  MAX_LIST_RESULTS,
  MAX_SHARED_FILES,
  RELOCATE_INTERVAL_MS,
  NO_SOURCE_TIMEOUT_MS,
} from '../constants.js';
import { SwarmError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { loadOrCreateIdentity } from '../storage/identity.js';
import { fileIdHex, isFileIdHex, type Manifest } from '../storage/manifest.js';
import { SharedFolder, type SharedFile } from '../storage/shared-folder.js';
import { TrackerLink } from '../tracker/link.js';
import type { AnnounceResult, FileSummary } from '../wire/tracker-messages.js';
import { ChunkServer } from './chunk-server.js';
import { Download, type DownloadResult, type SourceInfo } from './download.js';

export interface PeerNodeOptions {
  /** The folder whose files are shared and where downloads land. */
  dir: string;
  /** Tracker to register with; without one the peer only serves connections made to it. */
  tracker?: Endpoint;
  /** Address and port the chunk server listens on (port 0: any free port). */
  host?: string;
  port?: number;
  /** A human name shown to other peers. */
  name?: string;
  /** Share every file in `dir` at start (the `peer` command); off for a one-shot `get`. */
  shareOnStart?: boolean;
  /** Use a throw-away peer id instead of the one persisted in the state folder. */
  ephemeralIdentity?: boolean;
  logger?: Logger;
  /** Tuning for tests and the demo. */
  relocateIntervalMs?: number;
  noSourceTimeoutMs?: number;
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
  'tracker-up': [];
  'tracker-down': [Error | undefined];
}

export interface SwarmPeer {
  peerId: string;
  name: string;
  address: string;
  file: string;
  chunks: number;
  totalChunks: number;
}

/** `peers` asks the tracker about at most this many of our files. */
const MAX_SWARMS_SHOWN = 50;

/** A file in the catalog, resolved from a name or id typed by a person. */
export type CatalogEntry = FileSummary;

export class PeerNode extends EventEmitter<PeerNodeEvents> {
  readonly folder: SharedFolder;
  readonly peerId: Buffer;
  readonly name: string;
  readonly logger: Logger;
  private readonly server: ChunkServer;
  private link: TrackerLink | null = null;
  private readonly shared = new Map<string, SharedFile>();
  private readonly downloads = new Map<string, ActiveDownload>();
  private listening: Endpoint = { host: '', port: 0 };
  private closed = false;

  private constructor(
    folder: SharedFolder,
    peerId: Buffer,
    private readonly options: PeerNodeOptions,
  ) {
    super();
    this.folder = folder;
    this.peerId = peerId;
    this.name = options.name ?? `${os.hostname()}-${peerId.toString('hex').slice(0, 6)}`;
    this.logger = options.logger ?? silentLogger();
    this.server = new ChunkServer({
      provider: (fileId, index) => this.readChunk(fileId, index),
      logger: this.logger,
    });
  }

  /** Opens the folder, starts serving, connects to the tracker and (optionally) shares the folder. */
  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const folder = await SharedFolder.open(options.dir, { logger: options.logger });
    const peerId = options.ephemeralIdentity
      ? randomBytes(32)
      : (await loadOrCreateIdentity(folder.stateDir)).peerId;
    const node = new PeerNode(folder, peerId, options);
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
    if (this.options.shareOnStart !== false) {
      for (const file of await this.folder.scan()) this.addShared(file);
    }
    const tracker = this.options.tracker;
    if (tracker) {
      // Created only now: the link registers the chunk server's port, known once it listens.
      const link = new TrackerLink({
        host: tracker.host,
        port: tracker.port,
        identity: { peerId: this.peerId, name: this.name, port: this.listening.port },
        logger: this.logger,
        holdings: () => this.holdings(),
      });
      link.on('up', () => this.emit('tracker-up'));
      link.on('down', (reason) => {
        if (!this.closed) this.emit('tracker-down', reason);
      });
      this.link = link;
      link.start();
    }
  }

  get peerIdHex(): string {
    return this.peerId.toString('hex');
  }

  /** Where the chunk server listens. */
  get address(): Endpoint {
    return this.listening;
  }

  get trackerConnected(): boolean {
    return this.link?.client != null;
  }

  /** Waits until the tracker session is registered (and holdings announced). */
  async trackerReady(timeoutMs = 10_000): Promise<void> {
    await this.requireLink().ready(timeoutMs);
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

  /** Shares a file or folder inside the peer's folder and announces it. */
  async share(path: string): Promise<{ file: SharedFile; result: AnnounceResult | null }[]> {
    const files = await this.folder.share(path);
    for (const file of files) this.addShared(file);
    const results = this.link ? await this.link.announce(files.map((f) => f.manifest)) : null;
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
    await this.link?.unshare(file.manifest.id);
    return file;
  }

  private addShared(file: SharedFile): void {
    const key = fileIdHex(file.manifest.id);
    if (!this.shared.has(key) && this.shared.size >= MAX_SHARED_FILES) {
      throw new SwarmError('ERR_LIMIT', `already sharing ${MAX_SHARED_FILES} files`);
    }
    this.shared.set(key, file);
  }

  /** What the tracker must know after every (re)connection: whole files and partial downloads. */
  private holdings(): { complete: Manifest[]; partial: { fileId: Buffer; indices: number[] }[] } {
    return {
      complete: this.sharedFiles().map((f) => f.manifest),
      partial: this.activeDownloads().map(({ manifest, download }) => ({
        fileId: manifest.id,
        indices: [...download.have.indices()],
      })),
    };
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

  async list(query = ''): Promise<{ total: number; files: FileSummary[] }> {
    const client = await this.requireLink().ready();
    return client.list(query, MAX_LIST_RESULTS);
  }

  /**
   * Resolves what a person typed (a full id, an id prefix of 6+ hex digits, or an exact name) to one
   * catalog entry. Several files with that name: ERR_AMBIGUOUS_NAME listing them.
   */
  async resolve(nameOrId: string): Promise<CatalogEntry> {
    const client = await this.requireLink().ready();
    return resolveInCatalog(await client.list('', MAX_LIST_RESULTS), nameOrId, (q) =>
      client.list(q, MAX_LIST_RESULTS),
    );
  }

  /** The other peers in the swarms of the files we share or download, as the tracker sees them. */
  async swarmPeers(): Promise<SwarmPeer[]> {
    const client = await this.requireLink().ready();
    const files = [
      ...this.sharedFiles().map((f) => f.manifest),
      ...this.activeDownloads().map((d) => d.manifest),
    ];
    const rows: SwarmPeer[] = [];
    for (const manifest of files.slice(0, MAX_SWARMS_SHOWN)) {
      const { holders } = await client.locate(manifest.id).catch(() => ({ holders: [] }));
      for (const h of holders) {
        if (h.peerId.equals(this.peerId)) continue;
        rows.push({
          peerId: h.peerId.toString('hex'),
          name: h.name,
          address: formatEndpoint(h),
          file: manifest.name,
          chunks: h.chunks.setCount,
          totalChunks: h.chunks.size,
        });
      }
    }
    return rows;
  }

  // ---- Downloading -------------------------------------------------------------------------------

  /** Downloads a file by name or id into the folder. Resolves when it is complete and verified. */
  async get(nameOrId: string): Promise<DownloadResult> {
    const entry = await this.resolve(nameOrId);
    return this.download(entry.id);
  }

  async download(fileId: Buffer): Promise<DownloadResult> {
    const key = fileIdHex(fileId);
    if (this.downloads.has(key))
      throw new SwarmError('ERR_INVALID_ARGUMENT', `already downloading ${key.slice(0, 12)}`);
    const link = this.requireLink();
    const client = await link.ready();
    const { manifest } = await client.locate(fileId);
    const download = new Download({
      manifest,
      dir: this.folder.dir,
      stateDir: this.folder.stateDir,
      logger: this.logger,
      relocateIntervalMs: this.options.relocateIntervalMs ?? RELOCATE_INTERVAL_MS,
      noSourceTimeoutMs: this.options.noSourceTimeoutMs ?? NO_SOURCE_TIMEOUT_MS,
      findSources: () => this.findSources(fileId),
      onChunk: (index) => {
        void link.have(fileId, [index]);
      },
    });
    const active: ActiveDownload = { manifest, download, startedAt: Date.now() };
    this.downloads.set(key, active);
    this.emit('download-started', active);
    try {
      const result = await download.start();
      // The finished file is shared under the name it landed with. Every chunk was verified on
      // arrival, so the manifest is known: no need to hash the file again.
      const file: SharedFile = { manifest: { ...manifest, name: result.name }, path: result.path };
      this.addShared(file);
      await link.announce([file.manifest]);
      this.emit('download-finished', active, result);
      return result;
    } catch (err) {
      this.emit('download-failed', active, err as Error);
      throw err;
    } finally {
      this.downloads.delete(key);
    }
  }

  private async findSources(fileId: Buffer): Promise<SourceInfo[]> {
    const client = this.link?.client;
    if (!client) return [];
    const { holders } = await client.locate(fileId);
    return holders
      .filter((h) => !h.peerId.equals(this.peerId))
      .map((h) => ({
        peerId: h.peerId.toString('hex'),
        name: h.name,
        host: h.host,
        port: h.port,
        chunks: h.chunks,
      }));
  }

  cancelDownloads(): void {
    for (const { download } of this.downloads.values()) download.cancel();
  }

  private requireLink(): TrackerLink {
    if (!this.link) throw new SwarmError('ERR_INVALID_ARGUMENT', 'this peer has no tracker');
    return this.link;
  }

  describe(): string {
    return `${this.name} (${this.peerIdHex.slice(0, 12)}) serving on ${formatEndpoint(this.listening)}`;
  }

  /** Leaves the tracker, stops serving and cancels downloads. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelDownloads();
    await this.link?.stop();
    await this.server.close();
  }
}

function matchesNameOrId(manifest: Manifest, nameOrId: string): boolean {
  const hex = fileIdHex(manifest.id);
  if (/^[0-9a-f]{6,64}$/i.test(nameOrId) && hex.startsWith(nameOrId.toLowerCase())) return true;
  return manifest.name === nameOrId;
}

/**
 * Picks one catalog entry for a name or id: a full id or unique id prefix wins; otherwise the
 * files named exactly so. The catalog search narrows by name on the tracker for large catalogs.
 */
export async function resolveInCatalog(
  catalog: { files: FileSummary[] },
  nameOrId: string,
  search: (query: string) => Promise<{ files: FileSummary[] }>,
): Promise<FileSummary> {
  const text = nameOrId.trim();
  if (!text) throw new SwarmError('ERR_INVALID_ARGUMENT', 'give a file name or id');
  if (/^[0-9a-f]{6,64}$/i.test(text)) {
    const byId = catalog.files.filter((f) => fileIdHex(f.id).startsWith(text.toLowerCase()));
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1 && !isFileIdHex(text)) {
      throw new SwarmError(
        'ERR_AMBIGUOUS_NAME',
        `id prefix "${text}" matches ${byId.length} files; give more digits`,
      );
    }
  }
  const named = (await search(text)).files.filter((f) => f.name === text);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    const lines = named.map((f) => `  ${fileIdHex(f.id)}  ${f.size} bytes, ${f.seeders} sources`).join('\n');
    throw new SwarmError(
      'ERR_AMBIGUOUS_NAME',
      `"${text}" names ${named.length} different files; choose one by id:\n${lines}`,
    );
  }
  throw new SwarmError('ERR_NOT_FOUND', `no file named "${text}" in the catalog`);
}
