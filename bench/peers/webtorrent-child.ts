/**
 * Child process: the webtorrent engine as a seeder or a downloader, TCP only. The CLI
 * (webtorrent-cli) cannot turn off DHT, local discovery or uTP and listens on every interface, so
 * the engine is driven from here with all of those off and its listener bound to 127.0.0.1.
 *
 *   node dist/bench/peers/webtorrent-child.js ENTRY_JS seed|get TORRENT_FILE DIR PORT
 *
 * seed: DIR already holds the payload (taken as complete, not re-hashed); prints `seeding` once the
 *       torrent counts as complete, then seeds until signalled.
 * get:  downloads into DIR, prints one JSON line `{"seconds": ...}` (from adding the torrent to the
 *       last piece verified and written) and exits once the client has closed its files.
 */
import fs from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

interface Torrent {
  on(event: 'done', listener: () => void): void;
  on(event: 'error' | 'warning', listener: (err: Error | string) => void): void;
}

interface Client {
  add(torrent: Buffer, options: Record<string, unknown>): Torrent;
  on(event: 'error', listener: (err: Error | string) => void): void;
  destroy(cb?: (err?: Error | null) => void): void;
}

interface Entry {
  WebTorrent: new (options: Record<string, unknown>) => Client;
}

const [entry, mode, torrentFile, dir, portText] = process.argv.slice(2);
const port = Number(portText);
if (!entry || (mode !== 'seed' && mode !== 'get') || !torrentFile || !dir || !Number.isInteger(port)) {
  process.stderr.write('usage: webtorrent-child ENTRY_JS seed|get TORRENT_FILE DIR PORT\n');
  process.exit(2);
}

// webtorrent calls `listen(port, callback)` with no address option: make such calls loopback only.
const listen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
} as typeof net.Server.prototype.listen;

const fail = (err: Error | string): never => {
  process.stderr.write(`webtorrent ${mode}: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
};

const { WebTorrent } = (await import(pathToFileURL(entry).href)) as Entry;
const started = performance.now();
const client = new WebTorrent({
  dht: false,
  lsd: false,
  utPex: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
  webSeeds: false,
  // The port the benchmark chose: the tracker's announces name each peer by it.
  torrentPort: port,
});
client.on('error', fail);
const torrent = client.add(fs.readFileSync(torrentFile), {
  path: dir,
  // The seeder's copy is the payload itself: assume it complete rather than hash it again.
  skipVerify: mode === 'seed',
  private: true,
});
torrent.on('error', fail);
torrent.on('warning', (err) => void process.stderr.write(`webtorrent warning: ${String(err)}\n`));

const stop = (code: number): void => {
  // destroy() announces `stopped` to the tracker, which may be gone already: do not wait long for it.
  setTimeout(() => process.exit(code), 1000).unref();
  client.destroy(() => process.exit(code));
};
process.once('SIGTERM', () => stop(0));
process.once('SIGINT', () => stop(0));
// The benchmark holds stdin open: its end means the benchmark is gone, so no client outlives it.
process.stdin.once('end', () => stop(0)).resume();

if (mode === 'seed') {
  // With skipVerify every piece counts as present, so 'done' follows 'ready' at once.
  torrent.on('done', () => void process.stdout.write('seeding\n'));
} else {
  torrent.on('done', () => {
    const seconds = (performance.now() - started) / 1000;
    // Closing the client closes the files: the data is in the page cache when the process exits.
    client.destroy((err) => {
      if (err) fail(err);
      process.stdout.write(`${JSON.stringify({ seconds })}\n`);
      process.exit(0);
    });
  });
}
