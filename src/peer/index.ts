/** The peer data plane: serving chunks, fetching them, and multi-source downloads. */
export { ChunkServer, serveFileChunk } from './chunk-server.js';
export type { ChunkProvider, ChunkServerOptions, ChunkServerStats } from './chunk-server.js';
export { PeerClient } from './peer-client.js';
export type { PeerClientEvents, PeerClientOptions } from './peer-client.js';
export { Download } from './download.js';
export type {
  BanReason,
  DownloadEvents,
  DownloadOptions,
  DownloadProgress,
  DownloadResult,
  SourceBan,
  SourceInfo,
  SourceLostReason,
} from './download.js';
export { PeerNode, resolveInCatalog } from './peer-node.js';
export type { ActiveDownload, PeerNodeEvents, PeerNodeOptions, SwarmPeer } from './peer-node.js';
