/**
 * `swarmshare get`: downloads one file as a temporary peer. Exit 0 only when the file is complete
 * and verified; otherwise one clear line on stderr and nothing under the final name.
 *
 * A download that fails, is interrupted (SIGINT, SIGTERM: its state is saved first) or is killed
 * keeps its partial file and state in OUT/.swarmshare/partial, and running the same command again
 * resumes it, fetching only what is missing. The state folder is removed only by a download that
 * succeeds, and only if a `get` created it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TrackerAddress } from '../../address.js';
import { STATE_DIR_NAME } from '../../constants.js';
import { SwarmError, errorCode, errorMessage, isErrorCode } from '../../errors.js';
import { createLogger, silentLogger } from '../../log.js';
import type { ActiveDownload } from '../../peer/peer-node.js';
import { PeerNode } from '../../peer/peer-node.js';
import { fileIdHex } from '../../storage/manifest.js';
import { PARTIAL_DIR_NAME, hasPartial } from '../../storage/partial-file.js';
import { TrackerClient } from '../../tracker/client.js';
import { escapeForTerminal, jsonForTerminal } from '../../terminal-text.js';
import { trackersFrom, type DiscoveryFlags } from '../discovery-flags.js';
import { ephemeralCredentials } from '../../transport/credentials.js';
import { loadSwarmKey, type SwarmKey } from '../../transport/swarm-secret.js';
import { describeDownload, formatBytes } from '../format.js';
import { DownloadProgressDisplay } from '../progress.js';

export interface GetCommandOptions extends DiscoveryFlags {
  out: string;
  host: string;
  json?: boolean;
  log?: string;
  /** Bytes per second, over all connections (parsed by the CLI). */
  uploadLimit?: number;
  downloadLimit?: number;
}

/** Marks a state folder that a `get` created, so that a later `get` that finishes may remove it. */
const CREATED_BY_GET = 'created-by-get';

export async function runGetCommand(nameOrId: string, options: GetCommandOptions): Promise<void> {
  const logger = options.log
    ? createLogger({ name: 'get', stderrLevel: 'silent', file: options.log })
    : silentLogger();
  const peers = options.peer ?? [];
  const swarmKey = await loadSwarmKey(options.secret);
  const trackers = await reachableTrackers(trackersFrom(options), peers.length > 0, swarmKey);

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
    swarmKey,
    name: 'get',
    uploadLimit: options.uploadLimit,
    downloadLimit: options.downloadLimit,
    logger,
  });
  if (createdStateDir) await fs.writeFile(path.join(stateDir, CREATED_BY_GET), '').catch(() => undefined);
  const display = new DownloadProgressDisplay(process.stderr);
  const detach = display.attach(node);
  const onStarted = ({ manifest, download }: ActiveDownload): void => {
    download.on('resumed', (chunks, bytes) =>
      display.log(
        process.stderr,
        `resuming ${escapeForTerminal(manifest.name)}: ${formatBytes(bytes)} of ${formatBytes(manifest.size)} ` +
          `(${chunks} chunks) already here and verified again`,
      ),
    );
    download.on('source-banned', (ban) =>
      display.log(
        process.stderr,
        `banned peer ${escapeForTerminal(ban.name)} (${ban.peerId.slice(0, 12)}) at ${escapeForTerminal(ban.address)} ` +
          `for the rest of this download: ${escapeForTerminal(ban.detail)}`,
      ),
    );
  };
  node.on('download-started', onStarted);
  const signals = watchSignals();
  let target: { id: Buffer; name?: string } | null = null;
  let active: ActiveDownload | null = null;
  let succeeded = false;
  try {
    await signals.race(node.discoverySettled());
    target = await signals.race(node.resolveTarget(nameOrId));
    const started = await signals.race(node.startDownload(target.id, target.name));
    active = started.active;
    started.finished.catch(() => undefined); // raced below; an interruption settles it later
    const result = await signals.race(started.finished);
    succeeded = true;
    display.stop();
    if (options.json) {
      const summary = {
        id: fileIdHex(target.id),
        name: result.name,
        size: result.size,
        path: path.resolve(result.path),
        seconds: result.seconds,
        resumedBytes: result.resumedBytes,
        sources: result.sources.map((s) => ({ peer: s.peerId, name: s.name, bytes: s.bytes })),
      };
      process.stdout.write(`${jsonForTerminal(summary)}\n`);
    } else {
      const resumed =
        result.resumedBytes > 0 ? ` (resumed: ${formatBytes(result.resumedBytes)} were already here)` : '';
      process.stdout.write(`${describeDownload(result)}${resumed}\n`);
    }
  } catch (err) {
    // Stopping the node saves every download's state: only then is it worth telling of.
    await node.close();
    throw await withResumeHint(err, stateDir, target, active);
  } finally {
    signals.dispose();
    node.off('download-started', onStarted);
    detach();
    display.stop();
    await node.close();
    await cleanUpStateDir(stateDir, createdStateDir, succeeded);
  }
}

/** The error, saying so when the partial download is kept for a resume. */
async function withResumeHint(
  err: unknown,
  stateDir: string,
  target: { id: Buffer } | null,
  active: ActiveDownload | null,
): Promise<unknown> {
  // A download that another process runs is not ours to resume.
  if (!target || errorCode(err) === 'ERR_IN_PROGRESS' || !(await hasPartial(stateDir, target.id))) return err;
  const code = errorCode(err);
  const progress = active?.download.progress;
  const kept = progress
    ? `${formatBytes(progress.bytes)} of ${formatBytes(progress.size)} verified`
    : 'what was verified';
  return new SwarmError(
    code && isErrorCode(code) ? code : 'ERR_IO',
    `${errorMessage(err)}; the partial download (${kept}) is kept in ` +
      `${path.join(stateDir, PARTIAL_DIR_NAME)}: run the same get again to resume it`,
    { cause: err },
  );
}

/**
 * Removes what `get` made in the state folder: all of it when this run created the folder and keeps
 * nothing in it; after a success, also a folder an earlier `get` created and left for a resume, if
 * nothing else lives there now. Anything else there (a peer's identity, other downloads) stays.
 */
async function cleanUpStateDir(stateDir: string, createdNow: boolean, succeeded: boolean): Promise<void> {
  const partialDir = path.join(stateDir, PARTIAL_DIR_NAME);
  const keptDownloads = (await fs.readdir(partialDir).catch(() => [])).length > 0;
  if (keptDownloads) return;
  if (createdNow) {
    await fs.rm(stateDir, { recursive: true, force: true });
    return;
  }
  if (!succeeded || !(await exists(path.join(stateDir, CREATED_BY_GET)))) return;
  await fs.rmdir(partialDir).catch(() => undefined);
  await fs.rm(path.join(stateDir, CREATED_BY_GET), { force: true });
  // Fails, and leaves it, if anything else is there.
  await fs
    .rmdir(stateDir)
    .catch(() => fs.writeFile(path.join(stateDir, CREATED_BY_GET), '').catch(() => undefined));
}

/**
 * SIGINT and SIGTERM, while a download runs, reject whatever is raced against them, so the command
 * stops the download (saving its state) and exits with the usual error line. A second signal ends
 * the process at once, as it would without us.
 */
function watchSignals(): { race: <T>(promise: Promise<T>) => Promise<T>; dispose: () => void } {
  let onSignal: ((signal: NodeJS.Signals) => void) | null = null;
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = (signal) => {
      dispose();
      reject(new SwarmError('ERR_INTERRUPTED', `interrupted by ${signal}`));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  interrupted.catch(() => undefined);
  const dispose = (): void => {
    if (!onSignal) return;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    onSignal = null;
  };
  return { race: (promise) => Promise.race([promise, interrupted]), dispose };
}

/**
 * Tries each tracker once, so that a tracker that cannot be reached fails the command at once
 * instead of being retried in the background. With known peers to fall back on, an unreachable
 * tracker is only a warning.
 */
async function reachableTrackers(
  trackers: TrackerAddress[],
  havePeers: boolean,
  swarmKey: SwarmKey | null,
): Promise<TrackerAddress[]> {
  const credentials = await ephemeralCredentials(swarmKey);
  const probes = await Promise.allSettled(
    trackers.map(async (tracker) => {
      const client = await TrackerClient.connect({
        host: tracker.host,
        port: tracker.port,
        trackerId: tracker.trackerId,
        credentials,
      });
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
    process.stderr.write(`swarmshare: warning: ${escapeForTerminal(errorMessage(failure))}\n`);
  return reachable;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
