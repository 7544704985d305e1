/** aria2c in BitTorrent mode, as seeder and downloader, kept to the loopback interface. */
import type { Child, ProcessGroup } from '../processes.js';
import { MB } from '../util.js';
import type { ClientDriver } from './types.js';

/** Options of every aria2c here: no config file, the tracker as the only way to find peers. */
function common(dir: string, port: number): string[] {
  return [
    '--no-conf=true',
    `--dir=${dir}`,
    '--interface=127.0.0.1',
    `--listen-port=${port}`,
    '--disable-ipv6=true',
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--bt-save-metadata=false',
    // Quiet but for the "Download Results" table, which holds aria2's own average speed.
    '--console-log-level=warn',
    '--summary-interval=0',
    '--show-console-readout=false',
    // Ends with the benchmark even if the benchmark is killed without a chance to stop it.
    `--stop-with-process=${process.pid}`,
  ];
}

export function aria2Driver(version: string): ClientDriver {
  return {
    name: 'aria2',
    label: `aria2 ${version}`,
    setup:
      'aria2c with no config file, bound to 127.0.0.1 (`--interface`), DHT, LPD and peer exchange off (the ' +
      'torrent is also private); seeders with `--bt-seed-unverified --seed-ratio=0.0` (they serve the ' +
      'payload without hashing it again), the downloader with `--seed-time=0 --file-allocation=falloc` ' +
      '(it exits once the file is complete and its pieces checked).',
    startSeeder(group: ProcessGroup, label: string, torrentFile: string, dir: string, port: number): Child {
      return group.spawn(label, 'aria2c', [
        ...common(dir, port),
        '--bt-seed-unverified=true',
        '--check-integrity=false',
        '--seed-ratio=0.0',
        torrentFile,
      ]);
    },
    startDownloader(group: ProcessGroup, torrentFile: string, dir: string, port: number): Child {
      return group.spawn('aria2 get', 'aria2c', [
        ...common(dir, port),
        '--seed-time=0',
        '--file-allocation=falloc',
        '--allow-overwrite=true',
        '--auto-file-renaming=false',
        torrentFile,
      ]);
    },
    ownMbps(downloader: Child): number | null {
      return averageSpeed(downloader.stdout);
    },
  };
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * aria2's average download speed in MB/s from its results table, whose row reads
 * `gid|OK  |   139MiB/s|/path/file` (whole units only, so about ±1 MiB/s).
 */
export function averageSpeed(output: string): number | null {
  const m = /\|OK\s*\|\s*([\d.]+)(B|KiB|MiB|GiB)\/s\|/.exec(output);
  if (!m) return null;
  return (Number(m[1]) * UNITS[m[2]!]!) / MB;
}
