/**
 * A file's chunk availability as the tracker knows it: for each chunk, how many live peers hold it,
 * and for the peers holding the most, which chunks each holds. Compact enough to send as JSON many
 * times a second: counts as numbers, each peer's chunks as its bitfield in base64 (chunk 0 in the
 * high bit of the first byte, as on the wire).
 */
import { formatEndpoint } from '../address.js';
import { MAX_TRACKER_PEERS } from '../constants.js';
import { chunkCount } from '../storage/manifest.js';
import type { TrackerStore } from '../tracker/store.js';

/** Rows of the peers × chunks map: enough for a small swarm, bounded for a large one. */
export const MAX_MAP_ROWS = 64;

export interface AvailabilityRow {
  peerId: string;
  name: string;
  address: string;
  /** Chunks it holds. */
  chunks: number;
  /** Its bitfield, base64. */
  bitfield: string;
}

export interface FileAvailability {
  id: string;
  name: string;
  size: number;
  chunkSize: number;
  chunks: number;
  /** Live peers holding any chunk. */
  holders: number;
  /** Live peers holding every chunk. */
  seeders: number;
  /** For each chunk, the live peers holding it. */
  counts: number[];
  /** The fewest holders of any chunk (0: some chunk is nowhere). */
  minCount: number;
  /** Chunks held by at least one live peer. */
  chunksAvailable: number;
  /** The holders with the most chunks, at most MAX_MAP_ROWS. */
  peers: AvailabilityRow[];
}

/** The availability of a file, or null when it is not in the catalog. */
export async function fileAvailability(
  store: TrackerStore,
  fileId: Buffer,
  maxRows = MAX_MAP_ROWS,
): Promise<FileAvailability | null> {
  const location = await store.locate(fileId, MAX_TRACKER_PEERS);
  if (!location) return null;
  const { manifest, holders } = location;
  const total = chunkCount(manifest);
  const counts = new Array<number>(total).fill(0);
  let everywhere = 0;
  let seeders = 0;
  for (const holder of holders) {
    if (holder.chunks.complete) {
      // The common case costs nothing per chunk.
      everywhere++;
      seeders++;
      continue;
    }
    for (const index of holder.chunks.indices()) counts[index]!++;
  }
  let minCount = total > 0 ? Infinity : 0;
  let chunksAvailable = 0;
  for (let i = 0; i < total; i++) {
    const count = counts[i]! + everywhere;
    counts[i] = count;
    if (count < minCount) minCount = count;
    if (count > 0) chunksAvailable++;
  }
  return {
    id: manifest.id.toString('hex'),
    name: manifest.name,
    size: manifest.size,
    chunkSize: manifest.chunkSize,
    chunks: total,
    holders: holders.length,
    seeders,
    counts,
    minCount,
    chunksAvailable,
    // locate() lists the holders with the most chunks first.
    peers: holders.slice(0, maxRows).map((holder) => ({
      peerId: holder.peerId.toString('hex'),
      name: holder.name,
      address: formatEndpoint(holder),
      chunks: holder.chunks.setCount,
      bitfield: holder.chunks.bytes.toString('base64'),
    })),
  };
}
