/**
 * Child process: bittorrent-tracker's Server, HTTP only (no UDP, no WebSocket, no stats page), on
 * 127.0.0.1 and a free port. Prints `tracker listening on http://127.0.0.1:PORT/announce`, then
 * one line per announce, `announce EVENT PEER_PORT LEFT`, until it is signalled.
 *
 *   node dist/bench/peers/tracker-child.js ENTRY_JS
 *
 * ENTRY_JS is the generated module of the client cache that re-exports the installed packages.
 */
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

interface AnnounceParams {
  port: number;
  left: number;
}

interface TrackerServer {
  http: { address(): AddressInfo | string | null } | null;
  on(event: 'error' | 'warning', listener: (err: Error) => void): void;
  on(event: AnnounceEvent, listener: (addr: string, params: AnnounceParams) => void): void;
  listen(port: number, hostname: string, onListening: () => void): void;
  close(cb?: () => void): void;
}

interface Entry {
  TrackerServer: new (options: Record<string, unknown>) => TrackerServer;
}

type AnnounceEvent = 'start' | 'update' | 'complete' | 'stop' | 'pause';
const ANNOUNCE_EVENTS: readonly AnnounceEvent[] = ['start', 'update', 'complete', 'stop', 'pause'];

const entry = process.argv[2];
if (!entry) {
  process.stderr.write('usage: tracker-child ENTRY_JS\n');
  process.exit(2);
}
const { TrackerServer } = (await import(pathToFileURL(entry).href)) as Entry;
const server = new TrackerServer({ http: true, udp: false, ws: false, stats: false });
server.on('error', (err) => {
  process.stderr.write(`tracker error: ${err.message}\n`);
  process.exit(1);
});
// A client's bad request is its problem, not the benchmark's.
server.on('warning', (err) => void process.stderr.write(`tracker warning: ${err.message}\n`));
// Which peer (by its listening port: every peer here is on 127.0.0.1) has what left, as announced.
for (const event of ANNOUNCE_EVENTS) {
  server.on(
    event,
    (_addr, params) => void process.stdout.write(`announce ${event} ${params.port} ${params.left}\n`),
  );
}
server.listen(0, '127.0.0.1', () => {
  const address = server.http?.address();
  if (!address || typeof address === 'string') throw new Error('the tracker has no TCP address');
  process.stdout.write(`tracker listening on http://127.0.0.1:${address.port}/announce\n`);
});
const stop = (): void => {
  // close() waits for open keep-alive connections: give them a moment, no more.
  setTimeout(() => process.exit(0), 1000).unref();
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// The benchmark holds stdin open: its end means the benchmark is gone, so no tracker outlives it.
process.stdin.once('end', stop).resume();
