/**
 * The command line: maps flags onto options and calls into the library. No logic lives here
 * beyond parsing; each command's behaviour is in src/cli/commands/.
 */
import fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parsePort } from '../address.js';
import { DEFAULT_HOST, DEFAULT_TRACKER_PORT } from '../constants.js';
import { errorMessage } from '../errors.js';
import { peerNameProblem } from '../peer/peer-node.js';
import { parseRate } from '../peer/rate-limiter.js';
import { escapeForTerminal } from '../terminal-text.js';
import { addDashboardFlags } from './dashboard-flags.js';
import { addDiscoveryFlags, addSecretFlag } from './discovery-flags.js';
import { runDemoCommand } from './commands/demo.js';
import { runGetCommand } from './commands/get.js';
import { runListCommand } from './commands/list.js';
import { runPeerCommand } from './commands/peer.js';
import { runTrackerCommand } from './commands/tracker.js';
import { EXIT_USAGE, exitCodeFor } from './exit-codes.js';

const packageJson = JSON.parse(
  fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
) as {
  version: string;
};

function portOption(value: string): number {
  try {
    return parsePort(value);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

function nameOption(value: string): string {
  const problem = peerNameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function rateOption(value: string): number {
  try {
    return parseRate(value);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

const UPLOAD_LIMIT_HELP =
  'bytes per second uploaded at most, over all connections (e.g. 500K, 2M; K, M, G: powers of 1024)';
const DOWNLOAD_LIMIT_HELP =
  'bytes per second downloaded at most, over all connections (e.g. 500K, 2M; K, M, G: powers of 1024)';

function positiveIntOption(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

export function buildProgram(): Command {
  const program = new Command('swarmshare')
    .description(
      'Peer-to-peer file sharing: a chunk-aware tracker, peers that download from many peers at once.',
    )
    .version(packageJson.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const tracker = program
    .command('tracker')
    .description('run a tracker: the catalog of shared files and of which peer holds which chunk')
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0: any free port)', portOption, DEFAULT_TRACKER_PORT)
    .option('--state <dir>', 'folder of the tracker identity (default: ~/.local/state/swarmshare/tracker)');
  addSecretFlag(tracker);
  addDashboardFlags(tracker)
    .option('--log <file>', 'also write the structured log to this file')
    .addOption(
      new Option('--expiry <ms>', 'drop a peer silent for this long').argParser(positiveIntOption).hideHelp(),
    )
    .action(runTrackerCommand);

  const peer = program
    .command('peer')
    .description('run a peer that shares the files in DIR, with an interactive shell on stdin')
    .requiredOption('--dir <dir>', 'folder to share; downloads land here too');
  addDiscoveryFlags(peer, { hostsAndLan: true })
    .option('--host <host>', 'address to serve chunks on', DEFAULT_HOST)
    .option('--port <port>', 'port to serve chunks on (0: any free port)', portOption, 0)
    .option('--name <name>', 'a name shown to other peers (at most 64 bytes)', nameOption)
    .option('--upload-limit <rate>', UPLOAD_LIMIT_HELP, rateOption)
    .option('--download-limit <rate>', DOWNLOAD_LIMIT_HELP, rateOption)
    .option('--log <file>', 'structured log file (default: DIR/.swarmshare/peer.log)');
  addDashboardFlags(peer).action(runPeerCommand);

  const list = program
    .command('list')
    .description('list the files that the trackers and known peers offer')
    .argument('[text]', 'only files whose name contains this text');
  addDiscoveryFlags(list, { hostsAndLan: false })
    .option('--json', 'print one JSON document instead of a table')
    .action(runListCommand);

  const get = program
    .command('get')
    .description('download a file by name or id, as a temporary peer (a source for others while it runs)')
    .argument('<name-or-id>', 'file name, id, or id prefix (6+ hex digits)');
  addDiscoveryFlags(get, { hostsAndLan: false })
    .option('--out <dir>', 'folder to save into', '.')
    .option('--host <host>', 'address to serve chunks on while downloading', DEFAULT_HOST)
    .option('--json', 'print a JSON summary as the last line of stdout')
    .option('--upload-limit <rate>', UPLOAD_LIMIT_HELP, rateOption)
    .option('--download-limit <rate>', DOWNLOAD_LIMIT_HELP, rateOption)
    .option('--log <file>', 'also write the structured log to this file')
    .action(runGetCommand);

  program
    .command('demo')
    .description('run a tracker and a swarm of peers on loopback and narrate a download from many peers')
    .option('--size <MiB>', 'size of the large file', positiveIntOption, 48)
    .option('--keep', 'keep the temporary folders for a look afterwards')
    .action(runDemoCommand);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; commander has already printed the usage problem.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`swarmshare: ${escapeForTerminal(errorMessage(err))}\n`);
    return exitCodeFor(err);
  }
}
