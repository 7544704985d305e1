/** The flags that say how a command finds peers: trackers, known hosts, a hosts file, the LAN. */
import { Command, InvalidArgumentError } from 'commander';
import { parseEndpoint, parseTrackerAddress, type Endpoint, type TrackerAddress } from '../address.js';
import { DEFAULT_TRACKER_PORT } from '../constants.js';
import { errorMessage } from '../errors.js';
import { SWARM_SECRET_ENV } from '../transport/swarm-secret.js';

export interface DiscoveryFlags {
  /** Every --tracker given; false for --no-tracker. */
  tracker?: TrackerAddress[] | false;
  peer?: Endpoint[];
  hosts?: string;
  lan?: boolean;
  /** --secret FILE: the private swarm's secret (or SWARMSHARE_SECRET in the environment). */
  secret?: string;
}

export const DEFAULT_TRACKER: Endpoint = { host: '127.0.0.1', port: DEFAULT_TRACKER_PORT };

function collectTracker(value: string, previous: TrackerAddress[] | undefined): TrackerAddress[] {
  try {
    return [...(previous ?? []), parseTrackerAddress(value, DEFAULT_TRACKER_PORT)];
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

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
      '--tracker <[id@]host:port>',
      'a tracker (repeatable; default 127.0.0.1:8080 unless peers are given); with its id, only that tracker',
      collectTracker,
    )
    .option('--no-tracker', 'use no tracker')
    .option('--peer <host:port>', 'a known peer to connect to directly (repeatable)', collectEndpoint);
  if (extra.hostsAndLan) {
    command
      .option('--hosts <file>', 'known peers, one host:port per line, re-read when the file changes')
      .option('--lan', 'announce and discover peers on the LAN by multicast (the default)', true)
      .option('--no-lan', 'no LAN announcements');
  }
  return addSecretFlag(command);
}

/** --secret FILE, for every command that talks to a swarm. */
export function addSecretFlag(command: Command): Command {
  return command.option(
    '--secret <file>',
    `join the private swarm whose secret is in FILE (or set ${SWARM_SECRET_ENV}); default: an open swarm`,
  );
}

/**
 * The trackers to use: those given; none with --no-tracker; and with no way of finding peers
 * given at all, the seeds' default of a tracker on this host's port 8080.
 */
export function trackersFrom(flags: DiscoveryFlags): TrackerAddress[] {
  if (flags.tracker === false) return [];
  if (flags.tracker && flags.tracker.length > 0) return flags.tracker;
  if ((flags.peer?.length ?? 0) > 0 || flags.hosts) return [];
  return [DEFAULT_TRACKER];
}
