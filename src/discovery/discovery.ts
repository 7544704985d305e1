/**
 * The union of every discovery source a peer has. A catalog is merged by file id; the sources
 * of a file are merged by peer id (their chunk bitfields OR-ed: each source may know more
 * recent chunks); a source that fails is logged and skipped, so one tracker going down loses
 * nothing another source knows.
 */
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { SourceInfo } from '../peer/download.js';
import { Bitfield } from '../storage/bitfield.js';
import { fileIdHex, validateManifestContent, type Manifest } from '../storage/manifest.js';
import type { AnnounceResult, FileSummary } from '../wire/tracker-messages.js';
import type { DiscoverySource } from './source.js';

export interface CatalogView {
  files: FileSummary[];
  /** Sources that could not answer, with why. */
  failures: { label: string; error: Error }[];
}

export class Discovery {
  private readonly all: DiscoverySource[] = [];
  private readonly logger: Logger;

  constructor(
    private readonly selfPeerId: Buffer,
    logger?: Logger,
  ) {
    this.logger = logger ?? silentLogger();
  }

  add(source: DiscoverySource): void {
    this.all.push(source);
  }

  get sourcesList(): readonly DiscoverySource[] {
    return this.all;
  }

  /** Calls `fn` on every source at once; failures are collected, not thrown. */
  private async each<T>(
    fn: (source: DiscoverySource) => Promise<T>,
  ): Promise<{ results: { source: DiscoverySource; value: T }[]; failures: CatalogView['failures'] }> {
    const settled = await Promise.allSettled(this.all.map(fn));
    const results: { source: DiscoverySource; value: T }[] = [];
    const failures: CatalogView['failures'] = [];
    settled.forEach((outcome, i) => {
      const source = this.all[i]!;
      if (outcome.status === 'fulfilled') results.push({ source, value: outcome.value });
      else {
        const error = outcome.reason instanceof Error ? outcome.reason : new Error(String(outcome.reason));
        failures.push({ label: source.label, error });
        this.logger.debug({ source: source.label, err: errorMessage(error) }, 'discovery source failed');
      }
    });
    return { results, failures };
  }

  /** The files every source knows, merged by id. Throws only if no source could answer. */
  async catalog(query: string): Promise<CatalogView> {
    if (this.all.length === 0)
      throw new SwarmError('ERR_INVALID_ARGUMENT', 'no tracker and no known peers to ask');
    const { results, failures } = await this.each((s) => s.catalog(query));
    if (results.length === 0) throw failures[0]!.error;
    return { files: mergeCatalogs(results.map((r) => r.value)), failures };
  }

  /**
   * The manifest of a file, asking every source at once: the first answer that proves the id wins
   * (ERR_BAD_MANIFEST from a source whose answer does not), so a slow or silent source delays nothing.
   */
  async manifest(fileId: Buffer): Promise<Manifest> {
    const unknown = (): SwarmError =>
      new SwarmError('ERR_NOT_FOUND', `no source knows the file ${fileIdHex(fileId).slice(0, 12)}`);
    const attempts = this.all.map(async (source) => {
      const manifest = await source.manifest(fileId);
      if (!manifest) throw unknown();
      // Every source checks what it returns; checked again here, where every manifest passes, since
      // these hashes are what every chunk of the download will be checked against.
      if (!manifest.id.equals(fileId)) {
        throw new SwarmError('ERR_BAD_MANIFEST', `${source.label} gave the manifest of another file`);
      }
      validateManifestContent(manifest);
      return manifest;
    });
    try {
      return await Promise.any(attempts);
    } catch (err) {
      // Report a real failure (a tracker unreachable...) before a plain "nobody knows it".
      const errors = err instanceof AggregateError ? (err.errors as Error[]) : [];
      throw errors.find((e) => errorCode(e) !== 'ERR_NOT_FOUND') ?? errors[0] ?? unknown();
    }
  }

  /** Every peer that any source says holds chunks of the file, merged by peer id, never ourselves. */
  async sources(fileId: Buffer): Promise<SourceInfo[]> {
    const { results, failures } = await this.each((s) => s.sources(fileId));
    if (results.length === 0 && failures.length > 0) throw failures[0]!.error;
    const self = this.selfPeerId.toString('hex');
    const merged = new Map<string, SourceInfo>();
    for (const { value } of results) {
      for (const source of value) {
        if (source.peerId === self) continue;
        const known = merged.get(source.peerId);
        if (!known)
          merged.set(source.peerId, {
            ...source,
            chunks: new Bitfield(source.chunks.size, source.chunks.bytes),
          });
        else if (known.chunks.size === source.chunks.size) {
          for (const index of source.chunks.indices()) if (!known.chunks.has(index)) known.chunks.set(index);
        }
      }
    }
    return [...merged.values()];
  }

  /** Announces to every source; returns the first verdict a source gave per file (the trackers'). */
  async announce(manifests: Manifest[]): Promise<AnnounceResult[] | null> {
    const { results } = await this.each((s) => s.announce(manifests));
    return results.find((r) => r.value !== null)?.value ?? null;
  }

  async unshare(fileId: Buffer): Promise<void> {
    await this.each((s) => s.unshare(fileId));
  }

  have(fileId: Buffer, index: number): void {
    for (const source of this.all) source.have(fileId, index);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all.map((s) => s.close()));
  }
}

/**
 * Merges the catalogs of several sources by file id, sorted by name. The same peer may be counted
 * by two sources, so the largest count of sources is the honest union, not the sum.
 */
export function mergeCatalogs(catalogs: FileSummary[][]): FileSummary[] {
  const merged = new Map<string, FileSummary>();
  for (const catalog of catalogs) {
    for (const file of catalog) {
      const key = fileIdHex(file.id);
      const known = merged.get(key);
      if (!known) merged.set(key, { ...file });
      else {
        known.seeders = Math.max(known.seeders, file.seeders);
        known.peers = Math.max(known.peers, file.peers);
      }
    }
  }
  return [...merged.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.compare(b.id));
}
