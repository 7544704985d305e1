/** A tracker as a discovery source, over the peer's reconnecting TrackerLink. */
import { formatEndpoint } from '../address.js';
import { MAX_LIST_RESULTS } from '../constants.js';
import { errorCode } from '../errors.js';
import type { SourceInfo } from '../peer/download.js';
import type { Manifest } from '../storage/manifest.js';
import type { TrackerLink } from '../tracker/link.js';
import type { AnnounceResult, FileSummary } from '../wire/tracker-messages.js';
import type { DiscoverySource } from './source.js';

export class TrackerSource implements DiscoverySource {
  readonly label: string;

  constructor(
    readonly link: TrackerLink,
    endpoint: { host: string; port: number },
    private readonly readyTimeoutMs: number,
  ) {
    this.label = `tracker ${formatEndpoint(endpoint)}`;
  }

  get available(): boolean {
    return this.link.client !== null;
  }

  async catalog(query: string): Promise<FileSummary[]> {
    const client = await this.link.ready(this.readyTimeoutMs);
    return (await client.list(query, MAX_LIST_RESULTS)).files;
  }

  async manifest(fileId: Buffer): Promise<Manifest | null> {
    const client = await this.link.ready(this.readyTimeoutMs);
    try {
      return (await client.locate(fileId)).manifest;
    } catch (err) {
      if (errorCode(err) === 'ERR_UNKNOWN_FILE') return null;
      throw err;
    }
  }

  async sources(fileId: Buffer): Promise<SourceInfo[]> {
    // No waiting here: a download polls its sources, and a tracker that is down has none now.
    const client = this.link.client;
    if (!client) return [];
    try {
      const { holders } = await client.locate(fileId);
      return holders.map((h) => ({
        peerId: h.peerId.toString('hex'),
        name: h.name,
        host: h.host,
        port: h.port,
        chunks: h.chunks,
      }));
    } catch (err) {
      if (errorCode(err) === 'ERR_UNKNOWN_FILE') return [];
      throw err;
    }
  }

  announce(manifests: Manifest[]): Promise<AnnounceResult[] | null> {
    return this.link.announce(manifests);
  }

  unshare(fileId: Buffer): Promise<void> {
    return this.link.unshare(fileId);
  }

  have(fileId: Buffer, index: number): void {
    void this.link.have(fileId, [index]);
  }

  close(): Promise<void> {
    return this.link.stop();
  }
}
