/**
 * `swarmshare get`: downloads one file as a temporary peer. Exit 0 only when the file is complete
 * and verified; otherwise one clear line on stderr and nothing under the final name.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Endpoint } from '../../address.js';
import { MAX_LIST_RESULTS, STATE_DIR_NAME } from '../../constants.js';
import { createLogger, silentLogger } from '../../log.js';
import { PeerNode, resolveInCatalog } from '../../peer/peer-node.js';
import { fileIdHex } from '../../storage/manifest.js';
import { TrackerClient } from '../../tracker/client.js';
import { describeDownload } from '../format.js';
import { DownloadProgressDisplay } from '../progress.js';

export interface GetCommandOptions {
  tracker: Endpoint;
  out: string;
  host: string;
  json?: boolean;
  log?: string;
}

export async function runGetCommand(nameOrId: string, options: GetCommandOptions): Promise<void> {
  const logger = options.log
    ? createLogger({ name: 'get', stderrLevel: 'silent', file: options.log })
    : silentLogger();
  // Resolve the name first, so an unknown or ambiguous name fails before anything is created.
  const client = await TrackerClient.connect({
    host: options.tracker.host,
    port: options.tracker.port,
    logger,
  });
  let entry;
  try {
    entry = await resolveInCatalog(await client.list('', MAX_LIST_RESULTS), nameOrId, (q) =>
      client.list(q, MAX_LIST_RESULTS),
    );
  } finally {
    client.close();
  }

  await fs.mkdir(options.out, { recursive: true });
  const stateDir = path.join(options.out, STATE_DIR_NAME);
  const createdStateDir = !(await exists(stateDir));
  const node = await PeerNode.start({
    dir: options.out,
    tracker: options.tracker,
    host: options.host,
    shareOnStart: false,
    ephemeralIdentity: true,
    name: 'get',
    logger,
  });
  const display = new DownloadProgressDisplay(process.stderr);
  const detach = display.attach(node);
  try {
    await node.trackerReady();
    const result = await node.download(entry.id);
    display.stop();
    if (options.json) {
      const summary = {
        id: fileIdHex(entry.id),
        name: result.name,
        size: result.size,
        path: path.resolve(result.path),
        seconds: result.seconds,
        sources: result.sources.map((s) => ({ peer: s.peerId, name: s.name, bytes: s.bytes })),
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      process.stdout.write(`${describeDownload(result)}\n`);
    }
  } finally {
    detach();
    display.stop();
    await node.close();
    // A one-shot download leaves no state folder behind unless one was there already.
    if (createdStateDir) await fs.rm(stateDir, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
