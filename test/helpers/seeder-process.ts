/**
 * A seeder in its own process, for tests that kill a peer mid-transfer.
 * Usage: node seeder-process.js <file> <name> <delayMs> [kill-mid-chunk]
 * With kill-mid-chunk it sends its first chunk whole, then half of the next one, and SIGKILLs itself
 * once that half is with the kernel: a peer that dies in the middle of a chunk.
 * Prints one JSON line {"port": n} when it listens; exits when its stdin closes (the parent is gone).
 * Without arguments it exits at once.
 */
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
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
if (process.argv[5] === 'kill-mid-chunk') {
  // Chunk data is written as its own buffer after the frame and message headers (see
  // FramedConnection.send): the second large write is cut in half.
  const write = net.Socket.prototype.write as (this: net.Socket, ...args: unknown[]) => boolean;
  let pieces = 0;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]): boolean {
    const data = args[0];
    if (Buffer.isBuffer(data) && data.length >= 64 * 1024 && ++pieces === 2) {
      return write.call(this, data.subarray(0, data.length >> 1), () => process.kill(process.pid, 'SIGKILL'));
    }
    return write.apply(this, args);
  } as typeof net.Socket.prototype.write;
}
const manifest = await hashFile(file, name);
const credentials = await ephemeralCredentials();
const server = new ChunkServer({
  credentials,
  provider: async (fileId, index) => {
    if (!fileId.equals(manifest.id) || index >= chunkCount(manifest)) return null;
    if (delayMs > 0) await delay(delayMs);
    return readFileChunk(file, manifest, index);
  },
});
const { port } = await server.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port, peerId: credentials.peerId.toString('hex') })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
