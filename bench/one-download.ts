/**
 * One loopback download from a seeder in a child process, measured: the building block of the design
 * measurements that compare variants of the same transfer (bench/chunk-sizes.ts, bench/encryption.ts).
 * The seeder is a ChunkServer in a child process running the measuring script itself in its serve
 * mode (serveChunks); the downloader is a Download in this process, writing to disk with the final
 * whole-file check, as `get` does.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ChunkServer } from '../src/peer/chunk-server.js';
import { Download, type DownloadOptions } from '../src/peer/download.js';
import { Bitfield } from '../src/storage/bitfield.js';
import { hashFile } from '../src/storage/hasher.js';
import { chunkCount, type Manifest } from '../src/storage/manifest.js';
import { readFileChunk } from '../src/storage/shared-folder.js';
import { readThrough } from './payload.js';
import { MiB, processCpuSeconds } from './util.js';

/**
 * The command line of a script built on this: `--serve ARGS...` runs it as the seeder (`serve` holds
 * ARGS, null otherwise); else `--size-mib N` (default 1024) and `--runs N` (default 3).
 */
export function oneDownloadArgs(): { serve: string[] | null; sizeBytes: number; runs: number } {
  const { values, positionals } = parseArgs({
    options: {
      serve: { type: 'boolean' },
      'size-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '3' },
    },
    allowPositionals: true,
    strict: false,
  });
  return {
    serve: values.serve ? positionals : null,
    sizeBytes: Number(values['size-mib']) * MiB,
    runs: Number(values.runs),
  };
}

export interface DownloadRun {
  seconds: number;
  /** CPU seconds of each process over the download (null if the seeder's could not be read). */
  downloaderCpu: number;
  seederCpu: number | null;
}

/** The serve mode: seeds `file` on a free port, prints `{"port":N}`, and runs until stdin ends. */
export async function serveChunks(
  file: string,
  options: { chunkSize?: number; unencrypted?: boolean } = {},
): Promise<void> {
  const manifest = await hashFile(file, path.basename(file), { chunkSize: options.chunkSize });
  const total = chunkCount(manifest);
  const server = new ChunkServer({
    unencrypted: options.unencrypted === true,
    provider: async (fileId, index) =>
      fileId.equals(manifest.id) && index < total ? readFileChunk(file, manifest, index) : null,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/**
 * Spawns `node script ...serveArgs` (a script whose serve mode calls serveChunks), then downloads
 * `manifest` from it into a fresh folder under `workDir`, timed from the first request to the file
 * in place. `extra` tunes the Download (e.g. `unencrypted`).
 */
export async function downloadFromChild(
  script: string,
  serveArgs: string[],
  file: string,
  manifest: Manifest,
  workDir: string,
  extra: Partial<DownloadOptions> = {},
): Promise<DownloadRun> {
  const child = spawn(process.execPath, [script, ...serveArgs], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`seeder exited with ${code}`)));
    });
    const { port } = JSON.parse(line) as { port: number };
    await readThrough(file); // the page cache holds the payload for the seeder, in every variant alike
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
      ...extra,
    });
    download.on('source-lost', (_peer, why) => process.stderr.write(`bench: the seeder was lost (${why})\n`));
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
