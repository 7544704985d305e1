/** The webtorrent engine (through webtorrent-child.js) as seeder and downloader, TCP on loopback. */
import { fileURLToPath } from 'node:url';
import type { Child, ProcessGroup } from '../processes.js';
import { mbPerSecond } from '../util.js';
import type { ClientDriver } from './types.js';

const CHILD = fileURLToPath(new URL('./webtorrent-child.js', import.meta.url));

export function webtorrentDriver(entry: string, version: string): ClientDriver {
  return {
    name: 'webtorrent',
    label: `webtorrent ${version}`,
    setup:
      'the `webtorrent` engine in a Node process per peer, TCP only: DHT, local discovery, peer exchange, ' +
      'uTP, UPnP/NAT-PMP and web seeds off, listening on 127.0.0.1; seeders add the torrent with ' +
      '`skipVerify` (no second hashing of the payload); the downloader exits once every piece is ' +
      'verified and written and the client has closed its files.',
    startSeeder(group: ProcessGroup, label: string, torrentFile: string, dir: string, port: number): Child {
      return group.spawnNode(label, CHILD, [entry, 'seed', torrentFile, dir, String(port)]);
    },
    startDownloader(group: ProcessGroup, torrentFile: string, dir: string, port: number): Child {
      return group.spawnNode('webtorrent get', CHILD, [entry, 'get', torrentFile, dir, String(port)]);
    },
    ownMbps(downloader: Child, size: number): number | null {
      const last = downloader.stdout.trim().split('\n').pop() ?? '';
      try {
        const { seconds } = JSON.parse(last) as { seconds: unknown };
        return typeof seconds === 'number' ? mbPerSecond(size, seconds) : null;
      } catch {
        return null;
      }
    },
  };
}
