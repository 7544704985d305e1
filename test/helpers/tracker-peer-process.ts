/**
 * A minimal peer in a process of its own, for tests that kill it: connects to the tracker given on
 * the command line, registers, announces one made-up file, prints "ready", then idles (the open
 * session keeps the process alive; it never pings, so only the connection tells the tracker it lives).
 *
 *   node tracker-peer-process.js <port> <peer label> <file name>
 *
 * Run without arguments (as the test runner does with every file in test/) it does nothing.
 */
import { createHash } from 'node:crypto';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { computeFileId } from '../../src/storage/manifest.js';
import { TrackerClient } from '../../src/tracker/client.js';

async function main(port: number, label: string, fileName: string): Promise<void> {
  const hash = (text: string): Buffer => createHash('sha256').update(text).digest();
  const hashes = Buffer.concat([hash(`${label}/0`), hash(`${label}/1`)]);
  const size = MIN_CHUNK_SIZE + 10;
  const manifest = {
    id: computeFileId(size, MIN_CHUNK_SIZE, hashes),
    name: fileName,
    size,
    chunkSize: MIN_CHUNK_SIZE,
    hashes,
  };
  const client = await TrackerClient.connect({ host: '127.0.0.1', port });
  await client.register({ name: label, port: 9999 });
  const [result] = await client.announce([manifest]);
  if (result?.code) throw new Error(`announce refused: ${result.code}`);
  client.on('close', () => process.exit(0));
  process.stdout.write('ready\n');
}

const [portText, label, fileName] = process.argv.slice(2);
if (portText && label && fileName) {
  main(Number(portText), label, fileName).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
