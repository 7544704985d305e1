/** `swarmshare peer`: a long-running peer with the interactive shell on stdin. */
import path from 'node:path';
import { formatEndpoint } from '../../address.js';
import { STATE_DIR_NAME } from '../../constants.js';
import { createLogger } from '../../log.js';
import { PeerNode } from '../../peer/peer-node.js';
import { escapeForTerminal } from '../../terminal-text.js';
import { dashboardBanner, dashboardOptions, type DashboardFlags } from '../dashboard-flags.js';
import { trackersFrom, type DiscoveryFlags } from '../discovery-flags.js';
import { loadSwarmKey } from '../../transport/swarm-secret.js';
import { EXIT_FAILED } from '../exit-codes.js';
import { plural } from '../format.js';
import { PeerShell } from '../shell.js';

export interface PeerCommandOptions extends DiscoveryFlags, DashboardFlags {
  dir: string;
  host: string;
  port: number;
  name?: string;
  uploadLimit?: number;
  downloadLimit?: number;
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
  const swarmKey = await loadSwarmKey(options.secret);
  const node = await PeerNode.start({
    dir: options.dir,
    swarmKey,
    trackers: trackersFrom(options),
    peers: options.peer ?? [],
    hostsFile: options.hosts,
    lan: options.lan !== false,
    host: options.host,
    port: options.port,
    name: options.name,
    uploadLimit: options.uploadLimit,
    downloadLimit: options.downloadLimit,
    logger,
  });
  let dashboard: { close(): Promise<void> } | null = null;
  let banner = '';
  const http = dashboardOptions(options);
  if (http) {
    // Loaded only when asked for: the other commands do not pay for the web server.
    const { startPeerDashboard } = await import('../../http/peer-dashboard.js');
    const started = await startPeerDashboard(node, { ...http, logger }).catch(async (err: unknown) => {
      await node.close();
      throw err;
    });
    dashboard = started.dashboard;
    banner = dashboardBanner('peer', started.address.url, started.dashboard.token);
  }
  const closeAll = async (): Promise<void> => {
    await dashboard?.close();
    await node.close();
  };
  const shell = new PeerShell(node, { input: process.stdin, output: process.stdout, interactive });
  process.stdout.write(
    `peer ${escapeForTerminal(node.describe())}, sharing ${plural(node.sharedFiles().length, 'file')} from ${escapeForTerminal(node.folder.dir)}\n${banner}`,
  );
  node.on('tracker-up', (label) => shell.notify(`connected to ${label}`));
  node.on('tracker-down', (label) => shell.notify(`lost ${label}; reconnecting`));
  node.on('peer-up', (peer) =>
    shell.notify(`connected to peer ${escapeForTerminal(peer.name)} at ${formatEndpoint(peer)}`),
  );
  node.on('peer-down', (peer) =>
    shell.notify(`peer ${escapeForTerminal(peer.name)} at ${formatEndpoint(peer)} left`),
  );
  const stop = (): void => {
    process.stdout.write('\nleaving the swarm\n');
    void closeAll().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const failures = await shell.run();
  if (dashboard && !interactive) {
    // With a dashboard, the end of piped input does not end the peer: the page is its interface
    // now, and it runs until SIGINT or SIGTERM (handled above).
    process.stdout.write('end of input: the peer keeps running for its dashboard until stopped (Ctrl-C)\n');
    await new Promise<never>(() => {});
  }
  await closeAll();
  if (failures > 0 && !interactive) process.exitCode = EXIT_FAILED;
}
