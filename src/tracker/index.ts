/** The tracker (index server), its storage interface, and the peer-side client and link. */
export { TrackerServer, type TrackerServerOptions, type TrackerServerStats } from './server.js';
export type {
  TrackerStore,
  PeerRecord,
  PeerSummary,
  PeerListing,
  FileListing,
  FileLocation,
  TrackerStoreStats,
} from './store.js';
export {
  TrackerActivity,
  type CatalogChange,
  type CatalogChangeKind,
  type TrackerCounters,
} from './activity.js';
export { MemoryTrackerStore, type MemoryStoreLimits } from './memory-store.js';
export {
  TrackerClient,
  type TrackerClientOptions,
  type TrackerClientEvents,
  type Registration,
} from './client.js';
export { TrackerLink, type TrackerLinkOptions, type TrackerLinkEvents, type Holdings } from './link.js';
export type { AnnounceResult, FileSummary, Holder } from '../wire/tracker-messages.js';
