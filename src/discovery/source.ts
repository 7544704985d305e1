/**
 * One mechanism for finding peers, with several sources: each tracker, and the mesh of peers
 * reached directly (known hosts, peer exchange, LAN offers). A download asks every source it has
 * and uses every peer any of them names, so losing one source loses nothing the others know.
 */
import type { SourceInfo } from '../peer/download.js';
import type { Manifest } from '../storage/manifest.js';
import type { AnnounceResult, FileSummary } from '../wire/tracker-messages.js';

export interface DiscoverySource {
  /** For people and logs: "tracker 10.0.0.1:8080", "known peers". */
  readonly label: string;
  /** Whether the source can answer now (a tracker that is down cannot). */
  readonly available: boolean;
  /** Files this source knows of, by name substring (empty: all). */
  catalog(query: string): Promise<FileSummary[]>;
  /** The manifest of a file, validated against its id, or null if this source does not know it. */
  manifest(fileId: Buffer): Promise<Manifest | null>;
  /** Peers that hold chunks of a file, with which chunks. */
  sources(fileId: Buffer): Promise<SourceInfo[]>;
  /** Tells the source what we now hold; results per file where the source judges them. */
  announce(manifests: Manifest[]): Promise<AnnounceResult[] | null>;
  unshare(fileId: Buffer): Promise<void>;
  /** A chunk we have just verified (we are now a source of it). */
  have(fileId: Buffer, index: number): void;
  close(): Promise<void>;
}
