/**
 * The demo swarm: a tracker and peers on loopback in temporary folders, playing the seeds'
 * scenario (peer 1 shares dummyfile.txt, peer 2 a large piratedGame, peer 3 wants both), then more
 * peers joining and drawing from several sources, one peer leaving, and every result checked by
 * hash. It uses the same PeerNode and TrackerServer as the real commands.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { formatEndpoint } from '../address.js';
import { catalogTable } from '../cli/shell.js';
import { formatBytes, formatRate, formatSeconds, plural, table } from '../cli/format.js';
import { DownloadProgressDisplay } from '../cli/progress.js';
import { SwarmError } from '../errors.js';
import type { DownloadResult } from '../peer/download.js';
import { PeerNode } from '../peer/peer-node.js';
import { chunkCount } from '../storage/manifest.js';
import { TrackerServer } from '../tracker/server.js';

export interface DemoOptions {
  /** Size of piratedGame in MiB. */
  sizeMiB: number;
  /** Keep the temporary folders afterwards. */
  keep?: boolean;
  out: Writable;
  /** Where progress bars go (drawn only if it is a terminal). */
  progressStream?: Writable & { isTTY?: boolean };
}

export interface DemoSummary {
  root: string;
  checks: { peer: string; file: string; ok: boolean }[];
  bytesDownloaded: number;
  seconds: number;
}

const DUMMY_TEXT = 'This is dummyfile.txt, shared by peer-1.\n'.repeat(200);

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = performance.now();
  const say = (line = ''): void => void options.out.write(`${line}\n`);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-demo-'));
  const tracker = new TrackerServer({});
  const peers: PeerNode[] = [];
  const display = new DownloadProgressDisplay(options.progressStream ?? null);
  const checks: DemoSummary['checks'] = [];
  let bytesDownloaded = 0;
  let step = 0;
  const heading = (text: string): void => {
    step++;
    say();
    say(`[${step}] ${text}`);
  };

  try {
    say(`swarmshare demo: a tracker and a swarm of peers on loopback, in ${root}`);
    const trackerAddress = await tracker.listen(0, '127.0.0.1');
    heading(`tracker listening on ${formatEndpoint(trackerAddress)}`);

    const startPeer = async (name: string, files: Record<string, (file: string) => Promise<void>> = {}) => {
      const dir = path.join(root, name);
      await fs.mkdir(dir, { recursive: true });
      for (const [file, write] of Object.entries(files)) await write(path.join(dir, file));
      const node = await PeerNode.start({
        dir,
        name,
        trackers: [trackerAddress],
        host: '127.0.0.1',
        relocateIntervalMs: 300,
        noSourceTimeoutMs: 20_000,
      });
      peers.push(node);
      display.attach(node);
      await node.trackerReady();
      return node;
    };

    heading('peer-1 joins, sharing dummyfile.txt; peer-2 joins, sharing piratedGame');
    const peer1 = await startPeer('peer-1', { 'dummyfile.txt': (f) => fs.writeFile(f, DUMMY_TEXT) });
    const peer2 = await startPeer('peer-2', {
      piratedGame: (f) => writeRandom(f, options.sizeMiB * 1024 * 1024),
    });
    for (const node of [peer1, peer2]) {
      for (const { manifest } of node.sharedFiles()) {
        say(
          `    ${node.name} shares ${manifest.name}: ${formatBytes(manifest.size)} in ${plural(chunkCount(manifest), 'chunk')} ` +
            `of ${formatBytes(manifest.chunkSize)}, id ${manifest.id.toString('hex').slice(0, 12)}`,
        );
      }
    }
    const originals = new Map<string, string>([
      ['dummyfile.txt', await sha256File(path.join(root, 'peer-1', 'dummyfile.txt'))],
      ['piratedGame', await sha256File(path.join(root, 'peer-2', 'piratedGame'))],
    ]);

    heading('peer-3 joins and lists the catalog');
    const peer3 = await startPeer('peer-3');
    say(indent(catalogTable((await peer3.list()).files)));

    const report = (node: PeerNode, result: DownloadResult): void => {
      bytesDownloaded += result.size;
      const from = result.sources
        .filter((s) => s.bytes > 0)
        .map((s) => `${s.name} ${formatBytes(s.bytes)}`)
        .join(', ');
      display.log(
        options.out,
        `    ${node.name} got ${result.name}: ${formatBytes(result.size)} in ${formatSeconds(result.seconds)} ` +
          `(${formatRate(result.size / Math.max(result.seconds, 1e-3))}) from ${from || 'nobody (empty file)'}`,
      );
    };
    const fetch = async (node: PeerNode, name: string): Promise<DownloadResult> => {
      const result = await node.get(name);
      report(node, result);
      return result;
    };

    heading('peer-3 wants both files: dummyfile.txt comes from peer-1, piratedGame from peer-2');
    await Promise.all([fetch(peer3, 'dummyfile.txt'), fetch(peer3, 'piratedGame')]);

    heading(
      'peer-4 and peer-5 join and get piratedGame at once, drawing on every peer that holds chunks of it',
    );
    const peer4 = await startPeer('peer-4');
    const peer5 = await startPeer('peer-5');
    await Promise.all([fetch(peer4, 'piratedGame'), fetch(peer5, 'piratedGame')]);

    heading('peer-2, the original seeder, leaves; the tracker drops it from the catalog');
    await peer2.close();
    say(indent(catalogTable((await peer1.list()).files)));

    heading('peer-6 joins and gets piratedGame without peer-2, from the peers that downloaded it');
    const peer6 = await startPeer('peer-6');
    await fetch(peer6, 'piratedGame');

    heading('every downloaded file is checked against the original, by SHA-256');
    for (const node of [peer3, peer4, peer5, peer6]) {
      for (const { manifest, path: file } of node.sharedFiles()) {
        const ok = (await sha256File(file)) === originals.get(manifest.name);
        checks.push({ peer: node.name, file: manifest.name, ok });
      }
    }
    say(
      indent(
        table(
          ['peer', 'file', 'sha-256'],
          checks.map((c) => [c.peer, c.file, c.ok ? 'matches' : 'WRONG']),
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    say();
    const failed = checks.filter((c) => !c.ok).length;
    say(
      `summary: ${checks.length} downloads, ${formatBytes(bytesDownloaded)} moved between ${peers.length} peers ` +
        `in ${formatSeconds(seconds)}; ${failed === 0 ? 'every file verified' : `${failed} FAILED verification`}`,
    );
    if (failed > 0) throw new SwarmError('ERR_FILE_HASH_MISMATCH', `${failed} downloaded files do not match`);
    if (checks.length !== 5)
      throw new SwarmError('ERR_NOT_FOUND', `expected 5 downloads, found ${checks.length}`);
    return { root, checks, bytesDownloaded, seconds };
  } finally {
    display.stop();
    await Promise.all(peers.map((p) => p.close()));
    await tracker.close();
    if (!options.keep) await fs.rm(root, { recursive: true, force: true });
    else say(`(folders kept in ${root})`);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

async function writeRandom(file: string, size: number): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    for (let written = 0; written < size;) {
      const block = randomBytes(Math.min(1 << 20, size - written));
      await handle.write(block, 0, block.length, written);
      written += block.length;
    }
  } finally {
    await handle.close();
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const data of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(data as Buffer);
  return hash.digest('hex');
}
