/**
 * The same loopback download done by real BitTorrent clients (aria2 and webtorrent), for comparison
 * with swarmshare's figures and the machine's limits from the same run.
 *
 *   const results = await runPeerClients({ path, size, sha256 }, { workDir, runs: 3, seederCounts: [1, 4], log });
 *   markdown += renderPeerClients(results, ceilingMbps);
 *
 * Nothing here throws for a client that cannot be installed or run: its result says why instead.
 */
import path from 'node:path';
import { errorText, MiB, nowSeconds } from '../util.js';
import { aria2Driver } from './aria2.js';
import { ProcessGroup } from '../processes.js';
import { runClientCases } from './harness.js';
import { ensureAria2, ensureNodeClients, type Installed, type NodeClients } from './install.js';
import { hashPieces, type TorrentInfo } from './torrent.js';
import type { ClientDriver, ClientName, Payload, PeerClientOptions, PeerClientResult } from './types.js';
import { webtorrentDriver } from './webtorrent.js';

export { renderPeerClients, formatPeerClientsConsole, type OurFigure } from './report.js';
export type * from './types.js';

/** 1 MiB pieces, as asked of every client (swarmshare's own chunk size is its own choice). */
export const PIECE_LENGTH = MiB;
/** The file's name in every torrent and folder. */
const TORRENT_NAME = 'bench.bin';

export async function runPeerClients(
  payload: Payload,
  options: PeerClientOptions,
): Promise<PeerClientResult[]> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const clients = options.clients ?? (['aria2', 'webtorrent'] as const);
  const runs = options.runs ?? 3;
  const seederCounts = options.seederCounts ?? [1];
  const group = new ProcessGroup();
  const results: PeerClientResult[] = [];
  try {
    // The tracker is bittorrent-tracker from npm, so both clients need the npm install.
    const [node, aria2] = await Promise.all([
      ensureNodeClients(log, options.cacheDir),
      clients.includes('aria2') ? ensureAria2(log) : null,
    ]);
    if (node.ok) {
      log(
        `peers: webtorrent ${node.value.webtorrentVersion}, bittorrent-tracker ${node.value.trackerVersion} ` +
          (node.fresh ? `installed in ${node.seconds.toFixed(1)} s` : 'already installed'),
      );
    }
    if (aria2?.ok) {
      log(
        `peers: aria2 ${aria2.value} ${aria2.fresh ? `installed in ${aria2.seconds.toFixed(1)} s` : 'already installed'}`,
      );
    }

    let torrent: { info: TorrentInfo; seconds: number } | null = null;
    for (const client of clients) {
      const install: Installed<unknown> | null = client === 'aria2' ? aria2 : node;
      const base = {
        client,
        label: client as string,
        payloadSize: payload.size,
        setup: '',
        installSeconds: install?.ok ? (install.fresh ? install.seconds : 0) : null,
        torrentSeconds: null,
        firstSeederSeconds: null,
        cases: [],
      } satisfies PeerClientResult;
      const reason = !node.ok
        ? `no tracker (bittorrent-tracker is installed from npm with webtorrent): ${node.reason}`
        : install && !install.ok
          ? install.reason
          : null;
      if (reason !== null || !node.ok) {
        log(`peers: ${client} not run: ${reason}`);
        results.push({ ...base, notRun: reason ?? 'not installed' });
        continue;
      }
      const driver = makeDriver(client, node.value, aria2?.ok ? aria2.value : 'unknown');
      try {
        if (torrent === null) {
          const start = nowSeconds();
          const info = await hashPieces(payload.path, TORRENT_NAME, PIECE_LENGTH);
          if (info.length !== payload.size)
            throw new Error(`the payload has ${info.length} bytes, not ${payload.size}`);
          torrent = { info, seconds: nowSeconds() - start };
          log(
            `peers: torrent pieces hashed (SHA-1, ${PIECE_LENGTH / MiB} MiB) in ${torrent.seconds.toFixed(2)} s`,
          );
        }
        const { firstSeederSeconds, cases } = await runClientCases(driver, {
          group,
          payload,
          info: torrent.info,
          entry: node.value.entry,
          dir: path.join(options.workDir, `peers-${client}`),
          runs,
          seederCounts,
          log,
        });
        results.push({
          ...base,
          label: driver.label,
          setup: driver.setup,
          torrentSeconds: torrent.seconds,
          firstSeederSeconds,
          cases,
        });
      } catch (err) {
        log(`peers: ${driver.label} not run: ${errorText(err)}`);
        results.push({ ...base, label: driver.label, setup: driver.setup, notRun: errorText(err) });
      }
    }
  } finally {
    await group.stopAll();
  }
  return results;
}

function makeDriver(client: ClientName, node: NodeClients, aria2Version: string): ClientDriver {
  return client === 'aria2'
    ? aria2Driver(aria2Version)
    : webtorrentDriver(node.entry, node.webtorrentVersion);
}
