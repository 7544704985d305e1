/**
 * What the peer's and the tracker's dashboards share: the HTTP server of server.ts with its token,
 * listen() and openapi(), the page at `/`, the hub of live event streams, an orderly close(), and
 * "start" (create, then listen; closed again if listening fails).
 *
 * A dashboard subclasses Dashboard: its static create() builds the server with createDashboardServer,
 * constructs itself, registers its routes (servePage for `/`, openEvents for its event stream), and
 * says in stopFollowing() how to stop following what it shows.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { silentLogger, type Logger } from '../log.js';
import { createHttpServer, type DashboardAddress, type HttpServer } from './server.js';
import { SseHub } from './sse.js';

/** Where and how a dashboard listens; each dashboard adds its own options. */
export interface DashboardOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The token required beyond loopback; generated if needed and not given. */
  token?: string;
  /** Default: required when a token is given, or when bound beyond loopback. */
  requireToken?: boolean;
  logger?: Logger;
}

/** The HTTP server of a dashboard (no routes yet), described in the OpenAPI document by `api`. */
export async function createDashboardServer(
  api: { title: string; description: string },
  options: DashboardOptions,
): Promise<{ http: HttpServer; logger: Logger }> {
  const logger = options.logger ?? silentLogger();
  const http = await createHttpServer({
    title: api.title,
    description: api.description,
    host: options.host,
    port: options.port,
    token: options.token,
    requireToken: options.requireToken,
    logger,
  });
  return { http, logger };
}

/** A dashboard on its HTTP server; `Meta` is what each event stream asked for. */
export abstract class Dashboard<Meta = undefined> {
  protected readonly sse: SseHub<Meta>;
  private closed = false;

  protected constructor(
    protected readonly http: HttpServer,
    logger: Logger,
  ) {
    this.sse = new SseHub({ logger });
  }

  /** The token required, or null. */
  get token(): string | null {
    return this.http.token;
  }

  listen(): Promise<DashboardAddress> {
    return this.http.listen();
  }

  openapi(): Promise<Record<string, unknown>> {
    return this.http.openapi();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopFollowing();
    this.sse.close();
    await this.http.close();
  }

  /** Stops listening to what the dashboard shows, its timers and throttles; once, on close(). */
  protected abstract stopFollowing(): void;

  /** Serves the page at `/` (not in the API document), rendered anew for each request. */
  protected servePage(render: () => string | Promise<string>): void {
    this.http.app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').send(await render()),
    );
  }

  /** Turns the request into an event stream of this dashboard; `onOpen` may send the first events. */
  protected openEvents(request: FastifyRequest, reply: FastifyReply, meta: Meta, onOpen: () => void): void {
    this.sse.open(request, reply, meta, this.http.securityHeaders, onOpen);
  }
}

/** Starts `dashboard` listening; closes it again if it cannot. */
export async function startDashboard<D extends Dashboard<unknown>>(
  dashboard: D,
): Promise<{ dashboard: D; address: DashboardAddress }> {
  try {
    return { dashboard, address: await dashboard.listen() };
  } catch (err) {
    await dashboard.close();
    throw err;
  }
}
