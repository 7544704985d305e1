/** `swarmshare tracker`: runs a tracker (and, with --http-port, its dashboard) until SIGINT or SIGTERM. */
import os from 'node:os';
import path from 'node:path';
import { formatEndpoint } from '../../address.js';
import { loadOrCreateIdentity } from '../../storage/identity.js';
import { credentialsFor } from '../../transport/credentials.js';
import { loadSwarmKey } from '../../transport/swarm-secret.js';
import { createLogger } from '../../log.js';
import { TrackerServer } from '../../tracker/server.js';
import { dashboardBanner, dashboardOptions, type DashboardFlags } from '../dashboard-flags.js';
import { untilSignal } from './signals.js';

export interface TrackerCommandOptions extends DashboardFlags {
  host: string;
  port: number;
  log?: string;
  expiry?: number;
  /** Where the tracker keeps its identity (default: defaultTrackerStateDir()). */
  state?: string;
  secret?: string;
}

/** $XDG_STATE_HOME/swarmshare/tracker, or ~/.local/state/swarmshare/tracker. */
export function defaultTrackerStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'swarmshare', 'tracker');
}

export async function runTrackerCommand(options: TrackerCommandOptions): Promise<void> {
  const logger = createLogger({ name: 'tracker', stderrLevel: 'info', file: options.log });
  const identity = await loadOrCreateIdentity(options.state ?? defaultTrackerStateDir());
  const credentials = await credentialsFor(identity, await loadSwarmKey(options.secret));
  const server = new TrackerServer({
    logger,
    credentials,
    ...(options.expiry ? { expiryMs: options.expiry } : {}),
  });
  const address = await server.listen(options.port, options.host);
  const id = identity.peerId.toString('hex');
  const privacy = credentials.swarmKey ? ', private swarm' : '';
  process.stdout.write(`swarmshare tracker listening on ${formatEndpoint(address)} (id ${id}${privacy})\n`);
  let dashboard: { close(): Promise<void> } | null = null;
  const http = dashboardOptions(options);
  if (http) {
    // Loaded only when asked for: the other commands do not pay for the web server.
    const { startTrackerDashboard } = await import('../../http/tracker-dashboard.js');
    const started = await startTrackerDashboard(server, { ...http, logger }).catch(async (err: unknown) => {
      await server.close();
      throw err;
    });
    dashboard = started.dashboard;
    process.stdout.write(dashboardBanner('swarmshare tracker', started.address.url, started.dashboard.token));
  }
  const signal = await untilSignal();
  logger.info({ signal }, 'shutting down');
  await dashboard?.close();
  await server.close();
}
