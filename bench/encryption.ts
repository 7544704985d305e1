/**
 * What encryption costs: the same 1 GiB loopback download with TLS 1.3 (what every swarmshare node
 * speaks) and without any (a mode that exists only for this measurement), interleaved run by run so
 * that the machine's noise falls on both alike. The seeder is a ChunkServer in a child process (this
 * file with `--serve`); the downloader is a Download in the bench process, writing to disk with the
 * final whole-file check, as `get` does.
 *
 * Part of `npm run bench` (case `encryption`); on its own:
 *   npm run build && node dist/bench/encryption.js [--size-mib 1024] [--runs 3]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../src/storage/hasher.js';
import type { Manifest } from '../src/storage/manifest.js';
import { downloadFromChild, oneDownloadArgs, serveChunks, type DownloadRun } from './one-download.js';
import { writePayload } from './payload.js';
import { median, MiB, mbPerSecond } from './util.js';

export type Mode = 'tls' | 'unencrypted';
const MODES: readonly Mode[] = ['tls', 'unencrypted'];
/** The goal: encrypted downloads at no less than this share of unencrypted ones. */
export const ENCRYPTION_GOAL_RATIO = 0.8;

export interface EncryptionRun extends DownloadRun {
  mode: Mode;
  mbps: number;
}

export interface EncryptionResult {
  size: number;
  runs: EncryptionRun[];
  /** Median MB/s per mode, and TLS's as a share of unencrypted. */
  tlsMbps: number;
  plainMbps: number;
  ratio: number;
}

async function downloadOnce(
  file: string,
  manifest: Manifest,
  workDir: string,
  mode: Mode,
): Promise<EncryptionRun> {
  const unencrypted = mode === 'unencrypted';
  const self = fileURLToPath(import.meta.url);
  const run = await downloadFromChild(self, ['--serve', file, mode], file, manifest, workDir, {
    unencrypted,
  });
  return { mode, mbps: mbPerSecond(manifest.size, run.seconds), ...run };
}

/** Downloads `file` `runs` times in each mode, alternating, and compares the medians. */
export async function measureEncryption(options: {
  file: string;
  workDir: string;
  runs: number;
  log: (line: string) => void;
}): Promise<EncryptionResult> {
  const manifest = await hashFile(options.file, path.basename(options.file));
  const runs: EncryptionRun[] = [];
  for (let i = 0; i < options.runs; i++) {
    for (const mode of i % 2 === 0 ? MODES : [...MODES].reverse()) {
      const run = await downloadOnce(options.file, manifest, options.workDir, mode);
      options.log(`encryption: ${mode} run ${i + 1}: ${run.mbps.toFixed(0)} MB/s`);
      runs.push(run);
    }
  }
  const medianOf = (mode: Mode): number => median(runs.filter((r) => r.mode === mode).map((r) => r.mbps));
  const tlsMbps = medianOf('tls');
  const plainMbps = medianOf('unencrypted');
  return { size: manifest.size, runs, tlsMbps, plainMbps, ratio: tlsMbps / plainMbps };
}

/** CPU milliseconds per MB of a mode's median run, downloader and seeder. */
function cpuPerMb(result: EncryptionResult, mode: Mode): { downloader: number; seeder: number | null } {
  const runs = result.runs.filter((r) => r.mode === mode);
  const typical = runs.find((r) => r.mbps === median(runs.map((x) => x.mbps))) ?? runs[0]!;
  const mb = result.size / 1e6;
  return {
    downloader: (typical.downloaderCpu * 1000) / mb,
    seeder: typical.seederCpu === null ? null : (typical.seederCpu * 1000) / mb,
  };
}

/** The section of BENCHMARKS.md. */
export function renderEncryption(r: EncryptionResult): string {
  const row = (mode: Mode, label: string): string => {
    const speeds = r.runs.filter((x) => x.mode === mode).map((x) => x.mbps.toFixed(0));
    const cpu = cpuPerMb(r, mode);
    const seeder = cpu.seeder === null ? 'n/a' : cpu.seeder.toFixed(2);
    const mbps = mode === 'tls' ? r.tlsMbps : r.plainMbps;
    return `| ${label} | ${mbps.toFixed(0)} | ${speeds.join(', ')} | ${cpu.downloader.toFixed(2)} | ${seeder} |`;
  };
  const size =
    r.size % (1024 * MiB) === 0 ? `${r.size / (1024 * MiB)} GiB` : `${(r.size / MiB).toFixed(0)} MiB`;
  return [
    '## What encryption costs',
    '',
    `The same ${size} download from one seeder (a chunk server in its own process) to one downloader, written ` +
      'to disk with the final whole-file check, over TLS 1.3 as always, and over plain TCP in a mode that exists ' +
      'only for this measurement. The runs alternate between the two so that the noise of the machine falls on ' +
      `both alike. MB = 10^6 bytes. Goal: encrypted at least ${ENCRYPTION_GOAL_RATIO} of unencrypted.`,
    '',
    '| transport | MB/s (median) | runs | downloader CPU-ms/MB | seeder CPU-ms/MB |',
    '|---|---:|---|---:|---:|',
    row('tls', 'TLS 1.3 (AES-GCM, Ed25519 certificates)'),
    row('unencrypted', 'unencrypted (measurement only)'),
    '',
    `Encrypted throughput is **${r.ratio.toFixed(2)}** of unencrypted ` +
      `(${r.ratio >= ENCRYPTION_GOAL_RATIO ? 'goal met' : '**goal not met**'}). Why TLS 1.3 rather than Noise: ` +
      '[docs/crypto-choice.md](docs/crypto-choice.md).',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { serve, sizeBytes, runs } = oneDownloadArgs();
  if (serve) {
    const [file, mode] = serve;
    await serveChunks(file!, { unencrypted: mode === 'unencrypted' });
    return;
  }
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-encryption-'));
  try {
    const file = path.join(workDir, 'payload.bin');
    await writePayload(file, sizeBytes);
    const result = await measureEncryption({ file, workDir, runs, log: console.log });
    console.log(renderEncryption(result));
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
