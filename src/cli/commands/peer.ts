/** `swarmshare peer`: a long-running peer with the interactive shell on stdin. */
import path from 'node:path';
import { formatEndpoint } from '../../address.js';
import { STATE_DIR_NAME } from '../../constants.js';
import { createLogger } from '../../log.js';
import { PeerNode } from '../../peer/peer-node.js';
import { trackersFrom, type DiscoveryFlags } from '../discovery-flags.js';
import { EXIT_FAILED } from '../exit-codes.js';
import { plural, printable } from '../format.js';
import { PeerShell } from '../shell.js';

export interface PeerCommandOptions extends DiscoveryFlags {
  dir: string;
  host: string;
  port: number;
  name?: string;
  uploadLimit?: number;
  log?: string;
}

export async function runPeerCommand(options: PeerCommandOptions): Promise<void> {
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const logger = createLogger({
    name: 'peer',
    // Warnings only on the terminal, so the shell stays readable; everything goes to the log file.
    stderrLevel: 'warn',
    file: options.log ?? path.join(options.dir, STATE_DIR_NAME, 'peer.log'),
  });
  const node = await PeerNode.start({
    dir: options.dir,
    trackers: trackersFrom(options),
    peers: options.peer ?? [],
    hostsFile: options.hosts,
    lan: options.lan !== false,
    host: options.host,
    port: options.port,
    name: options.name,
    uploadLimit: options.uploadLimit,
    logger,
  });
  const shell = new PeerShell(node, { input: process.stdin, output: process.stdout, interactive });
  process.stdout.write(
    `peer ${printable(node.describe())}, sharing ${plural(node.sharedFiles().length, 'file')} from ${node.folder.dir}\n`,
  );
  node.on('tracker-up', (label) => shell.notify(`connected to ${label}`));
  node.on('tracker-down', (label) => shell.notify(`lost ${label}; reconnecting`));
  node.on('peer-up', (peer) =>
    shell.notify(`connected to peer ${printable(peer.name)} at ${formatEndpoint(peer)}`),
  );
  node.on('peer-down', (peer) =>
    shell.notify(`peer ${printable(peer.name)} at ${formatEndpoint(peer)} left`),
  );
  const stop = (): void => {
    process.stdout.write('\nleaving the swarm\n');
    void node.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const failures = await shell.run();
  await node.close();
  if (failures > 0 && !interactive) process.exitCode = EXIT_FAILED;
}
