/** The flags of the web dashboard (`tracker` and `peer`): --http-port, --http-host, --http-token. */
import { Command, InvalidArgumentError } from 'commander';
import { parsePort } from '../address.js';
import { errorMessage } from '../errors.js';
import { DEFAULT_HTTP_HOST } from '../http/guard.js';

export interface DashboardFlags {
  /** Absent: no dashboard. */
  httpPort?: number;
  httpHost: string;
  httpToken?: string;
}

function portOption(value: string): number {
  try {
    return parsePort(value);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

export function addDashboardFlags(command: Command): Command {
  return command
    .option(
      '--http-port <port>',
      'serve the web dashboard and its JSON API on this port (0: any free port)',
      portOption,
    )
    .option('--http-host <host>', 'address the dashboard listens on', DEFAULT_HTTP_HOST)
    .option(
      '--http-token <token>',
      'a token the dashboard requires (beyond loopback one is always required: by default a random one, printed)',
    );
}

/** The dashboard options the flags ask for, or null for no dashboard. */
export function dashboardOptions(
  flags: DashboardFlags,
): { host: string; port: number; token?: string } | null {
  if (flags.httpPort === undefined) return null;
  return {
    host: flags.httpHost,
    port: flags.httpPort,
    ...(flags.httpToken !== undefined ? { token: flags.httpToken } : {}),
  };
}

/** The lines printed once a dashboard listens: its URL, and a word on the token if it has one. */
export function dashboardBanner(what: string, url: string, token: string | null): string {
  const note = token
    ? '\n(the URL carries the token this dashboard requires beyond loopback: keep it private)'
    : '';
  return `${what} dashboard at ${url}${note}\n`;
}
