/**
 * The HTTP server both dashboards are built on (fastify): the security checks of guard.ts as an
 * onRequest hook, JSON errors with stable codes, security headers, the pages' static assets, and
 * the OpenAPI document generated from the route schemas (@fastify/swagger) at /docs/openapi.json.
 *
 * A dashboard creates the server, adds its routes, then listens:
 *
 *   const http = await createHttpServer({ title: 'swarmshare tracker', ... });
 *   http.app.get('/api/things', { schema }, handler);
 *   const { url } = await http.listen();
 */
import fs from 'node:fs/promises';
import swagger from '@fastify/swagger';
import {
  LogController,
  fastify,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Endpoint } from '../address.js';
import { silentLogger, type Logger } from '../log.js';
import { HttpError, toErrorResponse } from './errors.js';
import { DEFAULT_HTTP_HOST, RequestGuard, generateToken, isLoopbackHost, urlHost } from './guard.js';
import { escapeHtml } from './pages/html.js';

export { DEFAULT_HTTP_HOST };

export interface HttpServerOptions {
  /** For the OpenAPI document and the /docs page. */
  title: string;
  description: string;
  /** Address to listen on; default 127.0.0.1 (this machine only). */
  host?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** The token required beyond loopback; generated when needed and not given. */
  token?: string;
  /** Require the token; by default when one is given, or when `host` is not a loopback address. */
  requireToken?: boolean;
  logger?: Logger;
}

/** Where a dashboard listens, and the URL to open (carrying the token, when one is required). */
export interface DashboardAddress extends Endpoint {
  /** The URL to open in a browser; with `?token=` when one is required. */
  url: string;
}

export interface HttpServer {
  readonly app: FastifyInstance;
  /** The token required, or null when none is. */
  readonly token: string | null;
  /** Headers a response sent outside the framework (an event stream) must carry. */
  readonly securityHeaders: Readonly<Record<string, string>>;
  /** Starts listening; resolves with the address and the URL to open. */
  listen(): Promise<DashboardAddress>;
  /** The OpenAPI document of every documented route (the server need not listen). */
  openapi(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Request bodies are small JSON documents (a path, a name). */
const BODY_LIMIT = 64 * 1024;
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** The pages' files, under web/ at the package root; nothing else is served from there. */
const ASSETS: Record<string, string> = {
  'style.css': 'text/css; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'map.js': 'text/javascript; charset=utf-8',
  'tracker.js': 'text/javascript; charset=utf-8',
  'peer.js': 'text/javascript; charset=utf-8',
};
const ASSETS_DIR = new URL('../../../web/', import.meta.url);

const SECURITY_HEADERS: Record<string, string> = {
  // Scripts and styles only from our own files: even markup slipped into a page could not run.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

const packageVersion = await readPackageVersion();

/** Creates the server with its hooks, /docs and /assets; the caller adds routes, then listens. */
export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? DEFAULT_HTTP_HOST;
  // A token given is always required; without one, only beyond loopback (one is generated).
  const requireToken = options.requireToken ?? (options.token !== undefined || !isLoopbackHost(host));
  const token = requireToken ? (options.token ?? generateToken()) : null;
  const logger = (options.logger ?? silentLogger()).child({ component: 'http' });
  const app = fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Unknown properties in a request body are refused rather than silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // Event streams never end by themselves: close() must cut every connection.
    forceCloseConnections: true,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  // Bodies are JSON only: text/plain is what another site's form or fetch may send without asking
  // the browser's permission, so it is not even parsed.
  app.removeContentTypeParser('text/plain');
  // The guard needs the port, known once listening; until then nothing is answered.
  let guard: RequestGuard | null = null;

  app.addHook('onRequest', async (request, reply) => {
    if (!guard) throw new HttpError('ERR_BAD_HOST', 'the server is not listening yet');
    // A redirect was sent: nothing more to do for this request.
    if (checkRequest(guard, request, reply)) return reply;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.setErrorHandler((err, request, reply) => {
    const { status, body, internal } = toErrorResponse(err);
    if (internal) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: body.error.code, url: request.url }, 'request refused');
    return reply.status(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    return reply
      .status(404)
      .send({ error: { code: 'ERR_NOT_FOUND', message: `nothing at ${request.method} ${path}` } });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: options.title, description: options.description, version: packageVersion },
      components: {
        securitySchemes: {
          bearerToken: { type: 'http', scheme: 'bearer', description: 'the token printed at start' },
          tokenCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: 'swarmshare_token_PORT',
            description: 'set by opening /?token=TOKEN; PORT is the dashboard port',
          },
        },
      },
      // Only needed when the server is bound beyond loopback (see the description).
      security: [{}, { bearerToken: [] }, { tokenCookie: [] }],
    },
  });
  registerDocs(app, options.title);
  await registerAssets(app);

  return {
    app,
    token,
    securityHeaders: SECURITY_HEADERS,
    async listen(): Promise<DashboardAddress> {
      await app.listen({ host, port: options.port ?? 0 });
      const address = app.server.address();
      if (!address || typeof address === 'string') throw new Error('the HTTP server has no address');
      guard = new RequestGuard(host, address.port, token);
      const base = `http://${urlHost(browsableHost(host))}:${address.port}/`;
      const url = token ? `${base}?token=${encodeURIComponent(token)}` : base;
      logger.info(
        { host: address.address, port: address.port, token: token !== null },
        'dashboard listening',
      );
      return { host: address.address, port: address.port, url };
    },
    async openapi(): Promise<Record<string, unknown>> {
      await app.ready();
      return app.swagger() as unknown as Record<string, unknown>;
    },
    async close(): Promise<void> {
      await app.close();
    },
  };
}

/**
 * The Host, Origin and token checks (see guard.ts); throws the refusal. Returns true if it answered
 * the request itself (the redirect that takes a token out of the address bar).
 */
function checkRequest(guard: RequestGuard, request: FastifyRequest, reply: FastifyReply): boolean {
  const { headers } = request;
  if (!guard.hostAllowed(headers.host)) {
    throw new HttpError('ERR_BAD_HOST', `this server does not answer to the host "${headers.host ?? ''}"`);
  }
  if (STATE_CHANGING.has(request.method)) {
    const origin = headers.origin;
    const site = headers['sec-fetch-site'];
    if (
      (origin !== undefined && !guard.originAllowed(origin)) ||
      site === 'cross-site' ||
      site === 'same-site'
    ) {
      throw new HttpError(
        'ERR_FORBIDDEN_ORIGIN',
        'requests that change things must come from this dashboard',
      );
    }
  }
  if (!guard.tokenRequired) return false;
  const query = request.query as Record<string, unknown> | undefined;
  const fromQuery = request.method === 'GET' && typeof query?.token === 'string' ? query.token : undefined;
  const authorization = headers.authorization;
  const bearer = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
  const presented = bearer ?? fromQuery ?? guard.tokenFromCookies(headers.cookie);
  if (presented === undefined || !guard.tokenMatches(presented)) {
    throw new HttpError(
      'ERR_UNAUTHORIZED',
      'this dashboard needs its token: open the URL it printed at start, or send Authorization: Bearer TOKEN',
    );
  }
  if (fromQuery !== undefined && presented === fromQuery) {
    // Remember the token in a cookie, and take it out of the address bar and the history.
    reply.header('set-cookie', guard.tokenCookie(fromQuery));
    if (headers.accept?.includes('text/html')) {
      const url = new URL(request.url, 'http://localhost');
      url.searchParams.delete('token');
      void reply.redirect(url.pathname + url.search, 303);
      return true;
    }
  }
  return false;
}

/** The OpenAPI document as JSON, and a small page listing the operations for people. */
function registerDocs(app: FastifyInstance, title: string): void {
  app.get('/docs/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => {
    const spec = app.swagger() as unknown as {
      paths: Record<string, Record<string, { summary?: string; description?: string }>>;
    };
    const rows = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(
        ([method, op]) =>
          `<tr><td><code>${escapeHtml(method.toUpperCase())}</code></td><td><code>${escapeHtml(path)}</code></td>` +
          `<td>${escapeHtml(op.summary ?? op.description ?? '')}</td></tr>`,
      ),
    );
    const body =
      `<!doctype html><html lang="en"><head><meta charset="utf-8" /><title>${escapeHtml(title)} API</title>` +
      `<link rel="icon" href="data:," /><link rel="stylesheet" href="/assets/style.css" /></head><body><main>` +
      `<h1>${escapeHtml(title)} API</h1><p>JSON over HTTP; errors are <code>{"error":{"code","message"}}</code>. ` +
      `The OpenAPI document: <a href="/docs/openapi.json">/docs/openapi.json</a>.</p>` +
      `<table><thead><tr><th>method</th><th>path</th><th>what it does</th></tr></thead><tbody>${rows.join('')}` +
      `</tbody></table></main></body></html>`;
    return reply.type('text/html; charset=utf-8').send(body);
  });
}

async function registerAssets(app: FastifyInstance): Promise<void> {
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) files.set(name, await fs.readFile(new URL(name, ASSETS_DIR)));
  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { schema: { hide: true } },
    async (request, reply) => {
      const content = files.get(request.params.name);
      if (!content) throw new HttpError('ERR_NOT_FOUND', `no asset ${request.params.name}`);
      return reply.type(ASSETS[request.params.name]!).header('cache-control', 'no-cache').send(content);
    },
  );
}

/** A wildcard address is not something to open: the URL printed uses loopback instead. */
function browsableHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

async function readPackageVersion(): Promise<string> {
  const text = await fs.readFile(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
