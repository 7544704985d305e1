/**
 * The in-process TrackerStore: maps keyed by hex ids, one Bitfield per (peer, file) holding.
 * Registering a chunk is three map lookups and a bit set; a file's seeder count is kept up to date
 * as holdings complete, so listing needs no per-holder work.
 */
import {
  MAX_CHUNKS_PER_PEER,
  MAX_FILES_PER_PEER,
  MAX_MANIFEST_BYTES_PER_PEER,
  MAX_NAMES_PER_FILE,
  MAX_TRACKER_FILES,
  MAX_TRACKER_MANIFEST_BYTES,
  MAX_TRACKER_PEERS,
} from '../constants.js';
import { SwarmError } from '../errors.js';
import { Bitfield } from '../storage/bitfield.js';
import { chunkCount, type Manifest } from '../storage/manifest.js';
import type { FileSummary, Holder } from '../wire/tracker-messages.js';
import type {
  FileListing,
  FileLocation,
  PeerListing,
  PeerRecord,
  PeerSummary,
  TrackerStore,
  TrackerStoreStats,
} from './store.js';

/** Bounds of one store; the defaults are the protocol's limits, tests lower them. */
export interface MemoryStoreLimits {
  maxPeers?: number;
  maxFilesPerPeer?: number;
  /** Chunks of the files one peer holds, added up (each file counted whole: its bitfield's size). */
  maxChunksPerPeer?: number;
  maxFiles?: number;
  maxNamesPerFile?: number;
  /** Manifest hash bytes of the files one peer holds (each file counted whole, once per peer). */
  maxManifestBytesPerPeer?: number;
  /** Manifest hash bytes in the catalog (each file id once). */
  maxManifestBytes?: number;
}

interface PeerEntry {
  record: PeerRecord;
  uploadedBytes: number;
  /** Hex ids of the files this peer holds any chunk of. */
  files: Set<string>;
  /** Manifest hash bytes of those files. */
  manifestBytes: number;
  /** Chunks of those files, added up: the bits of this peer's bitfields. */
  chunks: number;
}

interface Holding {
  peer: PeerEntry;
  chunks: Bitfield;
  /** A copy of `chunks` handed out by locate(), made on demand, dropped when `chunks` changes. */
  snapshot: Bitfield | null;
}

interface FileEntry {
  manifest: Manifest;
  chunkCount: number;
  /** Names in the order they were first shared under; names[0] is the display name. */
  names: string[];
  lowerNames: string[];
  /** Keyed by peer id hex; insertion order is arrival order. */
  holders: Map<string, Holding>;
  /** Holders whose bitfield is complete. */
  seeders: number;
  /** The bitfield handed out by locate() for every complete holder, made on demand. */
  fullSnapshot: Bitfield | null;
}

export class MemoryTrackerStore implements TrackerStore {
  private readonly peers = new Map<string, PeerEntry>();
  private readonly files = new Map<string, FileEntry>();
  private readonly maxPeers: number;
  private readonly maxFilesPerPeer: number;
  private readonly maxChunksPerPeer: number;
  private readonly maxFiles: number;
  private readonly maxNamesPerFile: number;
  private readonly maxManifestBytesPerPeer: number;
  private readonly maxManifestBytes: number;
  /** Manifest hash bytes in the catalog, each file once. */
  private manifestBytes = 0;

  constructor(limits: MemoryStoreLimits = {}) {
    this.maxPeers = limits.maxPeers ?? MAX_TRACKER_PEERS;
    this.maxFilesPerPeer = limits.maxFilesPerPeer ?? MAX_FILES_PER_PEER;
    this.maxChunksPerPeer = limits.maxChunksPerPeer ?? MAX_CHUNKS_PER_PEER;
    this.maxFiles = limits.maxFiles ?? MAX_TRACKER_FILES;
    this.maxNamesPerFile = limits.maxNamesPerFile ?? MAX_NAMES_PER_FILE;
    this.maxManifestBytesPerPeer = limits.maxManifestBytesPerPeer ?? MAX_MANIFEST_BYTES_PER_PEER;
    this.maxManifestBytes = limits.maxManifestBytes ?? MAX_TRACKER_MANIFEST_BYTES;
  }

  async addPeer(peer: PeerRecord): Promise<void> {
    const key = peer.peerId.toString('hex');
    if (this.peers.has(key)) {
      throw new SwarmError('ERR_DUPLICATE_PEER', `peer ${key.slice(0, 12)} is already connected`);
    }
    if (this.peers.size >= this.maxPeers) {
      throw new SwarmError('ERR_LIMIT', `the tracker already has ${this.maxPeers} peers`);
    }
    this.peers.set(key, {
      record: { ...peer, peerId: Buffer.from(peer.peerId) },
      uploadedBytes: 0,
      files: new Set(),
      manifestBytes: 0,
      chunks: 0,
    });
  }

  async removePeer(peerId: Buffer): Promise<boolean> {
    const key = peerId.toString('hex');
    const peer = this.peers.get(key);
    if (!peer) return false;
    for (const fileKey of peer.files) this.dropHolding(key, fileKey);
    this.peers.delete(key);
    return true;
  }

  async shareFile(peerId: Buffer, manifest: Manifest): Promise<void> {
    const peerKey = peerId.toString('hex');
    const peer = this.requirePeer(peerKey);
    const fileKey = manifest.id.toString('hex');
    let file = this.files.get(fileKey);
    if (!file) {
      if (this.files.size >= this.maxFiles) {
        throw new SwarmError('ERR_LIMIT', `the tracker already lists ${this.maxFiles} files`);
      }
      const bytes = manifest.hashes.length;
      this.checkPeerRoom(peer, fileKey, bytes, chunkCount(manifest));
      if (this.manifestBytes + bytes > this.maxManifestBytes) {
        throw new SwarmError(
          'ERR_LIMIT',
          `the tracker's catalog is full: ${this.maxManifestBytes} bytes of manifests at most`,
        );
      }
      this.manifestBytes += bytes;
      file = {
        manifest: { ...manifest, id: Buffer.from(manifest.id), hashes: Buffer.from(manifest.hashes) },
        chunkCount: chunkCount(manifest),
        names: [],
        lowerNames: [],
        holders: new Map(),
        seeders: 0,
        fullSnapshot: null,
      };
      this.files.set(fileKey, file);
    } else {
      this.checkPeerRoom(peer, fileKey, file.manifest.hashes.length, file.chunkCount);
    }
    this.addName(file, manifest.name);
    if (file.holders.get(peerKey)?.chunks.complete) return;
    // A new holding counts as incomplete even when the file has no chunks at all.
    const holding = this.holdingOf(file, peer, peerKey, fileKey);
    holding.chunks = Bitfield.full(file.chunkCount);
    holding.snapshot = null;
    file.seeders++;
  }

  async addChunks(peerId: Buffer, fileId: Buffer, indices: readonly number[]): Promise<void> {
    const peerKey = peerId.toString('hex');
    const peer = this.requirePeer(peerKey);
    const fileKey = fileId.toString('hex');
    const file = this.files.get(fileKey);
    if (!file) throw new SwarmError('ERR_UNKNOWN_FILE', `no file ${fileKey.slice(0, 12)} on this tracker`);
    // Check every index before recording any, so a bad request changes nothing.
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= file.chunkCount) {
        throw new SwarmError(
          'ERR_UNKNOWN_CHUNK',
          `chunk ${index} is out of range: file ${fileKey.slice(0, 12)} has ${file.chunkCount} chunks`,
        );
      }
    }
    if (indices.length === 0) return;
    this.checkPeerRoom(peer, fileKey, file.manifest.hashes.length, file.chunkCount);
    const holding = this.holdingOf(file, peer, peerKey, fileKey);
    if (holding.chunks.complete) return;
    let added = false;
    for (const index of indices) added = holding.chunks.set(index) || added;
    if (added) holding.snapshot = null;
    if (holding.chunks.complete) file.seeders++;
  }

  async removeHolding(peerId: Buffer, fileId: Buffer): Promise<boolean> {
    const peerKey = peerId.toString('hex');
    const fileKey = fileId.toString('hex');
    const peer = this.peers.get(peerKey);
    if (!peer?.files.has(fileKey)) return false;
    this.dropHolding(peerKey, fileKey);
    return true;
  }

  async listFiles(query: string, limit: number): Promise<FileListing> {
    const needle = query.toLowerCase();
    const files: FileSummary[] = [];
    let total = 0;
    for (const file of this.files.values()) {
      if (needle && !file.lowerNames.some((name) => name.includes(needle))) continue;
      total++;
      if (files.length < limit) files.push(summaryOf(file));
    }
    return { total, files };
  }

  async locate(fileId: Buffer, maxHolders: number): Promise<FileLocation | null> {
    const file = this.files.get(fileId.toString('hex'));
    if (!file) return null;
    // Array.prototype.sort is stable: ties keep arrival order.
    const best = [...file.holders.values()]
      .sort((a, b) => b.chunks.setCount - a.chunks.setCount)
      .slice(0, Math.max(0, maxHolders));
    const holders: Holder[] = best.map((holding) => ({
      peerId: Buffer.from(holding.peer.record.peerId),
      name: holding.peer.record.name,
      host: holding.peer.record.host,
      port: holding.peer.record.port,
      chunks: this.snapshotOf(file, holding),
    }));
    const { manifest } = file;
    return {
      manifest: {
        id: Buffer.from(manifest.id),
        name: file.names[0]!,
        size: manifest.size,
        chunkSize: manifest.chunkSize,
        // Shared, never written: up to 2 MiB that every locate would otherwise copy.
        hashes: manifest.hashes,
      },
      holders,
    };
  }

  async setUploadedBytes(peerId: Buffer, bytes: number): Promise<boolean> {
    const peer = this.peers.get(peerId.toString('hex'));
    if (!peer) return false;
    peer.uploadedBytes = bytes;
    return true;
  }

  async listPeers(limit: number): Promise<PeerListing> {
    const peers: PeerSummary[] = [];
    for (const entry of this.peers.values()) {
      if (peers.length >= limit) break;
      const { record } = entry;
      peers.push({
        ...record,
        peerId: Buffer.from(record.peerId),
        connectedAt: record.connectedAt ?? 0,
        uploadedBytes: entry.uploadedBytes,
        files: entry.files.size,
      });
    }
    return { total: this.peers.size, peers };
  }

  async stats(): Promise<TrackerStoreStats> {
    return { peers: this.peers.size, files: this.files.size };
  }

  /** Manifest hash bytes in the catalog (each file once), and those of one peer's files. */
  manifestUsage(peerId?: Buffer): { catalog: number; peer: number } {
    const peer = peerId ? this.peers.get(peerId.toString('hex')) : undefined;
    return { catalog: this.manifestBytes, peer: peer?.manifestBytes ?? 0 };
  }

  /**
   * The read-only bitfield locate() hands out for a holding. Building a Bitfield costs a pass over
   * every bit, and a popular file is located over and over, so copies are made once per change.
   */
  private snapshotOf(file: FileEntry, holding: Holding): Bitfield {
    if (holding.chunks.complete) return (file.fullSnapshot ??= Bitfield.full(file.chunkCount));
    return (holding.snapshot ??= new Bitfield(holding.chunks.size, holding.chunks.bytes));
  }

  private requirePeer(peerKey: string): PeerEntry {
    const peer = this.peers.get(peerKey);
    if (!peer) throw new SwarmError('ERR_NOT_REGISTERED', `peer ${peerKey.slice(0, 12)} is not registered`);
    return peer;
  }

  /** Refuses a new holding (of a file with `bytes` of hashes in `chunks` chunks) beyond the peer's limits. */
  private checkPeerRoom(peer: PeerEntry, fileKey: string, bytes: number, chunks: number): void {
    if (peer.files.has(fileKey)) return;
    if (peer.files.size >= this.maxFilesPerPeer) {
      throw new SwarmError('ERR_LIMIT', `a peer may share at most ${this.maxFilesPerPeer} files`);
    }
    if (peer.chunks + chunks > this.maxChunksPerPeer) {
      throw new SwarmError(
        'ERR_LIMIT',
        `a peer's files may have at most ${this.maxChunksPerPeer} chunks in all (this one has ${chunks}, ` +
          `the peer's others ${peer.chunks})`,
      );
    }
    if (peer.manifestBytes + bytes > this.maxManifestBytesPerPeer) {
      throw new SwarmError(
        'ERR_LIMIT',
        `a peer's files may have at most ${this.maxManifestBytesPerPeer} bytes of manifests`,
      );
    }
  }

  private addName(file: FileEntry, name: string): void {
    if (file.names.length >= this.maxNamesPerFile || file.names.includes(name)) return;
    file.names.push(name);
    file.lowerNames.push(name.toLowerCase());
  }

  private holdingOf(file: FileEntry, peer: PeerEntry, peerKey: string, fileKey: string): Holding {
    let holding = file.holders.get(peerKey);
    if (!holding) {
      holding = { peer, chunks: new Bitfield(file.chunkCount), snapshot: null };
      file.holders.set(peerKey, holding);
      peer.files.add(fileKey);
      peer.manifestBytes += file.manifest.hashes.length;
      peer.chunks += file.chunkCount;
    }
    return holding;
  }

  private dropHolding(peerKey: string, fileKey: string): void {
    const peer = this.peers.get(peerKey);
    const file = this.files.get(fileKey);
    if (peer?.files.delete(fileKey) && file) {
      peer.manifestBytes -= file.manifest.hashes.length;
      peer.chunks -= file.chunkCount;
    }
    const holding = file?.holders.get(peerKey);
    if (!file || !holding) return;
    file.holders.delete(peerKey);
    if (holding.chunks.complete) file.seeders--;
    if (file.holders.size === 0) {
      this.files.delete(fileKey);
      this.manifestBytes -= file.manifest.hashes.length;
    }
  }
}

function summaryOf(file: FileEntry): FileSummary {
  return {
    id: Buffer.from(file.manifest.id),
    name: file.names[0]!,
    size: file.manifest.size,
    chunks: file.chunkCount,
    seeders: file.seeders,
    peers: file.holders.size,
  };
}
