/** `swarmshare tracker`: runs a tracker until SIGINT or SIGTERM. */
import { formatEndpoint } from '../../address.js';
import { createLogger } from '../../log.js';
import { TrackerServer } from '../../tracker/server.js';
import { untilSignal } from './signals.js';

export interface TrackerCommandOptions {
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
  const signal = await untilSignal();
  logger.info({ signal }, 'shutting down');
  await server.close();
}
