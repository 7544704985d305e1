/**
 * `swarmshare list`: prints what the trackers and known peers offer, as a table or as JSON.
 * A one-shot client: it registers nowhere and serves nothing.
 */
import { formatEndpoint } from '../../address.js';
import { MAX_LIST_RESULTS, TRACKER_READY_TIMEOUT_MS } from '../../constants.js';
import { mergeCatalogs } from '../../discovery/discovery.js';
import { PeerMesh } from '../../discovery/mesh.js';
import { ephemeralCredentials } from '../../transport/credentials.js';
import { loadSwarmKey } from '../../transport/swarm-secret.js';
import { SwarmError, errorMessage } from '../../errors.js';
import { fileIdHex } from '../../storage/manifest.js';
import { TrackerClient } from '../../tracker/client.js';
import type { FileSummary } from '../../wire/tracker-messages.js';
import { escapeForTerminal, jsonForTerminal } from '../../terminal-text.js';
import { trackersFrom, type DiscoveryFlags } from '../discovery-flags.js';
import { catalogTable } from '../shell.js';

export interface ListCommandOptions extends DiscoveryFlags {
  json?: boolean;
}

export async function runListCommand(text: string | undefined, options: ListCommandOptions): Promise<void> {
  const query = text ?? '';
  const catalogs: FileSummary[][] = [];
  const failures: Error[] = [];
  const credentials = await ephemeralCredentials(await loadSwarmKey(options.secret));
  await Promise.all([
    ...trackersFrom(options).map(async (tracker) => {
      try {
        const client = await TrackerClient.connect({
          host: tracker.host,
          port: tracker.port,
          trackerId: tracker.trackerId,
          credentials,
        });
        try {
          catalogs.push((await client.list(query, MAX_LIST_RESULTS)).files);
        } finally {
          client.close();
        }
      } catch (err) {
        failures.push(err as Error);
      }
    }),
    (async () => {
      if (!options.peer?.length) return;
      const mesh = new PeerMesh({ credentials, self: { peerId: credentials.peerId, name: 'list', port: 0 } });
      try {
        for (const peer of options.peer) mesh.addHost(peer, 'static');
        await mesh.settled(TRACKER_READY_TIMEOUT_MS);
        if (mesh.peers().length > 0) catalogs.push(mesh.catalog(query));
        else {
          const hosts = options.peer.map(formatEndpoint).join(', ');
          failures.push(new SwarmError('ERR_UNREACHABLE', `no known peer answered (${hosts})`));
        }
      } finally {
        mesh.close();
      }
    })(),
  ]);
  // Every source failing is an error; some failing is a warning beside the answer of the others.
  if (catalogs.length === 0)
    throw failures[0] ?? new SwarmError('ERR_INVALID_ARGUMENT', 'no tracker and no peer to ask');
  for (const failure of failures)
    process.stderr.write(`swarmshare: warning: ${escapeForTerminal(errorMessage(failure))}\n`);
  const files = mergeCatalogs(catalogs);
  if (options.json) {
    const document = {
      // sources: live peers with the whole file; peers: live peers with any of it.
      files: files.map((f) => ({
        id: fileIdHex(f.id),
        name: f.name,
        size: f.size,
        chunks: f.chunks,
        sources: f.seeders,
        peers: f.peers,
      })),
    };
    process.stdout.write(`${jsonForTerminal(document)}\n`);
    return;
  }
  if (files.length === 0) {
    process.stdout.write(
      query ? `no file matches "${escapeForTerminal(query)}"\n` : 'the catalog is empty\n',
    );
    return;
  }
  process.stdout.write(`${catalogTable(files)}\n`);
}
