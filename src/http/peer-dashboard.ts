/**
 * The peer's dashboard and control API: shared files (share by path, unshare), downloads with
 * progress, speed, ETA and bytes per source (start by name or id, pause, resume), the peers we
 * know, and live updates as server-sent events.
 *
 * This API changes things on the peer, so every request goes through the checks of guard.ts (Host
 * against DNS rebinding, Origin against cross-site requests, a token beyond loopback).
 *
 * Live updates: `downloads` (the downloads, with their progress) when one progresses, starts,
 * pauses or ends, and every second while any runs (so a stalled download's speed falls); `shared`,
 * `peers` and `status` are small signals: the page re-reads what they name. Each kind at most
 * every eventIntervalMs (4 times a second by default).
 */
import path from 'node:path';
import { formatEndpoint } from '../address.js';
import { MAX_LIST_RESULTS } from '../constants.js';
import { errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DownloadResult } from '../peer/download.js';
import type { ActiveDownload, PeerNode, PeerNodeEvents } from '../peer/peer-node.js';
import { chunkCount } from '../storage/manifest.js';
import type { SharedFile } from '../storage/shared-folder.js';
import { Dashboard, createDashboardServer, startDashboard, type DashboardOptions } from './dashboard.js';
import { renderPeerPage } from './pages/peer-page.js';
import {
  described,
  errorResponses,
  eventStreamResponse,
  fileIdParams,
  fileIdSchema,
  limitSchema,
  listingSchema,
  peerIdSchema,
  searchQuerySchema,
  timestampSchema,
} from './schemas.js';
import type { DashboardAddress, HttpServer } from './server.js';
import { KeyedThrottle } from './sse.js';

export interface PeerDashboardOptions extends DashboardOptions {
  /** Each kind of live event at most this often; default 250 ms (4 per second). */
  eventIntervalMs?: number;
}

export type DownloadState = 'running' | 'paused' | 'finished' | 'failed';

/** A download as the API shows it: in progress, or among the last few that ended. */
export interface DownloadView {
  id: string;
  name: string;
  size: number;
  chunks: number;
  verifiedChunks: number;
  /** Verified bytes. */
  bytes: number;
  /** Over the last few seconds while it runs; the average once finished. */
  bytesPerSecond: number;
  /** Seconds left at the current speed; null when unknown (no speed) or over. */
  etaSeconds: number | null;
  state: DownloadState;
  startedAt: string;
  endedAt: string | null;
  /** Every source connected so far, with the verified bytes it supplied; banned ones say so. */
  sources: {
    peerId: string;
    name: string;
    bytes: number;
    connected: boolean;
    inFlight: number;
    banned: boolean;
  }[];
  /** The finished file's name in the folder. */
  savedAs: string | null;
  error: { code: string; message: string } | null;
}

/** Who the peer is and how it is connected. */
export interface PeerStatus {
  peerId: string;
  name: string;
  /** Where its chunk server listens. */
  address: string;
  /** The shared folder. */
  dir: string;
  /** Chunk bytes sent to other peers. */
  uploadedBytes: number;
  sharedFiles: number;
  /** Downloads in progress. */
  downloads: number;
  trackers: { label: string; connected: boolean }[];
  /** Peers connected directly. */
  meshPeers: number;
}

export interface SharedFileView {
  id: string;
  name: string;
  size: number;
  chunks: number;
  /** Where it is, relative to the peer's folder. */
  path: string;
}

/** Ended downloads kept for the page (the newest). */
const MAX_ENDED_DOWNLOADS = 20;
const DEFAULT_SHARED_SHOWN = 500;
const MAX_SHARED_SHOWN = 10_000;
const DEFAULT_CATALOG_SHOWN = 100;
/** While downloads run, their state is sent this often even without progress. */
const DOWNLOADS_TICK_MS = 1_000;

const downloadSchema = {
  type: 'object',
  required: [
    'id',
    'name',
    'size',
    'chunks',
    'verifiedChunks',
    'bytes',
    'bytesPerSecond',
    'etaSeconds',
    'state',
    'startedAt',
    'endedAt',
    'sources',
    'savedAs',
    'error',
  ],
  properties: {
    id: fileIdSchema,
    name: { type: 'string' },
    size: { type: 'integer' },
    chunks: { type: 'integer' },
    verifiedChunks: { type: 'integer' },
    bytes: { type: 'integer', description: 'verified bytes' },
    bytesPerSecond: { type: 'number', description: 'over the last seconds; the average once finished' },
    etaSeconds: { type: 'number', nullable: true, description: 'null when unknown or over' },
    state: { type: 'string', enum: ['running', 'paused', 'finished', 'failed'] },
    startedAt: timestampSchema,
    endedAt: { ...timestampSchema, nullable: true },
    sources: {
      type: 'array',
      items: {
        type: 'object',
        required: ['peerId', 'name', 'bytes', 'connected', 'inFlight', 'banned'],
        properties: {
          peerId: { type: 'string' },
          name: { type: 'string' },
          bytes: { type: 'integer', description: 'verified bytes it supplied' },
          connected: { type: 'boolean' },
          inFlight: { type: 'integer', description: 'chunk requests outstanding at it' },
          banned: {
            type: 'boolean',
            description:
              'banned from this download: it sent chunks that failed verification, or broke the protocol',
          },
        },
      },
    },
    savedAs: { type: 'string', nullable: true, description: "the finished file's name in the folder" },
    error: {
      type: 'object',
      nullable: true,
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const sharedFileSchema = {
  type: 'object',
  required: ['id', 'name', 'size', 'chunks', 'path'],
  properties: {
    id: fileIdSchema,
    name: { type: 'string' },
    size: { type: 'integer' },
    chunks: { type: 'integer' },
    path: { type: 'string', description: "relative to the peer's folder" },
  },
} as const;

const statusSchema = {
  type: 'object',
  required: [
    'peerId',
    'name',
    'address',
    'dir',
    'uploadedBytes',
    'sharedFiles',
    'downloads',
    'trackers',
    'meshPeers',
  ],
  properties: {
    peerId: peerIdSchema,
    name: { type: 'string' },
    address: { type: 'string', description: 'where its chunk server listens' },
    dir: { type: 'string', description: 'the shared folder' },
    uploadedBytes: { type: 'integer', description: 'chunk bytes sent to other peers' },
    sharedFiles: { type: 'integer' },
    downloads: { type: 'integer', description: 'downloads in progress' },
    trackers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['label', 'connected'],
        properties: { label: { type: 'string' }, connected: { type: 'boolean' } },
      },
    },
    meshPeers: { type: 'integer', description: 'peers connected directly' },
  },
} as const;

const swarmPeerSchema = {
  type: 'object',
  required: ['peerId', 'name', 'address', 'file', 'chunks', 'totalChunks'],
  properties: {
    peerId: { type: 'string' },
    name: { type: 'string' },
    address: { type: 'string' },
    file: { type: 'string', description: "the file it holds chunks of; '' for a peer sharing none of ours" },
    chunks: { type: 'integer' },
    totalChunks: { type: 'integer' },
  },
} as const;

const catalogEntrySchema = {
  type: 'object',
  required: ['id', 'name', 'size', 'chunks', 'seeders', 'peers'],
  properties: {
    id: fileIdSchema,
    name: { type: 'string' },
    size: { type: 'integer' },
    chunks: { type: 'integer' },
    seeders: { type: 'integer' },
    peers: { type: 'integer' },
  },
} as const;

export class PeerDashboard extends Dashboard {
  private readonly throttle: KeyedThrottle;
  /** Downloads that ended, newest last, by file id; at most MAX_ENDED_DOWNLOADS. */
  private readonly ended = new Map<string, DownloadView>();
  /** Downloads in progress that we follow, each with how to stop following it. */
  private readonly following = new Map<ActiveDownload, () => void>();
  private tick: NodeJS.Timeout | null = null;
  private readonly detach: (() => void)[] = [];

  private constructor(
    private readonly node: PeerNode,
    http: HttpServer,
    options: PeerDashboardOptions,
    logger: Logger,
  ) {
    super(http, logger);
    // Each event (downloads, shared, peers, status) at most once per interval.
    this.throttle = new KeyedThrottle(options.eventIntervalMs ?? 250, (event) => this.publish(event), logger);
  }

  /** Builds the dashboard of `node` (routes registered); listen() makes it reachable. */
  static async create(node: PeerNode, options: PeerDashboardOptions = {}): Promise<PeerDashboard> {
    const { http, logger } = await createDashboardServer(
      {
        title: 'swarmshare peer',
        description:
          'The peer dashboard API: shared files, downloads, the peers we know, and live updates as ' +
          'server-sent events. Requests that change things must not carry a foreign Origin. Bound ' +
          'beyond loopback, every request needs the token (Authorization: Bearer, or the cookie set ' +
          'by opening /?token=...).',
      },
      options,
    );
    const dashboard = new PeerDashboard(node, http, options, logger);
    dashboard.registerRoutes();
    dashboard.follow();
    return dashboard;
  }

  protected stopFollowing(): void {
    for (const off of this.detach.splice(0)) off();
    for (const off of this.following.values()) off();
    this.following.clear();
    this.stopTick();
    this.throttle.close();
  }

  // ---- Views -------------------------------------------------------------------------------------

  status(): PeerStatus {
    const node = this.node;
    return {
      peerId: node.peerIdHex,
      name: node.name,
      address: formatEndpoint(node.address),
      dir: node.folder.dir,
      uploadedBytes: node.uploadedBytes,
      sharedFiles: node.sharedFiles().length,
      downloads: node.activeDownloads().length,
      trackers: node.trackerStates(),
      meshPeers: node.meshPeers().length,
    };
  }

  /** Downloads in progress (oldest first), then those that ended (newest first). */
  downloads(): DownloadView[] {
    // The node forgets a download a moment before it reports how it ended (it announces the file
    // first): those we follow stay listed until then.
    const active = [...new Set([...this.node.activeDownloads(), ...this.following.keys()])].map((d) =>
      activeView(d),
    );
    const activeIds = new Set(active.map((d) => d.id));
    const ended = [...this.ended.values()].reverse().filter((d) => !activeIds.has(d.id));
    return [...active, ...ended];
  }

  shared(limit: number): { total: number; files: SharedFileView[] } {
    const all = this.node.sharedFiles();
    return { total: all.length, files: all.slice(0, limit).map((f) => this.sharedView(f)) };
  }

  private sharedView(file: SharedFile): SharedFileView {
    const { manifest } = file;
    return {
      id: manifest.id.toString('hex'),
      name: manifest.name,
      size: manifest.size,
      chunks: chunkCount(manifest),
      path: path.relative(this.node.folder.dir, file.path) || manifest.name,
    };
  }

  // ---- Routes ------------------------------------------------------------------------------------

  private registerRoutes(): void {
    const { app } = this.http;
    const node = this.node;

    this.servePage(() =>
      renderPeerPage({
        status: this.status(),
        downloads: this.downloads(),
        shared: this.shared(DEFAULT_SHARED_SHOWN),
      }),
    );

    app.get(
      '/api/status',
      {
        schema: {
          summary: 'Who this peer is, where it serves, its trackers',
          tags: ['peer'],
          response: { 200: described('who this peer is', statusSchema), ...errorResponses },
        },
      },
      () => this.status(),
    );

    app.get<{ Querystring: { limit: number } }>(
      '/api/shared',
      {
        schema: {
          summary: 'The files this peer shares',
          tags: ['shared'],
          querystring: {
            type: 'object',
            properties: { limit: limitSchema(DEFAULT_SHARED_SHOWN, MAX_SHARED_SHOWN) },
          },
          response: {
            200: described('the shared files (at most `limit`)', listingSchema('files', sharedFileSchema)),
            ...errorResponses,
          },
        },
      },
      (request) => this.shared(request.query.limit),
    );

    app.post<{ Body: { path: string } }>(
      '/api/shared',
      {
        schema: {
          summary: "Shares a file or a folder inside the peer's folder, and announces it",
          description:
            "The path is relative to the peer's folder (or absolute, inside it). Refused: " +
            'ERR_OUTSIDE_DIR (outside the folder), ERR_NOT_FOUND, ERR_BAD_NAME.',
          tags: ['shared'],
          body: {
            type: 'object',
            required: ['path'],
            additionalProperties: false,
            properties: { path: { type: 'string', minLength: 1, maxLength: 4096 } },
          },
          response: {
            201: described('the files now shared', {
              type: 'object',
              required: ['files'],
              properties: {
                files: {
                  type: 'array',
                  items: {
                    ...sharedFileSchema,
                    required: [...sharedFileSchema.required, 'refused'],
                    properties: {
                      ...sharedFileSchema.properties,
                      refused: {
                        type: 'object',
                        nullable: true,
                        description: 'why a tracker refused it (it is shared with peers anyway)',
                        required: ['code', 'message'],
                        properties: { code: { type: 'string' }, message: { type: 'string' } },
                      },
                    },
                  },
                },
              },
            }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const results = await node.share(request.body.path);
        const files = results.map(({ file, result }) => ({
          ...this.sharedView(file),
          refused: result?.code ? { code: result.code, message: result.message } : null,
        }));
        return reply.status(201).send({ files });
      },
    );

    app.delete<{ Params: { file: string } }>(
      '/api/shared/:file',
      {
        schema: {
          summary: 'Stops sharing a file, by id, id prefix or name',
          tags: ['shared'],
          params: {
            type: 'object',
            required: ['file'],
            properties: { file: { type: 'string', minLength: 1, maxLength: 255 } },
          },
          response: {
            200: described('the file no longer shared', {
              type: 'object',
              required: ['file'],
              properties: { file: sharedFileSchema },
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => ({ file: this.sharedView(await node.unshare(request.params.file)) }),
    );

    app.get<{ Querystring: { q: string; limit: number } }>(
      '/api/catalog',
      {
        schema: {
          summary: 'What the trackers and connected peers offer, or the files whose name contains q',
          tags: ['downloads'],
          querystring: {
            type: 'object',
            properties: { q: searchQuerySchema, limit: limitSchema(DEFAULT_CATALOG_SHOWN, MAX_LIST_RESULTS) },
          },
          response: {
            200: described('what the sources offer', {
              type: 'object',
              required: ['total', 'files', 'unreachable'],
              properties: {
                total: { type: 'integer' },
                files: { type: 'array', items: catalogEntrySchema },
                unreachable: {
                  type: 'array',
                  description: 'sources that did not answer',
                  items: {
                    type: 'object',
                    required: ['source', 'message'],
                    properties: { source: { type: 'string' }, message: { type: 'string' } },
                  },
                },
              },
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        const view = await node.list(request.query.q);
        return {
          total: view.files.length,
          files: view.files.slice(0, request.query.limit).map((f) => ({
            id: f.id.toString('hex'),
            name: f.name,
            size: f.size,
            chunks: f.chunks,
            seeders: f.seeders,
            peers: f.peers,
          })),
          unreachable: view.failures.map((f) => ({ source: f.label, message: errorMessage(f.error) })),
        };
      },
    );

    app.get(
      '/api/downloads',
      {
        schema: {
          summary: 'Downloads in progress, then the last ones that ended',
          tags: ['downloads'],
          response: {
            200: described('the downloads', {
              type: 'object',
              required: ['downloads'],
              properties: { downloads: { type: 'array', items: downloadSchema } },
            }),
            ...errorResponses,
          },
        },
      },
      () => ({ downloads: this.downloads() }),
    );

    app.post<{ Body: { file: string } }>(
      '/api/downloads',
      {
        schema: {
          summary: 'Starts downloading a file, by exact name, id, or id prefix (6+ hex digits)',
          description:
            'Answers once the download is under way; follow it with GET /api/downloads or the ' +
            '`downloads` events. The file is saved under a safe name derived from its name. ' +
            'Refused: ERR_NOT_FOUND, ERR_AMBIGUOUS_NAME (use an id), ERR_BAD_NAME (a name no file ' +
            'may have: path separators, control characters...; use an id), ERR_IN_PROGRESS ' +
            '(already downloading).',
          tags: ['downloads'],
          body: {
            type: 'object',
            required: ['file'],
            additionalProperties: false,
            properties: { file: { type: 'string', minLength: 1, maxLength: 255 } },
          },
          response: {
            202: described('the download, under way', {
              type: 'object',
              required: ['download'],
              properties: { download: downloadSchema },
            }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const target = await node.resolveTarget(request.body.file);
        const { active, finished } = await node.startDownload(target.id, target.name);
        // How it ends is recorded from the node's events; nothing is left unhandled.
        finished.catch(() => {});
        return reply.status(202).send({ download: activeView(active) });
      },
    );

    for (const action of ['pause', 'resume'] as const) {
      app.post<{ Params: { id: string } }>(
        `/api/downloads/:id/${action}`,
        {
          schema: {
            summary:
              action === 'pause'
                ? 'Pauses a download: no new requests; those in flight may finish'
                : 'Resumes a paused download',
            tags: ['downloads'],
            params: fileIdParams,
            response: {
              200: described('the download', {
                type: 'object',
                required: ['download'],
                properties: { download: downloadSchema },
              }),
              ...errorResponses,
            },
          },
        },
        (request) => {
          const id = request.params.id.toLowerCase();
          const active = action === 'pause' ? node.pauseDownload(id) : node.resumeDownload(id);
          return { download: activeView(active) };
        },
      );
    }

    app.get(
      '/api/peers',
      {
        schema: {
          summary: 'The peers in the swarms of our files, and those connected directly',
          tags: ['peer'],
          response: {
            200: described('the peers', {
              type: 'object',
              required: ['peers'],
              properties: { peers: { type: 'array', items: swarmPeerSchema } },
            }),
            ...errorResponses,
          },
        },
      },
      async () => ({ peers: await node.swarmPeers() }),
    );

    app.get(
      '/api/events',
      {
        schema: {
          summary: 'Live updates as server-sent events',
          description:
            '`downloads` (data: {downloads}, as GET /api/downloads) at the start, then as downloads ' +
            'progress (at most 4 times a second, and every second while any runs); `shared`, ' +
            '`peers` and `status` (data: {}) when that list changes: re-read it.',
          tags: ['peer'],
          response: eventStreamResponse('an event stream'),
        },
      },
      (request, reply) => {
        this.openEvents(request, reply, undefined, () =>
          this.sse.send('downloads', { downloads: this.downloads() }),
        );
      },
    );
  }

  // ---- Live updates ------------------------------------------------------------------------------

  /** Listens to the node: its events become (throttled) events on the stream. */
  private follow(): void {
    const node = this.node;
    const on = <E extends keyof PeerNodeEvents>(
      event: E,
      listener: (...args: PeerNodeEvents[E]) => void,
    ): void => {
      node.on(event, listener as never);
      this.detach.push(() => node.off(event, listener as never));
    };
    on('download-started', (active) => {
      this.ended.delete(active.manifest.id.toString('hex'));
      const onProgress = (): void => this.signal('downloads');
      const events = ['progress', 'source', 'source-lost'] as const;
      for (const event of events) active.download.on(event, onProgress);
      this.following.set(active, () => {
        for (const event of events) active.download.off(event, onProgress);
      });
      this.startTick();
      this.signal('downloads');
      this.signal('peers');
      this.signal('status');
    });
    on('download-finished', (active, result) => this.downloadEnded(active, result, null));
    on('download-failed', (active, err) => this.downloadEnded(active, null, err));
    on('shared-changed', () => {
      this.signal('shared');
      this.signal('status');
    });
    for (const event of ['peer-up', 'peer-down', 'tracker-up', 'tracker-down'] as const) {
      on(event, () => {
        this.signal('peers');
        this.signal('status');
      });
    }
  }

  private downloadEnded(active: ActiveDownload, result: DownloadResult | null, err: Error | null): void {
    this.following.get(active)?.();
    this.following.delete(active);
    const id = active.manifest.id.toString('hex');
    const view = activeView(active);
    const ended: DownloadView = {
      ...view,
      state: result ? 'finished' : 'failed',
      endedAt: new Date().toISOString(),
      etaSeconds: null,
      ...(result
        ? {
            verifiedChunks: view.chunks,
            bytes: result.size,
            bytesPerSecond: result.seconds > 0 ? Math.round(result.size / result.seconds) : 0,
            sources: result.sources.map((s) => ({ ...s, connected: false, inFlight: 0 })),
            savedAs: result.name,
          }
        : {
            sources: view.sources.map((s) => ({ ...s, connected: false, inFlight: 0 })),
            error: { code: errorCode(err) ?? 'ERR_INTERNAL', message: errorMessage(err) },
          }),
    };
    this.ended.delete(id);
    this.ended.set(id, ended);
    while (this.ended.size > MAX_ENDED_DOWNLOADS) this.ended.delete(this.ended.keys().next().value!);
    if (this.node.activeDownloads().length === 0) this.stopTick();
    this.signal('downloads');
    this.signal('status');
    this.signal('peers');
  }

  private signal(event: 'downloads' | 'shared' | 'peers' | 'status'): void {
    if (this.sse.size > 0) this.throttle.trigger(event);
  }

  private publish(event: string): void {
    if (event === 'downloads') this.sse.send('downloads', { downloads: this.downloads() });
    else this.sse.send(event, {});
  }

  private startTick(): void {
    if (this.tick) return;
    this.tick = setInterval(() => this.signal('downloads'), DOWNLOADS_TICK_MS);
    this.tick.unref();
  }

  private stopTick(): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
  }
}

/** A download in progress as the API shows it. */
function activeView({ manifest, download, startedAt }: ActiveDownload): DownloadView {
  const progress = download.progress;
  const left = progress.size - progress.bytes;
  const running = !progress.paused;
  return {
    id: manifest.id.toString('hex'),
    name: manifest.name,
    size: progress.size,
    chunks: progress.totalChunks,
    verifiedChunks: progress.verifiedChunks,
    bytes: progress.bytes,
    bytesPerSecond: progress.bytesPerSecond,
    etaSeconds: running && progress.bytesPerSecond > 0 ? Math.ceil(left / progress.bytesPerSecond) : null,
    state: running ? 'running' : 'paused',
    startedAt: new Date(startedAt).toISOString(),
    endedAt: null,
    sources: download.sourceStats(),
    savedAs: null,
    error: null,
  };
}

/** Creates the dashboard of `node` and starts listening. */
export async function startPeerDashboard(
  node: PeerNode,
  options: PeerDashboardOptions = {},
): Promise<{ dashboard: PeerDashboard; address: DashboardAddress }> {
  return startDashboard(await PeerDashboard.create(node, options));
}
