/**
 * A design measurement, not part of `npm run bench`: the same 1 GiB loopback download with chunks of
 * 256 KiB, 1 MiB, 4 MiB and 16 MiB, to see what the chunk size costs or buys on one connection.
 * The seeder is a ChunkServer in a child process (this file with `--serve`); the downloader is a
 * Download in this process, writing to disk with the final whole-file check, as `get` does.
 *
 *   npm run build && node dist/bench/chunk-sizes.js [--size-mib 1024] [--runs 3]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChunkServer } from '../src/peer/chunk-server.js';
import { Download } from '../src/peer/download.js';
import { Bitfield } from '../src/storage/bitfield.js';
import { hashFile } from '../src/storage/hasher.js';
import { chunkCount, type Manifest } from '../src/storage/manifest.js';
import { readFileChunk } from '../src/storage/shared-folder.js';
import { readThrough, writePayload } from './payload.js';
import { median, MiB, mbPerSecond, processCpuSeconds } from './util.js';

const CHUNK_SIZES = [256 * 1024, MiB, 4 * MiB, 16 * MiB];

async function serve(file: string, chunkSize: number): Promise<void> {
  const manifest = await hashFile(file, path.basename(file), { chunkSize });
  const total = chunkCount(manifest);
  const server = new ChunkServer({
    provider: async (fileId, index) =>
      fileId.equals(manifest.id) && index < total ? readFileChunk(file, manifest, index) : null,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

interface Run {
  seconds: number;
  downloaderCpu: number;
  seederCpu: number | null;
}

async function downloadOnce(file: string, manifest: Manifest, workDir: string): Promise<Run> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, '--serve', file, String(manifest.chunkSize)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const [line] = await new Promise<string[]>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', (l) => resolve([l]));
      child.once('exit', (code) => reject(new Error(`seeder exited with ${code}`)));
    });
    const { port } = JSON.parse(line!) as { port: number };
    await readThrough(file);
    const dir = await fs.mkdtemp(path.join(workDir, 'dl-'));
    const seederBefore = processCpuSeconds(child.pid);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const download = new Download({
      manifest,
      dir,
      stateDir: path.join(dir, '.state'),
      findSources: async () => [
        {
          peerId: 'seed',
          name: 'seed',
          host: '127.0.0.1',
          port,
          chunks: Bitfield.full(chunkCount(manifest)),
        },
      ],
    });
    await download.start();
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const seederAfter = processCpuSeconds(child.pid);
    await fs.rm(dir, { recursive: true, force: true });
    return {
      seconds,
      downloaderCpu: (cpu.user + cpu.system) / 1e6,
      seederCpu: seederAfter !== null && seederBefore !== null ? seederAfter - seederBefore : null,
    };
  } finally {
    child.stdin!.end();
    child.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean' },
      'size-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '3' },
    },
    allowPositionals: true,
    strict: false,
  });
  if (values.serve) {
    const [file, chunkSize] = process.argv.slice(3);
    await serve(file!, Number(chunkSize));
    return;
  }
  const size = Number(values['size-mib']) * MiB;
  const runs = Number(values.runs);
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-chunks-'));
  try {
    const file = path.join(workDir, 'payload.bin');
    await writePayload(file, size);
    console.log(
      `| chunk size | chunks | MB/s (median of ${runs}) | runs | downloader CPU-ms/MB | seeder CPU-ms/MB |`,
    );
    console.log('|---:|---:|---:|---|---:|---:|');
    for (const chunkSize of CHUNK_SIZES) {
      const manifest = await hashFile(file, 'payload.bin', { chunkSize });
      const results: Run[] = [];
      for (let i = 0; i < runs; i++) results.push(await downloadOnce(file, manifest, workDir));
      const mb = size / 1e6;
      const speeds = results.map((r) => mbPerSecond(size, r.seconds));
      const typical = results[speeds.indexOf(median(speeds))] ?? results[0]!;
      console.log(
        `| ${chunkSize / 1024} KiB | ${chunkCount(manifest)} | ${median(speeds).toFixed(0)} | ` +
          `${speeds.map((s) => s.toFixed(0)).join(', ')} | ${((typical.downloaderCpu * 1000) / mb).toFixed(2)} | ` +
          `${typical.seederCpu === null ? '' : ((typical.seederCpu * 1000) / mb).toFixed(2)} |`,
      );
    }
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

await main();
