/**
 * The machine's limits, measured in the same run as the product so the ratios survive a noisy,
 * shared machine: SHA-256 on one core, raw TCP over loopback from one process to another, and (for
 * context, since a download ends with its file flushed to disk) writing a file and syncing it.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ProcessGroup } from './processes.js';
import { MiB, mbPerSecond, median, nowSeconds } from './util.js';

export interface Measured {
  /** Median MB/s. */
  mbps: number;
  runs: number[];
  bytes: number;
}

const SENDER = fileURLToPath(new URL('./tcp-sender.js', import.meta.url));

/** SHA-256 of `bytes` in 1 MiB updates from one buffer, on this thread: MB/s per run. */
export function measureSha256(bytes: number, runs: number): Measured {
  const block = randomBytes(MiB);
  const speeds: number[] = [];
  for (let run = 0; run < runs; run++) {
    const hash = createHash('sha256');
    const start = nowSeconds();
    for (let done = 0; done < bytes; done += block.length) {
      hash.update(done + block.length <= bytes ? block : block.subarray(0, bytes - done));
    }
    hash.digest();
    speeds.push(mbPerSecond(bytes, nowSeconds() - start));
  }
  return { mbps: median(speeds), runs: speeds, bytes };
}

/**
 * A child process writes `bytes` to a loopback socket; this process reads and discards them.
 * Timed from the first byte received to the end of the stream.
 */
export async function measureRawTcp(group: ProcessGroup, bytes: number, runs: number): Promise<Measured> {
  const speeds: number[] = [];
  for (let run = 0; run < runs; run++) speeds.push(await rawTcpOnce(group, bytes));
  return { mbps: median(speeds), runs: speeds, bytes };
}

async function rawTcpOnce(group: ProcessGroup, bytes: number): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  try {
    const { port } = server.address() as net.AddressInfo;
    const received = new Promise<{ bytes: number; seconds: number }>((resolve, reject) => {
      server.once('connection', (socket) => {
        let count = 0;
        let start = 0;
        socket.on('data', (data: Buffer) => {
          if (count === 0) start = nowSeconds();
          count += data.length;
        });
        socket.once('end', () => resolve({ bytes: count, seconds: nowSeconds() - start }));
        socket.once('error', reject);
      });
    });
    const sender = group.spawnNode('tcp-sender', SENDER, [String(port), String(bytes)]);
    const deadline = setTimeout(() => sender.kill('SIGKILL'), 120_000);
    try {
      const senderDone = sender.exited.then(({ code, signal }) => {
        if (code !== 0)
          throw new Error(`tcp-sender exited with ${code ?? signal}: ${sender.describeOutput()}`);
      });
      // Rejects at once if the sender fails; otherwise waits for the end of the stream and the exit.
      const [result] = await Promise.all([received, senderDone]);
      if (result.bytes !== bytes) throw new Error(`raw TCP: received ${result.bytes} of ${bytes} bytes`);
      return mbPerSecond(result.bytes, result.seconds);
    } finally {
      clearTimeout(deadline);
    }
  } finally {
    server.close();
  }
}

/**
 * Writes `bytes` to `file` in 4 MiB blocks from one buffer, fsyncs and closes it: MB/s per run,
 * the file deleted after each run. This is what a download must do with its data at the least.
 */
export async function measureDiskWrite(file: string, bytes: number, runs: number): Promise<Measured> {
  const block = randomBytes(4 * MiB);
  const speeds: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = nowSeconds();
    const handle = await fs.open(file, 'w');
    try {
      for (let done = 0; done < bytes; done += block.length) {
        await handle.write(block, 0, Math.min(block.length, bytes - done), done);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    speeds.push(mbPerSecond(bytes, nowSeconds() - start));
    await fs.rm(file, { force: true });
  }
  return { mbps: median(speeds), runs: speeds, bytes };
}

/**
 * SHA-256 and raw TCP sampled one run at a time at points spread over the benchmark (its start,
 * between phases, its end), so their medians span the same noise as the figures they scale.
 */
export class LimitSamples {
  private readonly sha: number[] = [];
  private readonly tcp: number[] = [];

  constructor(
    private readonly group: ProcessGroup,
    private readonly shaBytes: number,
    private readonly tcpBytes: number,
  ) {}

  async sample(): Promise<void> {
    this.sha.push(...measureSha256(this.shaBytes, 1).runs);
    this.tcp.push(...(await measureRawTcp(this.group, this.tcpBytes, 1)).runs);
  }

  get sha256(): Measured {
    return { mbps: median(this.sha), runs: [...this.sha], bytes: this.shaBytes };
  }

  get rawTcp(): Measured {
    return { mbps: median(this.tcp), runs: [...this.tcp], bytes: this.tcpBytes };
  }
}
