/**
 * `npm run bench`: the machine's limits, downloads over loopback with the real command line, and
 * the tracker under load; prints a table and rewrites BENCHMARKS.md.
 *
 *   node dist/bench/run.js [--size-mib N] [--runs N]
 *
 * BENCH_SIZE_MIB and BENCH_RUNS do the same as the flags (the flags win). The defaults are a 1 GiB
 * payload and 5 runs of each download.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LimitSamples, measureDiskWrite } from './limits.js';
import { ProcessGroup } from './processes.js';
import { formatConsole, formatMarkdown, type BenchResult } from './report.js';
import { DEFAULT_TRACKER_LOAD, measureTracker } from './tracker-load.js';
import { measureTransfers } from './transfer.js';
import { errorText, MiB, nowSeconds } from './util.js';

const REPORT_FILE = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const DISK_RUNS = 3;
const SHA256_BYTES = 512 * MiB;
const RAW_TCP_BYTES = 2048 * MiB;
const SEEDER_COUNTS = [1, 4] as const;

interface Config {
  sizeMiB: number;
  runs: number;
}

function positiveInt(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`${what} must be a positive whole number, got "${text}"`);
  return n;
}

function parseConfig(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    options: { 'size-mib': { type: 'string' }, runs: { type: 'string' } },
    strict: true,
  });
  return {
    sizeMiB: positiveInt(values['size-mib'] ?? process.env.BENCH_SIZE_MIB, 'the payload size (MiB)', 1024),
    runs: positiveInt(values.runs ?? process.env.BENCH_RUNS, 'the number of runs', 5),
  };
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv.slice(2));
  const began = nowSeconds();
  const date = new Date();
  const log = (line: string): void =>
    void process.stderr.write(`[bench ${(nowSeconds() - began).toFixed(1)} s] ${line}\n`);
  const group = new ProcessGroup();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmshare-bench-'));
  const cleanUp = (): void => fs.rmSync(workDir, { recursive: true, force: true });
  // On Ctrl-C or a kill: the group's exit hook kills the children, this removes the files.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping`);
    cleanUp();
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const limits = new LimitSamples(group, SHA256_BYTES, RAW_TCP_BYTES);
    const sampleLimits = async (): Promise<void> => {
      log(`limits: SHA-256 of ${SHA256_BYTES / MiB} MiB, raw loopback TCP of ${RAW_TCP_BYTES / MiB} MiB`);
      await limits.sample();
    };
    await sampleLimits();
    log(`disk: write ${config.sizeMiB} MiB and fsync, ${DISK_RUNS} runs`);
    const disk = await measureDiskWrite(
      path.join(workDir, 'disk-probe.bin'),
      config.sizeMiB * MiB,
      DISK_RUNS,
    );

    const transfer = await measureTransfers({
      group,
      workDir,
      size: config.sizeMiB * MiB,
      runs: config.runs,
      seederCounts: SEEDER_COUNTS,
      betweenCases: sampleLimits,
      log,
    });
    const tracker = await measureTracker({ group, ...DEFAULT_TRACKER_LOAD, log });
    await sampleLimits();

    const cpus = os.cpus();
    const result: BenchResult = {
      command: 'npm run bench',
      date,
      totalSeconds: nowSeconds() - began,
      machine: {
        cores: cpus.length,
        cpu: cpus[0]?.model.trim() ?? 'unknown',
        node: process.version,
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        memoryGiB: os.totalmem() / 1024 ** 3,
      },
      transferRuns: config.runs,
      sha256: limits.sha256,
      rawTcp: limits.rawTcp,
      disk,
      transfer,
      tracker,
    };
    process.stdout.write(formatConsole(result));
    fs.writeFileSync(REPORT_FILE, formatMarkdown(result));
    log(`wrote ${REPORT_FILE}`);
  } finally {
    await group.stopAll();
    cleanUp();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${errorText(err)}\n`);
  process.exitCode = 1;
});
