/**
 * What the peers of a mesh offer, summed up: the catalog (one entry per file, with how many peers
 * hold all of it and how many hold some) and the sources of one file, in the shapes the tracker's
 * catalog and a Download use.
 */
import type { SourceInfo } from '../peer/download.js';
import { Bitfield } from '../storage/bitfield.js';
import type { Offer } from '../wire/peer-messages.js';
import type { FileSummary } from '../wire/tracker-messages.js';

/** A connected peer as the catalog sees it. */
export interface OfferingPeer {
  peerId: string;
  name: string;
  host: string;
  port: number;
  offers: ReadonlyMap<string, Offer>;
}

/**
 * One entry per file some peer holds a chunk of, whose name contains `query` (case-insensitive;
 * empty: all), sorted by name then id. A file offered with no chunk yet (a download just started) is
 * not listed. A file's size comes from the first peer offering it; offers of the same id with another
 * size or chunk size (a lie: the id covers both) are not counted.
 */
export function catalogOf(peers: Iterable<OfferingPeer>, query = ''): FileSummary[] {
  const needle = query.toLowerCase();
  const entries = new Map<string, { summary: FileSummary; chunkSize: number; matches: boolean }>();
  for (const peer of peers) {
    for (const [key, offer] of peer.offers) {
      let entry = entries.get(key);
      if (!entry) {
        const summary: FileSummary = {
          id: Buffer.from(offer.fileId),
          name: offer.name,
          size: offer.size,
          chunks: offer.chunks.size,
          seeders: 0,
          peers: 0,
        };
        entry = { summary, chunkSize: offer.chunkSize, matches: false };
        entries.set(key, entry);
      }
      if (offer.size !== entry.summary.size || offer.chunkSize !== entry.chunkSize) continue;
      if (!entry.matches && offer.name.toLowerCase().includes(needle)) entry.matches = true;
      if (offer.chunks.complete) entry.summary.seeders++;
      if (offer.chunks.complete || offer.chunks.setCount > 0) entry.summary.peers++;
    }
  }
  return [...entries.values()]
    .filter((entry) => entry.matches && entry.summary.peers > 0)
    .map((entry) => entry.summary)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id.compare(b.id)));
}

/** The peers offering at least one chunk of `fileId`, each with a copy of its bitfield. */
export function sourcesOf(peers: Iterable<OfferingPeer>, fileId: Buffer): SourceInfo[] {
  const key = fileId.toString('hex');
  const sources: SourceInfo[] = [];
  for (const peer of peers) {
    const offer = peer.offers.get(key);
    if (!offer || offer.chunks.setCount === 0) continue;
    sources.push({
      peerId: peer.peerId,
      name: peer.name,
      host: peer.host,
      port: peer.port,
      chunks: new Bitfield(offer.chunks.size, offer.chunks.bytes),
    });
  }
  return sources;
}
