/**
 * `swarmshare get`: downloads one file as a temporary peer. Exit 0 only when the file is complete
 * and verified; otherwise one clear line on stderr and nothing under the final name.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Endpoint } from '../../address.js';
import { STATE_DIR_NAME } from '../../constants.js';
import { SwarmError, errorMessage } from '../../errors.js';
import { createLogger, silentLogger } from '../../log.js';
import { PeerNode } from '../../peer/peer-node.js';
import { fileIdHex } from '../../storage/manifest.js';
import { TrackerClient } from '../../tracker/client.js';
import { trackersFrom, type DiscoveryFlags } from '../discovery-flags.js';
import { describeDownload, printable } from '../format.js';
import { DownloadProgressDisplay } from '../progress.js';

export interface GetCommandOptions extends DiscoveryFlags {
  out: string;
  host: string;
  json?: boolean;
  log?: string;
}

export async function runGetCommand(nameOrId: string, options: GetCommandOptions): Promise<void> {
  const logger = options.log
    ? createLogger({ name: 'get', stderrLevel: 'silent', file: options.log })
    : silentLogger();
  const peers = options.peer ?? [];
  const trackers = await reachableTrackers(trackersFrom(options), peers.length > 0);

  await fs.mkdir(options.out, { recursive: true });
  const stateDir = path.join(options.out, STATE_DIR_NAME);
  const createdStateDir = !(await exists(stateDir));
  const node = await PeerNode.start({
    dir: options.out,
    trackers,
    peers,
    host: options.host,
    shareOnStart: false,
    ephemeralIdentity: true,
    name: 'get',
    logger,
  });
  const display = new DownloadProgressDisplay(process.stderr);
  const detach = display.attach(node);
  try {
    await node.discoverySettled();
    const target = await node.resolveTarget(nameOrId);
    const result = await node.download(target.id, target.name);
    display.stop();
    if (options.json) {
      const summary = {
        id: fileIdHex(target.id),
        name: result.name,
        size: result.size,
        path: path.resolve(result.path),
        seconds: result.seconds,
        sources: result.sources.map((s) => ({ peer: s.peerId, name: s.name, bytes: s.bytes })),
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      process.stdout.write(`${describeDownload(result)}\n`);
    }
  } finally {
    detach();
    display.stop();
    await node.close();
    // A one-shot download leaves no state folder behind unless one was there already.
    if (createdStateDir) await fs.rm(stateDir, { recursive: true, force: true });
  }
}

/**
 * Tries each tracker once, so that a tracker that cannot be reached fails the command at once
 * instead of being retried in the background. With known peers to fall back on, an unreachable
 * tracker is only a warning.
 */
async function reachableTrackers(trackers: Endpoint[], havePeers: boolean): Promise<Endpoint[]> {
  const probes = await Promise.allSettled(
    trackers.map(async (tracker) => {
      const client = await TrackerClient.connect({ host: tracker.host, port: tracker.port });
      client.close();
      return tracker;
    }),
  );
  const reachable = probes.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
  const failures = probes.flatMap((p) => (p.status === 'rejected' ? [p.reason as Error] : []));
  if (reachable.length === 0 && !havePeers) {
    throw failures[0] ?? new SwarmError('ERR_INVALID_ARGUMENT', 'no tracker and no peer to ask');
  }
  for (const failure of failures)
    process.stderr.write(`swarmshare: warning: ${printable(errorMessage(failure))}\n`);
  return reachable;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
