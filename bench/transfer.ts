/**
 * Downloads over loopback with the real command line: a tracker, 1 then 4 seeders (separate
 * processes sharing one hard-linked payload), and `swarmshare get` timed from spawn to exit.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readThrough, sha256File, writePayload } from './payload.js';
import type { Child, ProcessGroup } from './processes.js';
import {
  GiveUp,
  linkOrCopy,
  mbPerSecond,
  measureDownloadCpu,
  MiB,
  median,
  nowSeconds,
  waitFor,
  type DownloadCpu,
} from './util.js';

export const PAYLOAD_NAME = 'bench.bin';

export interface TransferOptions {
  group: ProcessGroup;
  /** A fresh folder for the payload, the peers' folders and the downloads. */
  workDir: string;
  size: number;
  runs: number;
  seederCounts: readonly number[];
  /** Called between one seeder count and the next (to sample the limits there). */
  betweenCases?: () => Promise<void>;
  log: (line: string) => void;
}

export interface SourceBytes {
  name: string;
  bytes: number;
}

/** One timed download, with the CPU seconds of each party (null off Linux). */
export interface DownloadRun extends DownloadCpu {
  /** Spawn of `swarmshare get` to its exit. */
  wallSeconds: number;
  /** The `seconds` the downloader reports itself. */
  ownSeconds: number;
  sources: SourceBytes[];
}

export interface TransferCase {
  seeders: number;
  runs: DownloadRun[];
  wallMbps: number;
  ownMbps: number;
  /** The run whose wall time is the median (for per-source bytes and CPU figures). */
  typical: DownloadRun;
}

export interface TransferResult {
  size: number;
  /** The payload, left in the work folder for other cases to reuse, and its SHA-256 (hex). */
  payload: { path: string; size: number; sha256: string };
  payloadSeconds: number;
  /** Spawn of the first seeder until the tracker lists it as a source (it hashes the payload). */
  firstSeederSeconds: number;
  cases: TransferCase[];
}

interface CatalogFile {
  id: string;
  name: string;
  size: number;
  chunks: number;
  sources: number;
}

interface GetSummary {
  id: string;
  name: string;
  size: number;
  path: string;
  seconds: number;
  sources: { peer: string; name: string; bytes: number }[];
}

export async function measureTransfers(options: TransferOptions): Promise<TransferResult> {
  const { group, workDir, size, log } = options;
  const payload = path.join(workDir, 'payload.bin');
  const outDir = path.join(workDir, 'out');

  log(`writing the ${size / MiB} MiB payload`);
  let start = nowSeconds();
  const payloadSha = await writePayload(payload, size);
  const payloadSeconds = nowSeconds() - start;

  const maxSeeders = Math.max(...options.seederCounts);
  const seedDirs: string[] = [];
  for (let n = 1; n <= maxSeeders; n++) {
    const dir = path.join(workDir, `seed${n}`);
    await fs.mkdir(dir);
    await linkOrCopy(payload, path.join(dir, PAYLOAD_NAME));
    seedDirs.push(dir);
  }

  const tracker = group.swarmshare('tracker', ['tracker', '--host', '127.0.0.1', '--port', '0']);
  const address = (await tracker.waitForOutput(/swarmshare tracker listening on (\S+)/, 30_000))[1]!;
  const swarm = new Swarm(group, address, size);

  const seeders: Child[] = [];
  const startSeeders = async (count: number): Promise<void> => {
    const starting: Promise<void>[] = [];
    while (seeders.length < count) {
      const n = seeders.length + 1;
      const seeder = group.swarmshare(`seed${n}`, [
        'peer',
        ...['--dir', seedDirs[n - 1]!, '--tracker', address, '--host', '127.0.0.1', '--name', `seed${n}`],
        // Loopback only: no multicast offers out of this machine's real interfaces.
        '--no-lan',
      ]);
      seeders.push(seeder);
      // Hashing the folder at start takes a while for a big payload: allow ~5 MB/s and a minute.
      starting.push(
        seeder.waitForOutput(/connected to tracker/, 60_000 + size / 5_000).then(() => undefined),
      );
    }
    await Promise.all(starting);
    await swarm.waitForSources(count, seeders);
  };

  await readThrough(payload);
  start = nowSeconds();
  await startSeeders(1);
  const firstSeederSeconds = nowSeconds() - start;
  log(`tracker on ${address}; seed1 listed after ${firstSeederSeconds.toFixed(1)} s`);

  const cases: TransferCase[] = [];
  for (const [i, count] of options.seederCounts.entries()) {
    if (i > 0) await options.betweenCases?.();
    await startSeeders(count);
    const runs: DownloadRun[] = [];
    for (let run = 1; run <= options.runs; run++) {
      await swarm.waitForSources(count, seeders);
      // The page cache of this VM is dropped within a minute: warm the payload before each run.
      await readThrough(payload);
      await fs.rm(outDir, { recursive: true, force: true });
      const result = await downloadOnce(group, address, outDir, size, payloadSha, tracker, seeders);
      log(
        `${count} seeder(s), run ${run}/${options.runs}: ${result.wallSeconds.toFixed(2)} s wall, ` +
          `${mbPerSecond(size, result.wallSeconds).toFixed(0)} MB/s`,
      );
      runs.push(result);
      await fs.rm(outDir, { recursive: true, force: true });
    }
    const byWall = [...runs].sort((a, b) => a.wallSeconds - b.wallSeconds);
    cases.push({
      seeders: count,
      runs,
      wallMbps: median(runs.map((r) => mbPerSecond(size, r.wallSeconds))),
      ownMbps: median(runs.map((r) => mbPerSecond(size, r.ownSeconds))),
      typical: byWall[(byWall.length - 1) >> 1]!,
    });
  }

  await Promise.all([...seeders, tracker].map((child) => group.stop(child)));
  return {
    size,
    payload: { path: payload, size, sha256: payloadSha },
    payloadSeconds,
    firstSeederSeconds,
    cases,
  };
}

async function downloadOnce(
  group: ProcessGroup,
  address: string,
  outDir: string,
  size: number,
  payloadSha: string,
  tracker: Child,
  seeders: readonly Child[],
): Promise<DownloadRun> {
  const cpu = measureDownloadCpu(
    tracker.pid,
    seeders.map((s) => s.pid),
  );
  const get = group.swarmshare('get', [
    'get',
    PAYLOAD_NAME,
    ...['--tracker', address, '--out', outDir, '--host', '127.0.0.1', '--json'],
  ]);
  // Generous: a download at 4 MB/s, plus a minute.
  const deadline = setTimeout(() => get.kill('SIGKILL'), 60_000 + size / 4_000);
  const exit = await get.exited.finally(() => clearTimeout(deadline));
  const wallSeconds = (exit.at - get.startedAt) / 1000;
  const cpuUsed = cpu();
  if (exit.code !== 0) {
    throw new Error(`swarmshare get exited with ${exit.code ?? exit.signal}: ${get.describeOutput()}`);
  }

  const lastLine = get.stdout.trim().split('\n').pop() ?? '';
  let summary: GetSummary;
  try {
    summary = JSON.parse(lastLine) as GetSummary;
  } catch {
    throw new Error(`swarmshare get --json: the last line is not JSON: ${JSON.stringify(lastLine)}`);
  }
  if (summary.size !== size) throw new Error(`downloaded ${summary.size} bytes, expected ${size}`);
  const outPath = path.resolve(summary.path);
  if (path.relative(path.resolve(outDir), outPath).startsWith('..')) {
    throw new Error(`the download landed outside ${outDir}: ${outPath}`);
  }
  const stat = await fs.stat(outPath);
  if (stat.size !== size) throw new Error(`${outPath} has ${stat.size} bytes, expected ${size}`);
  const sha = await sha256File(outPath);
  if (sha !== payloadSha)
    throw new Error(`${outPath}: SHA-256 ${sha} differs from the payload's ${payloadSha}`);

  return {
    wallSeconds,
    ownSeconds: summary.seconds,
    sources: summary.sources.map((s) => ({ name: s.name, bytes: s.bytes })),
    ...cpuUsed,
  };
}

/** The catalog as `swarmshare list --json` shows it. */
class Swarm {
  constructor(
    private readonly group: ProcessGroup,
    private readonly address: string,
    private readonly size: number,
  ) {}

  async list(): Promise<CatalogFile[]> {
    const child = this.group.swarmshare('list', ['list', '--tracker', this.address, '--json']);
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const exit = await child.exited.finally(() => clearTimeout(deadline));
    if (exit.code !== 0) {
      throw new Error(`swarmshare list exited with ${exit.code ?? exit.signal}: ${child.describeOutput()}`);
    }
    return (JSON.parse(child.stdout) as { files: CatalogFile[] }).files;
  }

  /** Polls the catalog until the payload has exactly `count` sources (the last downloader gone). */
  async waitForSources(count: number, seeders: readonly Child[]): Promise<void> {
    let seen = -1;
    await waitFor(
      async () => {
        const dead = seeders.find((s) => !s.alive);
        if (dead) throw new GiveUp(`${dead.label} exited: ${dead.describeOutput()}`);
        const file = (await this.list()).find((f) => f.name === PAYLOAD_NAME && f.size === this.size);
        seen = file?.sources ?? 0;
        return seen === count;
      },
      () => `the tracker to list ${count} source(s) of ${PAYLOAD_NAME} (last seen: ${seen})`,
      60_000,
      200,
    );
  }
}
