/**
 * The tracker's catalog behind a narrow, asynchronous interface, so that several tracker instances
 * can later serve one swarm from a shared store (Redis) without the server changing.
 *
 * What the store knows: live peers (with the address the tracker saw), the manifest of every file
 * some live peer holds, and which chunks each peer holds. What it does not know: sessions, timers,
 * heartbeats. Keeping peers alive or expiring them is the server's business; it calls removePeer.
 *
 * Invariants every implementation keeps:
 * - a file is in the catalog exactly while at least one live peer holds at least one of its chunks
 *   (the last holder leaving frees the manifest);
 * - holdings belong to live peers only: every call that adds a holding refuses an unknown peer
 *   (ERR_NOT_REGISTERED), atomically with the addition, so a late request cannot resurrect a peer
 *   that was just removed;
 * - memory is bounded by count (peers, files per peer, chunks per peer, files, names per file) and
 *   by manifest bytes (the 32-byte chunk hashes): a file's manifest is stored and counted once per
 *   file id, however many peers hold it, and counted whole against each peer holding any of it (so a
 *   peer can make the tracker keep at most its own budget of manifests that nobody else holds); its
 *   bytes are given back when the holding goes and when the file leaves the catalog. Past a bound,
 *   the call that would add a file or a holding is refused with ERR_LIMIT and changes nothing;
 * - nothing returned aliases mutable internal state: the store never changes what it handed out.
 *   locate() results may share immutable data between callers (a popular file's hashes and
 *   bitfields are not copied for every request), so callers treat them as read-only.
 */
import type { Manifest } from '../storage/manifest.js';
import type { FileSummary, Holder } from '../wire/tracker-messages.js';

/** A live peer as the tracker records it. */
export interface PeerRecord {
  peerId: Buffer;
  name: string;
  /** The address the tracker saw the peer connect from, never one the peer claimed. */
  host: string;
  /** The port the peer says it serves chunks on. */
  port: number;
  /** When the peer registered (ms since the epoch), set by its session; 0 if unknown. */
  connectedAt?: number;
}

/** A live peer as dashboards show it. */
export interface PeerSummary extends PeerRecord {
  connectedAt: number;
  /** Chunk bytes the peer says (in its latest heartbeat) it has sent to other peers. */
  uploadedBytes: number;
  /** Files it holds any chunk of. */
  files: number;
}

/** A page of the live peers: `total` counts them all, `peers` at most the limit asked for. */
export interface PeerListing {
  total: number;
  peers: PeerSummary[];
}

/** A page of the catalog: `total` counts every match, `files` at most the limit asked for. */
export interface FileListing {
  total: number;
  files: FileSummary[];
}

/** A file's manifest and the live peers holding any of its chunks. */
export interface FileLocation {
  manifest: Manifest;
  holders: Holder[];
}

export interface TrackerStoreStats {
  peers: number;
  files: number;
}

export interface TrackerStore {
  /**
   * Records a live peer. Rejects ERR_DUPLICATE_PEER if a live peer already has this id, and
   * ERR_LIMIT when the tracker is full.
   */
  addPeer(peer: PeerRecord): Promise<void>;

  /** Forgets a peer and everything it holds. Resolves false if it was not known. */
  removePeer(peerId: Buffer): Promise<boolean>;

  /**
   * Records that `peerId` holds every chunk of `manifest`, already validated by the caller (the
   * session: validateManifest, and the tracker's chunk-size rule). The first manifest stored for a
   * file id is kept (same id means same hashes); the name is added to the file's names (at most
   * MAX_NAMES_PER_FILE, the first is the display name). Rejects ERR_NOT_REGISTERED for an unknown
   * peer, ERR_LIMIT when the peer or the catalog is full, by count (files, chunks) or by manifest bytes
   * (MAX_MANIFEST_BYTES_PER_PEER, MAX_TRACKER_MANIFEST_BYTES).
   */
  shareFile(peerId: Buffer, manifest: Manifest): Promise<void>;

  /**
   * Records that `peerId` now holds these chunks of a known file (a downloader becoming a source).
   * Rejects ERR_UNKNOWN_FILE, ERR_UNKNOWN_CHUNK (index out of range; nothing is recorded then),
   * ERR_NOT_REGISTERED, ERR_LIMIT (a new holding past the peer's file, chunk or manifest-byte bound).
   */
  addChunks(peerId: Buffer, fileId: Buffer, indices: readonly number[]): Promise<void>;

  /**
   * Forgets that `peerId` holds anything of `fileId`. Resolves false if it held nothing of it.
   * A file left with no holder is dropped from the catalog.
   */
  removeHolding(peerId: Buffer, fileId: Buffer): Promise<boolean>;

  /**
   * Files with a name containing `query` (case-insensitive; empty matches all), in catalog order,
   * at most `limit` of them. `seeders` counts live peers holding every chunk, `peers` any chunk.
   */
  listFiles(query: string, limit: number): Promise<FileListing>;

  /**
   * The manifest and at most `maxHolders` holders of a file, those with more chunks first;
   * null for a file not in the catalog. The manifest's name is the file's display name.
   * The result is a read-only snapshot (see above).
   */
  locate(fileId: Buffer, maxHolders: number): Promise<FileLocation | null>;

  /**
   * Records the chunk bytes a peer says it has uploaded (from its heartbeat; the tracker never sees
   * transfers). Resolves false for an unknown peer, recording nothing.
   */
  setUploadedBytes(peerId: Buffer, bytes: number): Promise<boolean>;

  /** Live peers in the order they registered, at most `limit` of them; `total` counts all. */
  listPeers(limit: number): Promise<PeerListing>;

  stats(): Promise<TrackerStoreStats>;
}
