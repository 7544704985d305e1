/** `swarmshare tracker`: runs a tracker (and, with --http-port, its dashboard) until SIGINT or SIGTERM. */
import { formatEndpoint } from '../../address.js';
import { createLogger } from '../../log.js';
import { TrackerServer } from '../../tracker/server.js';
import { dashboardBanner, dashboardOptions, type DashboardFlags } from '../dashboard-flags.js';
import { untilSignal } from './signals.js';

export interface TrackerCommandOptions extends DashboardFlags {
  host: string;
  port: number;
  log?: string;
  expiry?: number;
}

export async function runTrackerCommand(options: TrackerCommandOptions): Promise<void> {
  const logger = createLogger({ name: 'tracker', stderrLevel: 'info', file: options.log });
  const server = new TrackerServer({ logger, ...(options.expiry ? { expiryMs: options.expiry } : {}) });
  const address = await server.listen(options.port, options.host);
  process.stdout.write(`swarmshare tracker listening on ${formatEndpoint(address)}\n`);
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
