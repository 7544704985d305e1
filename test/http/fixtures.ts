/**
 * Fixtures for the dashboards' tests: a tracker and peers on loopback (never the LAN), dashboards
 * torn down with the test, raw HTTP requests (any Host or Origin header), and an event-stream
 * reader.
 */
import http from 'node:http';
import type { TestContext } from 'node:test';
import { startPeerDashboard, type PeerDashboardOptions } from '../../src/http/peer-dashboard.js';
import { startTrackerDashboard, type TrackerDashboardOptions } from '../../src/http/tracker-dashboard.js';
import { PeerNode, type PeerNodeOptions } from '../../src/peer/peer-node.js';
import { TrackerServer } from '../../src/tracker/server.js';
import { makeFile, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';

export const HOST = '127.0.0.1';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined if it is not JSON). */
  json: unknown;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as JSON (with its content type) unless a string. */
  body?: unknown;
}

/** One HTTP request with full control over its headers (Host included). */
export function request(url: string, options: RequestOptions = {}): Promise<Response> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | undefined;
  if (options.body !== undefined) {
    payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    if (typeof options.body !== 'string') headers['content-type'] ??= 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: options.method ?? 'GET',
        headers,
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The error code of an error response (and a check that it has the documented shape). */
export function errorCodeOf(response: Response): string {
  const body = response.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  if (typeof body?.error?.code !== 'string' || typeof body.error.message !== 'string') {
    throw new Error(`not an error body (${response.status}): ${response.text.slice(0, 300)}`);
  }
  return body.error.code;
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads an event stream; events are collected as they come. Closed when the test ends. */
export class EventStream {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private readonly req: http.ClientRequest;

  constructor(t: TestContext, url: string, headers: Record<string, string> = {}) {
    const target = new URL(url);
    this.req = http.get(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        headers,
        agent: false,
      },
      (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            this.parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        });
        res.on('end', () => (this.ended = true));
        res.on('error', () => (this.ended = true));
      },
    );
    this.req.on('error', () => (this.ended = true));
    t.after(() => this.close());
  }

  /** Waits for an event of this name whose data satisfies `match`; returns its data. */
  async next<T = unknown>(event: string, match: (data: T) => boolean = () => true, after = 0): Promise<T> {
    const found = await waitFor(
      () => this.events.slice(after).find((e) => e.event === event && match(e.data as T)),
      `a "${event}" event (got ${this.events.map((e) => e.event).join(', ') || 'none'})`,
    );
    return found.data as T;
  }

  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }

  close(): void {
    this.req.destroy();
  }

  private parse(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data) this.events.push({ event, data: JSON.parse(data) as unknown });
  }
}

/** A tracker on loopback, closed when the test ends. */
export async function startTracker(t: TestContext): Promise<{ tracker: TrackerServer; address: string }> {
  const tracker = new TrackerServer();
  t.after(() => tracker.close());
  const { port } = await tracker.listen(0, HOST);
  return { tracker, address: `${HOST}:${port}` };
}

/** A tracker with its dashboard on loopback; the dashboard's base URL has no trailing slash. */
export async function startTrackerWithDashboard(
  t: TestContext,
  options: TrackerDashboardOptions = {},
): Promise<{ tracker: TrackerServer; trackerPort: number; url: string; dashboardPort: number }> {
  const { tracker } = await startTracker(t);
  const { dashboard, address } = await startTrackerDashboard(tracker, { host: HOST, ...options });
  t.after(() => dashboard.close());
  return {
    tracker,
    trackerPort: tracker.address()!.port,
    url: `http://${HOST}:${address.port}`,
    dashboardPort: address.port,
  };
}

/** A peer on loopback (no LAN), registered with `trackerPort` if given; closed when the test ends. */
export async function startPeer(
  t: TestContext,
  options: { trackerPort?: number; dir?: string; name?: string } & Partial<PeerNodeOptions> = {},
): Promise<PeerNode> {
  const dir = options.dir ?? (await tempDir(t));
  const { trackerPort, ...rest } = options;
  const node = await PeerNode.start({
    host: HOST,
    ephemeralIdentity: true,
    relocateIntervalMs: 100,
    reconnectMinMs: 50,
    ...rest,
    dir,
    lan: false,
    trackers: trackerPort ? [{ host: HOST, port: trackerPort }] : [],
  });
  t.after(() => node.close());
  if (trackerPort) await node.trackerReady();
  return node;
}

/** A peer's dashboard on loopback; its base URL has no trailing slash. */
export async function startDashboardOf(
  t: TestContext,
  node: PeerNode,
  options: PeerDashboardOptions = {},
): Promise<{ url: string; port: number; token: string | null; printedUrl: string }> {
  const { dashboard, address } = await startPeerDashboard(node, { host: HOST, ...options });
  t.after(() => dashboard.close());
  return {
    url: `http://${urlHostOf(address.host)}:${address.port}`,
    port: address.port,
    token: dashboard.token,
    printedUrl: address.url,
  };
}

function urlHostOf(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** A file of pseudo-random content in `dir`. */
export function fileIn(dir: string, name: string, size: number, seed = 3): Promise<TestFile> {
  return makeFile(dir, name, size, seed);
}

export { tempDir, waitFor };
