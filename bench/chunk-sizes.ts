/**
 * A design measurement, not part of `npm run bench`: the same 1 GiB loopback download with chunks of
 * 256 KiB, 1 MiB, 4 MiB and 16 MiB, to see what the chunk size costs or buys on one connection.
 * The seeder is a ChunkServer in a child process (this file with `--serve`); the downloader is a
 * Download in this process, writing to disk with the final whole-file check, as `get` does.
 *
 *   npm run build && node dist/bench/chunk-sizes.js [--size-mib 1024] [--runs 3]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../src/storage/hasher.js';
import { chunkCount, type Manifest } from '../src/storage/manifest.js';
import { downloadFromChild, oneDownloadArgs, serveChunks, type DownloadRun } from './one-download.js';
import { writePayload } from './payload.js';
import { median, MiB, mbPerSecond } from './util.js';

const CHUNK_SIZES = [256 * 1024, MiB, 4 * MiB, 16 * MiB];

function downloadOnce(file: string, manifest: Manifest, workDir: string): Promise<DownloadRun> {
  const self = fileURLToPath(import.meta.url);
  return downloadFromChild(self, ['--serve', file, String(manifest.chunkSize)], file, manifest, workDir);
}

async function main(): Promise<void> {
  const { serve, sizeBytes: size, runs } = oneDownloadArgs();
  if (serve) {
    const [file, chunkSize] = serve;
    await serveChunks(file!, { chunkSize: Number(chunkSize) });
    return;
  }
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
      const results: DownloadRun[] = [];
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
