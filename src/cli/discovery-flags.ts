/** The flags that say how a command finds peers: trackers, known hosts, a hosts file, the LAN. */
import { Command, InvalidArgumentError } from 'commander';
import { parseEndpoint, type Endpoint } from '../address.js';
import { DEFAULT_TRACKER_PORT } from '../constants.js';
import { errorMessage } from '../errors.js';

export interface DiscoveryFlags {
  /** Every --tracker given; false for --no-tracker. */
  tracker?: Endpoint[] | false;
  peer?: Endpoint[];
  hosts?: string;
  lan?: boolean;
}

export const DEFAULT_TRACKER: Endpoint = { host: '127.0.0.1', port: DEFAULT_TRACKER_PORT };

function collectEndpoint(value: string, previous: Endpoint[] | undefined): Endpoint[] {
  try {
    return [...(previous ?? []), parseEndpoint(value, DEFAULT_TRACKER_PORT)];
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

export function addDiscoveryFlags(command: Command, extra: { hostsAndLan: boolean }): Command {
  command
    .option(
      '--tracker <host:port>',
      'a tracker (repeatable; default 127.0.0.1:8080 unless peers are given)',
      collectEndpoint,
    )
    .option('--no-tracker', 'use no tracker')
    .option('--peer <host:port>', 'a known peer to connect to directly (repeatable)', collectEndpoint);
  if (extra.hostsAndLan) {
    command
      .option('--hosts <file>', 'known peers, one host:port per line, re-read when the file changes')
      .option('--lan', 'announce and discover peers on the LAN by multicast (the default)', true)
      .option('--no-lan', 'no LAN announcements');
  }
  return command;
}

/**
 * The trackers to use: those given; none with --no-tracker; and with no way of finding peers
 * given at all, the seeds' default of a tracker on this host's port 8080.
 */
export function trackersFrom(flags: DiscoveryFlags): Endpoint[] {
  if (flags.tracker === false) return [];
  if (flags.tracker && flags.tracker.length > 0) return flags.tracker;
  if ((flags.peer?.length ?? 0) > 0 || flags.hosts) return [];
  return [DEFAULT_TRACKER];
}
