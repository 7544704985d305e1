/**
 * The tracker's dashboard and JSON API: the catalog (searchable), a file's swarm as a chunk
 * availability map, the live peers, Prometheus metrics at /metrics, and live updates as server-sent
 * events. Read-only: nothing here changes the tracker, so there is no control API to protect
 * beyond what every dashboard gets (Host checks, and a token beyond loopback).
 *
 * Live updates follow the tracker's catalog changes (TrackerActivity): a `catalog` event (a small
 * signal: the page re-reads the lists it shows) at most every catalogIntervalMs, and for each file
 * someone watches, a `swarm` event carrying its availability at most every swarmIntervalMs.
 */
import { formatEndpoint } from '../address.js';
import { MAX_LIST_RESULTS } from '../constants.js';
import type { Logger } from '../log.js';
import type { CatalogChange } from '../tracker/activity.js';
import type { TrackerServer } from '../tracker/server.js';
import { fileAvailability, type FileAvailability } from './availability.js';
import { Dashboard, createDashboardServer, startDashboard, type DashboardOptions } from './dashboard.js';
import { HttpError } from './errors.js';
import { createTrackerMetrics } from './metrics.js';
import { renderTrackerPage } from './pages/tracker-page.js';
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

export interface TrackerDashboardOptions extends DashboardOptions {
  /** Live `catalog` events at most this often; default 500 ms. */
  catalogIntervalMs?: number;
  /** Live `swarm` events for one file at most this often; default 250 ms (4 per second). */
  swarmIntervalMs?: number;
}

/** A catalog entry as the API shows it. */
export interface CatalogFile {
  id: string;
  name: string;
  size: number;
  chunks: number;
  /** Live peers holding every chunk. */
  seeders: number;
  /** Live peers holding any chunk. */
  peers: number;
  /** The share of its chunks that at least one live peer holds, from 0 to 1. */
  completeness: number;
}

/** A live peer as the API shows it. */
export interface TrackerPeerView {
  peerId: string;
  name: string;
  address: string;
  files: number;
  uploadedBytes: number;
  connectedAt: string;
}

export interface TrackerSummary {
  peers: number;
  files: number;
  connections: number;
  startedAt: string;
}

const DEFAULT_FILES_SHOWN = 100;
const MAX_PEERS_SHOWN = 1000;
const DEFAULT_PEERS_SHOWN = 200;

const catalogFileSchema = {
  type: 'object',
  required: ['id', 'name', 'size', 'chunks', 'seeders', 'peers', 'completeness'],
  properties: {
    id: fileIdSchema,
    name: { type: 'string' },
    size: { type: 'integer', description: 'bytes' },
    chunks: { type: 'integer' },
    seeders: { type: 'integer', description: 'live peers holding every chunk' },
    peers: { type: 'integer', description: 'live peers holding any chunk' },
    completeness: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: 'the share of its chunks held by at least one live peer',
    },
  },
} as const;

const peerViewSchema = {
  type: 'object',
  required: ['peerId', 'name', 'address', 'files', 'uploadedBytes', 'connectedAt'],
  properties: {
    peerId: peerIdSchema,
    name: { type: 'string' },
    address: { type: 'string', description: 'host:port it serves chunks on, as the tracker saw it' },
    files: { type: 'integer', description: 'files it holds any chunk of' },
    uploadedBytes: { type: 'integer', description: 'chunk bytes it reports having sent to other peers' },
    connectedAt: timestampSchema,
  },
} as const;

const summarySchema = {
  type: 'object',
  required: ['peers', 'files', 'connections', 'startedAt'],
  properties: {
    peers: { type: 'integer' },
    files: { type: 'integer' },
    connections: { type: 'integer', description: 'open tracker-protocol connections' },
    startedAt: timestampSchema,
  },
} as const;

const availabilitySchema = {
  type: 'object',
  required: [
    'id',
    'name',
    'size',
    'chunkSize',
    'chunks',
    'holders',
    'seeders',
    'counts',
    'minCount',
    'chunksAvailable',
    'peers',
  ],
  properties: {
    id: fileIdSchema,
    name: { type: 'string' },
    size: { type: 'integer' },
    chunkSize: { type: 'integer' },
    chunks: { type: 'integer' },
    holders: { type: 'integer', description: 'live peers holding any chunk' },
    seeders: { type: 'integer', description: 'live peers holding every chunk' },
    counts: {
      type: 'array',
      items: { type: 'integer' },
      description: 'for each chunk, in order, how many live peers hold it',
    },
    minCount: { type: 'integer', description: 'the fewest holders of any chunk' },
    chunksAvailable: { type: 'integer', description: 'chunks held by at least one live peer' },
    peers: {
      type: 'array',
      description: 'the holders with the most chunks (at most 64), most first',
      items: {
        type: 'object',
        required: ['peerId', 'name', 'address', 'chunks', 'bitfield'],
        properties: {
          peerId: peerIdSchema,
          name: { type: 'string' },
          address: { type: 'string' },
          chunks: { type: 'integer', description: 'chunks it holds' },
          bitfield: {
            type: 'string',
            format: 'byte',
            description: 'its chunks, base64: chunk 0 is the high bit of the first byte',
          },
        },
      },
    },
  },
} as const;

export class TrackerDashboard extends Dashboard<{ file: string | null }> {
  private readonly catalogThrottle: KeyedThrottle;
  private readonly swarmThrottle: KeyedThrottle;
  private readonly onChange = (change: CatalogChange): void => this.changed(change);

  private constructor(
    private readonly tracker: TrackerServer,
    http: HttpServer,
    options: TrackerDashboardOptions,
    logger: Logger,
  ) {
    super(http, logger);
    this.catalogThrottle = new KeyedThrottle(
      options.catalogIntervalMs ?? 500,
      () => this.sendCatalogSignal(),
      logger,
    );
    this.swarmThrottle = new KeyedThrottle(
      options.swarmIntervalMs ?? 250,
      (fileId) => this.sendSwarm(fileId),
      logger,
    );
  }

  /** Builds the dashboard of `tracker` (routes registered); listen() makes it reachable. */
  static async create(
    tracker: TrackerServer,
    options: TrackerDashboardOptions = {},
  ): Promise<TrackerDashboard> {
    const { http, logger } = await createDashboardServer(
      {
        title: 'swarmshare tracker',
        description:
          "The tracker dashboard API: the catalog, each file's chunk availability, the live peers, " +
          'and live updates as server-sent events. Read-only. Bound beyond loopback, every request ' +
          'needs the token (Authorization: Bearer, or the cookie set by opening /?token=...).',
      },
      options,
    );
    const dashboard = new TrackerDashboard(tracker, http, options, logger);
    dashboard.registerRoutes();
    tracker.activity.on('change', dashboard.onChange);
    return dashboard;
  }

  protected stopFollowing(): void {
    this.tracker.activity.off('change', this.onChange);
    this.catalogThrottle.close();
    this.swarmThrottle.close();
  }

  // ---- Data --------------------------------------------------------------------------------------

  async summary(): Promise<TrackerSummary> {
    const stats = await this.tracker.store.stats();
    return {
      peers: stats.peers,
      files: stats.files,
      connections: this.tracker.stats.connections,
      startedAt: new Date(this.tracker.startedAt).toISOString(),
    };
  }

  async files(query: string, limit: number): Promise<{ total: number; files: CatalogFile[] }> {
    const { total, files } = await this.tracker.store.listFiles(query, Math.min(limit, MAX_LIST_RESULTS));
    const views = await Promise.all(
      files.map(async (file): Promise<CatalogFile> => {
        let completeness = file.chunks === 0 || file.seeders > 0 ? 1 : 0;
        if (completeness === 0) {
          // Without a seeder, the file is whole only if its holders' chunks add up to it.
          const availability = await fileAvailability(this.tracker.store, file.id, 0);
          completeness = availability ? availability.chunksAvailable / availability.chunks : 0;
        }
        return {
          id: file.id.toString('hex'),
          name: file.name,
          size: file.size,
          chunks: file.chunks,
          seeders: file.seeders,
          peers: file.peers,
          completeness,
        };
      }),
    );
    return { total, files: views };
  }

  async peers(limit: number): Promise<{ total: number; peers: TrackerPeerView[] }> {
    const { total, peers } = await this.tracker.store.listPeers(limit);
    return {
      total,
      peers: peers.map((peer) => ({
        peerId: peer.peerId.toString('hex'),
        name: peer.name,
        address: formatEndpoint(peer),
        files: peer.files,
        uploadedBytes: peer.uploadedBytes,
        connectedAt: new Date(peer.connectedAt).toISOString(),
      })),
    };
  }

  async availability(fileIdHex: string): Promise<FileAvailability> {
    const availability = await fileAvailability(this.tracker.store, Buffer.from(fileIdHex, 'hex'));
    if (!availability) {
      throw new HttpError('ERR_UNKNOWN_FILE', `no file ${fileIdHex.slice(0, 12)} in the catalog`);
    }
    return availability;
  }

  // ---- Routes ------------------------------------------------------------------------------------

  private registerRoutes(): void {
    const { app } = this.http;
    const metrics = createTrackerMetrics(this.tracker);

    this.servePage(async () => {
      const [summary, files, peers] = await Promise.all([
        this.summary(),
        this.files('', DEFAULT_FILES_SHOWN),
        this.peers(DEFAULT_PEERS_SHOWN),
      ]);
      return renderTrackerPage({ summary, files, peers });
    });

    app.get(
      '/api/summary',
      {
        schema: {
          summary: 'How many peers and files the tracker has, and since when it runs',
          tags: ['tracker'],
          response: { 200: described('the counts', summarySchema), ...errorResponses },
        },
      },
      () => this.summary(),
    );

    app.get<{ Querystring: { q: string; limit: number } }>(
      '/api/files',
      {
        schema: {
          summary: 'The catalog, or the files whose name contains q',
          tags: ['tracker'],
          querystring: {
            type: 'object',
            properties: { q: searchQuerySchema, limit: limitSchema(DEFAULT_FILES_SHOWN, MAX_LIST_RESULTS) },
          },
          response: {
            200: described(
              'a page of the catalog',
              listingSchema('files', catalogFileSchema, {
                type: 'integer',
                description: 'every match, however many are listed',
              }),
            ),
            ...errorResponses,
          },
        },
      },
      (request) => this.files(request.query.q, request.query.limit),
    );

    app.get<{ Params: { id: string } }>(
      '/api/files/:id',
      {
        schema: {
          summary: "A file's swarm: how many live peers hold each chunk, and which chunks each peer holds",
          tags: ['tracker'],
          params: fileIdParams,
          response: { 200: described("the file's availability", availabilitySchema), ...errorResponses },
        },
      },
      (request) => this.availability(request.params.id.toLowerCase()),
    );

    app.get<{ Querystring: { limit: number } }>(
      '/api/peers',
      {
        schema: {
          summary: 'The live peers, in the order they registered',
          tags: ['tracker'],
          querystring: {
            type: 'object',
            properties: { limit: limitSchema(DEFAULT_PEERS_SHOWN, MAX_PEERS_SHOWN) },
          },
          response: {
            200: described('a page of the live peers', listingSchema('peers', peerViewSchema)),
            ...errorResponses,
          },
        },
      },
      (request) => this.peers(request.query.limit),
    );

    app.get<{ Querystring: { file?: string } }>(
      '/api/events',
      {
        schema: {
          summary: 'Live updates as server-sent events',
          description:
            '`catalog` (data: {peers, files}) when the catalog or the peers change, at most twice a ' +
            'second: re-read what you show. With ?file=ID, also `swarm` (data: as GET /api/files/{id}) ' +
            "when that file's holders change, at most 4 times a second, and once at the start.",
          tags: ['tracker'],
          querystring: { type: 'object', properties: { file: fileIdSchema } },
          response: eventStreamResponse('an event stream'),
        },
      },
      (request, reply) => {
        const file = request.query.file?.toLowerCase() ?? null;
        this.openEvents(request, reply, { file }, () => {
          if (file) this.swarmThrottle.trigger(file);
        });
      },
    );

    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics',
          description:
            'swarmshare_tracker_peers, _files, _connections (gauges); _requests_total{kind}, ' +
            '_refusals_total{kind,code}, _announced_bytes_total (counters).',
          tags: ['metrics'],
          response: {
            200: {
              description: 'the Prometheus text format',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...errorResponses,
          },
        },
      },
      async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()),
    );
  }

  // ---- Live updates ------------------------------------------------------------------------------

  private changed(change: CatalogChange): void {
    if (this.sse.size === 0) return;
    this.catalogThrottle.trigger('catalog');
    const watched = new Set(this.sse.metas().flatMap((meta) => (meta.file ? [meta.file] : [])));
    // A peer that left may have held any file: every watched swarm is refreshed.
    const affected = change.fileIds.length > 0 ? change.fileIds : [...watched];
    for (const fileId of affected) if (watched.has(fileId)) this.swarmThrottle.trigger(fileId);
  }

  private async sendCatalogSignal(): Promise<void> {
    const stats = await this.tracker.store.stats();
    this.sse.send('catalog', { peers: stats.peers, files: stats.files });
  }

  private async sendSwarm(fileId: string): Promise<void> {
    const availability = await fileAvailability(this.tracker.store, Buffer.from(fileId, 'hex'));
    const to = (meta: { file: string | null }): boolean => meta.file === fileId;
    // A file that left the catalog is sent as {id, gone: true}: the page says so.
    this.sse.send('swarm', availability ?? { id: fileId, gone: true }, { key: `swarm ${fileId}`, to });
  }
}

/** Creates the dashboard of `tracker` and starts listening. */
export async function startTrackerDashboard(
  tracker: TrackerServer,
  options: TrackerDashboardOptions = {},
): Promise<{ dashboard: TrackerDashboard; address: DashboardAddress }> {
  return startDashboard(await TrackerDashboard.create(tracker, options));
}
