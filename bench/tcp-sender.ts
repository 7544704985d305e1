/**
 * Child process of the raw loopback TCP limit: connects to 127.0.0.1:PORT and writes BYTES bytes
 * from one reused buffer, respecting back-pressure, then closes its side.
 *
 *   node dist/bench/tcp-sender.js PORT BYTES [BLOCK_BYTES]
 */
import net from 'node:net';
import { once } from 'node:events';

async function send(port: number, total: number, blockBytes: number): Promise<void> {
  const block = Buffer.alloc(blockBytes, 0xa5);
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  let sent = 0;
  while (sent < total) {
    const n = Math.min(block.length, total - sent);
    sent += n;
    if (!socket.write(n === block.length ? block : block.subarray(0, n))) await once(socket, 'drain');
  }
  socket.end();
  await once(socket, 'close');
}

const [portText, bytesText, blockText] = process.argv.slice(2);
const port = Number(portText);
const total = Number(bytesText);
const blockBytes = Number(blockText ?? 1024 * 1024);
if (
  !Number.isInteger(port) ||
  !Number.isSafeInteger(total) ||
  !Number.isInteger(blockBytes) ||
  blockBytes <= 0
) {
  process.stderr.write('usage: tcp-sender PORT BYTES [BLOCK_BYTES]\n');
  process.exit(2);
}
await send(port, total, blockBytes);
