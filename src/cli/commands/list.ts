/** `swarmshare list`: prints a tracker's catalog, as a table or as JSON. */
import type { Endpoint } from '../../address.js';
import { MAX_LIST_RESULTS } from '../../constants.js';
import { fileIdHex } from '../../storage/manifest.js';
import { TrackerClient } from '../../tracker/client.js';
import { catalogTable } from '../shell.js';

export interface ListCommandOptions {
  tracker: Endpoint;
  json?: boolean;
}

export async function runListCommand(text: string | undefined, options: ListCommandOptions): Promise<void> {
  const client = await TrackerClient.connect({ host: options.tracker.host, port: options.tracker.port });
  try {
    const { total, files } = await client.list(text ?? '', MAX_LIST_RESULTS);
    if (options.json) {
      const document = {
        files: files.map((f) => ({
          id: fileIdHex(f.id),
          name: f.name,
          size: f.size,
          chunks: f.chunks,
          sources: f.seeders,
        })),
      };
      process.stdout.write(`${JSON.stringify(document)}\n`);
      return;
    }
    if (files.length === 0) {
      process.stdout.write(text ? `no file matches "${text}"\n` : 'the catalog is empty\n');
      return;
    }
    process.stdout.write(`${catalogTable(files)}\n`);
    if (total > files.length) process.stdout.write(`(${files.length} of ${total} shown)\n`);
  } finally {
    client.close();
  }
}
