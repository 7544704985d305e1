/**
 * A seeder in its own process, for tests that kill a peer mid-transfer.
 * Usage: node seeder-process.js <file> <name> <delayMs>
 * Prints one JSON line {"port": n} when it listens; exits when its stdin closes (the parent is gone).
 * Without arguments it exits at once.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkCount } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';

const [file, name, delayText] = process.argv.slice(2);
if (!file || !name) {
  // `node --test dist/test/` runs every .js file under a test/ folder, this one included, with no
  // arguments: there is nothing to do then.
  process.exit(0);
}
const delayMs = Number(delayText ?? 0);
const manifest = await hashFile(file, name);
const server = new ChunkServer({
  provider: async (fileId, index) => {
    if (!fileId.equals(manifest.id) || index >= chunkCount(manifest)) return null;
    if (delayMs > 0) await delay(delayMs);
    return readFileChunk(file, manifest, index);
  },
});
const { port } = await server.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
