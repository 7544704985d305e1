/**
 * The peers we reach directly (known hosts, peer exchange, LAN offers, peers that connected to
 * us) as a discovery source. What we hold reaches them through our chunk server, which pushes
 * OFFERS and HAVE messages to every peer connected to it.
 */
import { errorCode } from '../errors.js';
import type { ChunkServer } from '../peer/chunk-server.js';
import type { SourceInfo } from '../peer/download.js';
import type { Manifest } from '../storage/manifest.js';
import type { FileSummary } from '../wire/tracker-messages.js';
import type { PeerMesh } from './mesh.js';
import type { DiscoverySource } from './source.js';

export class MeshSource implements DiscoverySource {
  readonly label = 'known peers';
  readonly available = true;

  constructor(
    readonly mesh: PeerMesh,
    private readonly server: ChunkServer,
  ) {}

  async catalog(query: string): Promise<FileSummary[]> {
    return this.mesh.catalog(query);
  }

  async manifest(fileId: Buffer): Promise<Manifest | null> {
    try {
      return await this.mesh.fetchManifest(fileId);
    } catch (err) {
      if (errorCode(err) === 'ERR_NOT_FOUND') return null;
      throw err;
    }
  }

  async sources(fileId: Buffer): Promise<SourceInfo[]> {
    return this.mesh.sources(fileId);
  }

  async announce(): Promise<null> {
    this.server.broadcastOffers();
    return null;
  }

  async unshare(): Promise<void> {
    this.server.broadcastOffers();
  }

  have(fileId: Buffer, index: number): void {
    this.server.broadcastHave(fileId, index);
  }

  async close(): Promise<void> {
    this.mesh.close();
  }
}
