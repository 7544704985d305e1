/**
 * `npm run bench`: every benchmark in one run, each figure beside a limit measured in the same run
 * (or a bound computed for it), and the goals judged from them. In order: the machine's limits
 * (SHA-256 on one core, raw loopback TCP, the disk), downloads from 1 and 4 seeders with the real
 * command line, the same downloads with aria2 and webtorrent, a capped swarm against the Kumar-Ross
 * bound, the peak memory of a large transfer, and the tracker under load. SHA-256 and TCP are sampled
 * again between the big cases and at the end.
 *
 *   node dist/bench/run.js [--quick] [--only CASE,...] [--size-mib N] [--runs N] [--json FILE]
 *
 * --quick: small sizes and one run of each (a smoke test of the benchmark itself).
 * --only: a subset of limits, transfer, peers, swarm, memory, tracker (transfer and peers bring the
 *   limits they are compared with).
 * --size-mib, --runs (or BENCH_SIZE_MIB, BENCH_RUNS; the flags win): the download payload and the
 *   runs of each download case (default 1024 MiB and 5, the other clients at most 3; with --quick
 *   64 MiB and 1).
 * --json FILE: also writes every figure as JSON.
 *
 * Only a complete full run (neither --quick nor --only, every case measured) rewrites BENCHMARKS.md
 * and docs/bench-swarm.svg; any other run writes its report and plot to a temporary folder it prints.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LimitSamples, measureDiskWrite } from './limits.js';
import { measureEncryption } from './encryption.js';
import { runMemory } from './memory.js';
import { writePayload } from './payload.js';
import { runPeerClients } from './peers/index.js';
import { ProcessGroup } from './processes.js';
import {
  CASES,
  formatConsole,
  formatMarkdown,
  type BenchResult,
  type CaseName,
  type Limits,
} from './report.js';
import { runSwarm } from './swarm.js';
import { DEFAULT_TRACKER_LOAD, measureTracker } from './tracker-load.js';
import { measureTransfers } from './transfer.js';
import { errorText, MiB, nowSeconds } from './util.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const REPORT_FILE = path.join(REPO, 'BENCHMARKS.md');
const PLOT_FILE = path.join(REPO, 'docs', 'bench-swarm.svg');
const SEEDER_COUNTS = [1, 4] as const;

/** The sizes of a run: the full benchmark, and a quick smoke test of it. */
const PROFILES = {
  full: {
    sizeMiB: 1024,
    runs: 5,
    /** At most this many runs of each other client's case (aria2 can take a minute per GiB). */
    peerRuns: 3,
    encryptionRuns: 5,
    diskRuns: 3,
    sha256Bytes: 512 * MiB,
    rawTcpBytes: 2048 * MiB,
    swarm: { downloaders: 15, size: 256 * MiB, uploadLimit: 16 * MiB, sampleMs: 400 },
    memoryBytes: 4096 * MiB,
    tracker: DEFAULT_TRACKER_LOAD,
  },
  quick: {
    sizeMiB: 64,
    runs: 1,
    peerRuns: 1,
    encryptionRuns: 1,
    diskRuns: 1,
    sha256Bytes: 128 * MiB,
    rawTcpBytes: 256 * MiB,
    swarm: { downloaders: 3, size: 32 * MiB, uploadLimit: 8 * MiB, sampleMs: 200 },
    memoryBytes: 256 * MiB,
    tracker: { ...DEFAULT_TRACKER_LOAD, sessions: 20, fileSize: 64 * MiB, locateSeconds: 1 },
  },
} as const;

type Profile = (typeof PROFILES)[keyof typeof PROFILES];

interface Config {
  args: string[];
  quick: boolean;
  /** The cases to run, in the order of CASES. */
  cases: CaseName[];
  /** Every case, at full size: the run that may replace BENCHMARKS.md. */
  full: boolean;
  sizeMiB: number;
  runs: number;
  json: string | undefined;
  profile: Profile;
}

const USAGE =
  'usage: node dist/bench/run.js [--quick] [--only CASE,...] [--size-mib N] [--runs N] [--json FILE]\n' +
  `  cases: ${CASES.join(', ')}\n`;

function positiveInt(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`${what} must be a positive whole number, got "${text}"`);
  return n;
}

function parseCases(text: string | undefined): CaseName[] | null {
  if (text === undefined) return null;
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(CASES as readonly string[]).includes(name))
      throw new Error(`--only: unknown case "${name}" (the cases: ${CASES.join(', ')})`);
  }
  const wanted = new Set(names);
  // The downloads and the other clients are reported as ratios to the limits: they bring them along.
  if (wanted.has('transfer') || wanted.has('peers')) wanted.add('limits');
  return CASES.filter((name) => wanted.has(name));
}

function parseConfig(args: string[]): Config | null {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'size-mib': { type: 'string' },
      runs: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const profile = values.quick ? PROFILES.quick : PROFILES.full;
  const only = parseCases(values.only);
  return {
    args,
    quick: values.quick,
    cases: only ?? [...CASES],
    full: !values.quick && only === null,
    sizeMiB: positiveInt(
      values['size-mib'] ?? process.env.BENCH_SIZE_MIB,
      'the payload size (MiB)',
      profile.sizeMiB,
    ),
    runs: positiveInt(values.runs ?? process.env.BENCH_RUNS, 'the number of runs', profile.runs),
    json: values.json,
    profile,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const config = parseConfig(args);
  if (config === null) {
    process.stdout.write(USAGE);
    return;
  }
  const { profile } = config;
  const size = config.sizeMiB * MiB;
  const has = (name: CaseName): boolean => config.cases.includes(name);
  const began = nowSeconds();
  const date = new Date();
  const log = (line: string): void =>
    void process.stderr.write(`[bench ${(nowSeconds() - began).toFixed(1)} s] ${line}\n`);
  const group = new ProcessGroup();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmshare-bench-'));
  // The report and the plot of any run but a complete full one land here (and are kept).
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmshare-bench-report-'));
  const cleanUp = (): void => fs.rmSync(workDir, { recursive: true, force: true });
  // On Ctrl-C or a kill: the group's exit hook kills the children, this removes the files.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping`);
    cleanUp();
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  log(`cases: ${config.cases.join(', ')}${config.quick ? ' (quick)' : ''}`);

  let keepOutDir = false;
  const failed: BenchResult['failed'] = [];
  /** Runs one case; a failure is recorded and reported, and the other cases still run. */
  const attempt = async <T>(name: CaseName, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run();
    } catch (err) {
      log(`${name} failed: ${errorText(err)}`);
      failed.push({ name, error: errorText(err) });
      return null;
    }
  };

  try {
    const samples = new LimitSamples(group, profile.sha256Bytes, profile.rawTcpBytes);
    let limitsOk = false;
    let sampleDue = false;
    const sampleLimits = async (): Promise<void> => {
      if (!limitsOk) return;
      log(
        `limits: SHA-256 of ${profile.sha256Bytes / MiB} MiB, raw loopback TCP of ${profile.rawTcpBytes / MiB} MiB`,
      );
      await samples.sample().catch((err: unknown) => log(`limits: a sample failed: ${errorText(err)}`));
      sampleDue = false;
    };
    /** A big case: the limits are sampled before it if another case ran since the last sample. */
    const bigCase = async <T>(name: CaseName, run: () => Promise<T>): Promise<T | null> => {
      if (!has(name)) return null;
      if (sampleDue) await sampleLimits();
      const result = await attempt(name, run);
      sampleDue = true;
      return result;
    };

    let limits: Limits | null = null;
    let disk: Limits['disk'] | null = null;
    if (has('limits')) {
      disk = await attempt('limits', async () => {
        log(
          `limits: SHA-256 of ${profile.sha256Bytes / MiB} MiB, raw loopback TCP of ${profile.rawTcpBytes / MiB} MiB`,
        );
        await samples.sample();
        limitsOk = true;
        log(`disk: write ${config.sizeMiB} MiB and fsync, ${profile.diskRuns} run(s)`);
        return measureDiskWrite(path.join(workDir, 'disk-probe.bin'), size, profile.diskRuns);
      });
    }

    const transfer = await bigCase('transfer', () =>
      measureTransfers({
        group,
        workDir,
        size,
        runs: config.runs,
        seederCounts: SEEDER_COUNTS,
        betweenCases: sampleLimits,
        log,
      }),
    );
    const encryption = await bigCase('encryption', async () => {
      let file = transfer?.payload.path;
      if (!file) {
        file = path.join(workDir, 'encryption-payload.bin');
        log(`encryption: writing the ${config.sizeMiB} MiB payload`);
        await writePayload(file, size);
      }
      const runs = Math.min(config.runs, profile.encryptionRuns);
      return measureEncryption({ file, workDir, runs, log });
    });
    const peers = await bigCase('peers', async () => {
      let payload = transfer?.payload;
      if (!payload) {
        const file = path.join(workDir, 'peers-payload.bin');
        log(`peers: writing the ${config.sizeMiB} MiB payload`);
        payload = { path: file, size, sha256: await writePayload(file, size) };
      }
      const runs = Math.min(config.runs, profile.peerRuns);
      return runPeerClients(payload, { workDir, runs, seederCounts: SEEDER_COUNTS, log });
    });
    const plotFile = path.join(outDir, path.basename(PLOT_FILE));
    const swarm = await bigCase('swarm', () =>
      runSwarm({ group, workDir: path.join(workDir, 'swarm'), ...profile.swarm, plotFile, log }),
    );
    const memory = await bigCase('memory', async () => {
      const dir = path.join(workDir, 'memory');
      fs.mkdirSync(dir);
      return runMemory({ group, workDir: dir, size: profile.memoryBytes, log });
    });
    const tracker = await bigCase('tracker', () => measureTracker({ group, ...profile.tracker, log }));
    if (sampleDue) await sampleLimits();
    if (limitsOk && disk) limits = { sha256: samples.sha256, rawTcp: samples.rawTcp, disk };

    // Only a complete full run replaces the report and the plot in the repository.
    const official = config.full && failed.length === 0;
    const reportFile = official ? REPORT_FILE : path.join(outDir, path.basename(REPORT_FILE));
    if (swarm && official) {
      fs.copyFileSync(plotFile, PLOT_FILE);
      swarm.plotFile = PLOT_FILE;
    }
    const cpus = os.cpus();
    const result: BenchResult = {
      command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
      quick: config.quick,
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
      limits,
      transfer,
      encryption,
      peers,
      swarm,
      swarmPlotLink: path.relative(path.dirname(reportFile), swarm?.plotFile ?? plotFile),
      memory,
      tracker,
      failed,
    };
    process.stdout.write(formatConsole(result));
    fs.writeFileSync(reportFile, formatMarkdown(result));
    keepOutDir = !official;
    log(`wrote ${reportFile}${swarm ? ` and ${swarm.plotFile}` : ''}`);
    if (!official) {
      const why = failed.length > 0 ? 'a case failed' : config.quick ? 'a quick run' : 'not every case ran';
      log(`(${why}: ${path.relative(REPO, REPORT_FILE)} is left as it was)`);
    }
    if (config.json) {
      fs.writeFileSync(config.json, `${JSON.stringify(result, null, 1)}\n`);
      log(`wrote ${config.json}`);
    }
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await group.stopAll();
    cleanUp();
    if (!keepOutDir) fs.rmSync(outDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${errorText(err)}\n`);
  process.exitCode = 1;
});
