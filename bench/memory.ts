/**
 * Peak memory of a large transfer on loopback: the resident-memory high-water mark (VmHWM) of a
 * downloader (`swarmshare get`) and of its seeder (`swarmshare peer`) while a multi-GiB file of
 * pseudo-random bytes goes from one to the other. VmHWM is the kernel's own peak, so sampling it
 * cannot miss a short spike; it is read from /proc every few tens of milliseconds and, to cover the
 * last moments, reported by each process itself as it exits (bench/hwm-report.ts, preloaded).
 * The seeder's peak is reset once it has hashed its folder, so hashing at start and serving are
 * reported apart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readThrough, sha256File, writePayload } from './payload.js';
import { readRss, resetPeakRss } from './proc-stat.js';
import type { Child, ProcessGroup } from './processes.js';
import { GiveUp, MB, MiB, mbPerSecond, nowSeconds, waitFor } from './util.js';

export const MEMORY_FILE = 'memory.bin';
/** The goal: each process's peak under this many bytes (MB = 10^6). */
export const MEMORY_GOAL_BYTES = 150 * MB;
const GiB = 1024 * MiB;
/** Node's arguments for every child measured here: a preload that reports its peak as it exits. */
const PRELOAD_ARGS = ['--import', fileURLToPath(new URL('./hwm-report.js', import.meta.url))];
const HWM_LINE = /^\[bench\] VmHWM (\d+) kB$/m;
const HEAP_LINE = /^\[bench\] memory (\{.*\})$/m;

interface ExitReport {
  exitReportBytes: number | null;
  heap: HeapPeaks | null;
}
/** Room left on the disk beyond the payload and its download. */
const SPARE_DISK = 2 * GiB;

export interface MemoryOptions {
  group: ProcessGroup;
  /** A fresh folder for the payload and the download (both deleted afterwards). */
  workDir: string;
  size: number;
  /** How often /proc is read. */
  sampleMs?: number;
  log: (line: string) => void;
}

export interface PeakMemory {
  /** The peak resident memory, bytes: the larger of the samples and the exit report; null if unknown. */
  peakBytes: number | null;
  /** The largest VmHWM sampled from outside, and the one the process reported as it exited. */
  sampledBytes: number | null;
  exitReportBytes: number | null;
  /** The median resident memory (VmRSS) sampled during the transfer: its steady state. */
  medianRssBytes: number | null;
  /** The largest of each of process.memoryUsage()'s figures the process saw (not all at one moment). */
  heap: HeapPeaks | null;
}

/** Bytes: the V8 heap (reserved and used), and memory outside it (Buffers and other ArrayBuffers). */
export interface HeapPeaks {
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryResult {
  size: number;
  goalBytes: number;
  sampleMs: number;
  payloadSeconds: number;
  /** VmHWM of `swarmshare --version`: Node and the command line loaded, no work done. */
  baselineBytes: number | null;
  /** `swarmshare get` from spawn to exit, and its speed. */
  downloadSeconds: number;
  downloadMbps: number;
  downloader: PeakMemory;
  /** The seeder while it hashed its folder at start (to the moment it was listed). */
  seederStartupBytes: number | null;
  /** The seeder from the start of the download to its exit (its peak reset in between). */
  seeder: PeakMemory;
  /** False if the seeder's peak could not be reset: then `seeder` includes the hashing too. */
  seederPeakReset: boolean;
  /** [seconds since the get was spawned, downloader RSS, seeder RSS] every few samples. */
  timeline: [number, number | null, number | null][];
}

export async function runMemory(options: MemoryOptions): Promise<MemoryResult> {
  const { group, workDir, size, log } = options;
  const sampleMs = options.sampleMs ?? 50;
  const seedDir = path.join(workDir, 'memory-seed');
  const outDir = path.join(workDir, 'memory-out');
  const payload = path.join(seedDir, MEMORY_FILE);

  const disk = await fs.statfs(workDir);
  const free = disk.bavail * disk.bsize;
  if (free < 2 * size + SPARE_DISK) {
    throw new Error(
      `memory: ${(free / GiB).toFixed(1)} GiB free in ${workDir}, need ${((2 * size + SPARE_DISK) / GiB).toFixed(1)}`,
    );
  }
  await fs.mkdir(seedDir, { recursive: true });
  const children: Child[] = [];
  try {
    log(`memory: writing the ${size / MiB} MiB payload`);
    let start = nowSeconds();
    const payloadSha = await writePayload(payload, size);
    const payloadSeconds = nowSeconds() - start;

    const baseline = reported(group.swarmshare('baseline', ['--version'], PRELOAD_ARGS));
    const baselineBytes = (await baseline).exitReportBytes;
    if (baselineBytes === null)
      log('memory: the children do not report their peak (not Linux?): samples only');

    const tracker = group.swarmshare('tracker', ['tracker', '--host', '127.0.0.1', '--port', '0']);
    children.push(tracker);
    const address = (await tracker.waitForOutput(/swarmshare tracker listening on (\S+)/, 30_000))[1]!;
    await readThrough(payload);
    const seeder = group.swarmshare(
      'seed',
      [
        'peer',
        ...['--dir', seedDir, '--tracker', address, '--host', '127.0.0.1', '--name', 'seed'],
        // Loopback only: no multicast offers out of this machine's real interfaces.
        '--no-lan',
      ],
      PRELOAD_ARGS,
    );
    children.push(seeder);
    const seederExit = reported(seeder);
    start = nowSeconds();
    // Hashing the folder at start: allow ~5 MB/s and a minute.
    await seeder.waitForOutput(/connected to tracker/, 60_000 + size / 5_000);
    await waitForListing(group, address, size, seeder);
    log(`memory: the seeder hashed and was listed after ${(nowSeconds() - start).toFixed(1)} s`);
    const seederStartupBytes = readRss(seeder.pid)?.hwm ?? null;
    const seederPeakReset = resetPeakRss(seeder.pid);

    await readThrough(payload);
    const get = group.swarmshare(
      'get',
      ['get', MEMORY_FILE, ...['--tracker', address, '--out', outDir, '--host', '127.0.0.1', '--json']],
      PRELOAD_ARGS,
    );
    children.push(get);
    const getExit = reported(get);
    const getSamples = new Sampler();
    const seederSamples = new Sampler();
    const timeline: MemoryResult['timeline'] = [];
    let ticks = 0;
    const sampler = setInterval(() => {
      const g = getSamples.take(get.pid);
      const s = seederSamples.take(seeder.pid);
      // Every tenth sample is plenty for the timeline.
      if (ticks++ % 10 === 0) timeline.push([(performance.now() - get.startedAt) / 1000, g, s]);
    }, sampleMs);
    // Generous: a download at 4 MB/s, plus a minute.
    const deadline = setTimeout(() => get.kill('SIGKILL'), 60_000 + size / 4_000);
    let exit;
    try {
      exit = await get.exited;
    } finally {
      clearTimeout(deadline);
      clearInterval(sampler);
    }
    // The seeder is still up: its peak so far, then the one it reports as it leaves.
    seederSamples.take(seeder.pid);
    const downloadSeconds = (exit.at - get.startedAt) / 1000;
    if (exit.code !== 0) {
      throw new Error(`swarmshare get exited with ${exit.code ?? exit.signal}: ${get.describeOutput()}`);
    }
    await group.stop(seeder);
    const seederReport = await seederExit;
    const getReport = await getExit;

    const summary = JSON.parse(get.stdout.trim().split('\n').pop() ?? '') as { path: string; size: number };
    if (summary.size !== size) throw new Error(`downloaded ${summary.size} bytes, expected ${size}`);
    log(`memory: ${downloadSeconds.toFixed(1)} s for the download; verifying it`);
    const sha = await sha256File(summary.path);
    if (sha !== payloadSha) {
      throw new Error(`${summary.path}: SHA-256 ${sha} differs from the payload's ${payloadSha}`);
    }
    return {
      size,
      goalBytes: MEMORY_GOAL_BYTES,
      sampleMs,
      payloadSeconds,
      baselineBytes,
      downloadSeconds,
      downloadMbps: mbPerSecond(size, downloadSeconds),
      downloader: getSamples.peak(getReport),
      seederStartupBytes,
      seeder: seederSamples.peak(seederReport),
      seederPeakReset,
      timeline,
    };
  } finally {
    await Promise.all(children.map((child) => group.stop(child)));
    await fs.rm(seedDir, { recursive: true, force: true });
    await fs.rm(outDir, { recursive: true, force: true });
  }
}

/** The VmHWM a child (started with the preload) reports on its way out; null if it did not. */
async function reported(child: Child): Promise<ExitReport> {
  await child.exited.catch(() => undefined);
  const kib = HWM_LINE.exec(child.stderr)?.[1];
  const heap = HEAP_LINE.exec(child.stderr)?.[1];
  let parsed: HeapPeaks | null = null;
  try {
    parsed = heap === undefined ? null : (JSON.parse(heap) as HeapPeaks);
  } catch {
    // A garbled line: the heap figures are extra, the peak RSS is what counts.
  }
  return { exitReportBytes: kib === undefined ? null : Number(kib) * 1024, heap: parsed };
}

/** Polls the tracker until it lists the payload (the seeder has announced it). */
async function waitForListing(
  group: ProcessGroup,
  address: string,
  size: number,
  seeder: Child,
): Promise<void> {
  await waitFor(
    async () => {
      if (!seeder.alive) throw new GiveUp(`the seeder exited: ${seeder.describeOutput()}`);
      const list = group.swarmshare('list', ['list', '--tracker', address, '--json']);
      const exit = await list.exited;
      if (exit.code !== 0) throw new Error(`swarmshare list exited with ${exit.code ?? exit.signal}`);
      const { files } = JSON.parse(list.stdout) as { files: { name: string; size: number }[] };
      return files.some((f) => f.name === MEMORY_FILE && f.size === size);
    },
    `the tracker to list ${MEMORY_FILE}`,
    60_000,
    200,
  );
}

/** Samples of one process's VmRSS and VmHWM. */
class Sampler {
  private maxHwm: number | null = null;
  private readonly rss: number[] = [];

  /** Reads the process now; returns its RSS, or null if it cannot be read (it has exited). */
  take(pid: number | undefined): number | null {
    const now = readRss(pid);
    if (!now) return null;
    this.maxHwm = Math.max(this.maxHwm ?? 0, now.hwm);
    this.rss.push(now.rss);
    return now.rss;
  }

  peak({ exitReportBytes, heap }: ExitReport): PeakMemory {
    const known = [this.maxHwm, exitReportBytes].filter((v): v is number => v !== null);
    const sorted = [...this.rss].sort((a, b) => a - b);
    return {
      peakBytes: known.length > 0 ? Math.max(...known) : null,
      sampledBytes: this.maxHwm,
      exitReportBytes,
      heap,
      medianRssBytes: sorted.length > 0 ? sorted[sorted.length >> 1]! : null,
    };
  }
}

// ---- the report ----------------------------------------------------------------------------------

const mb = (bytes: number | null): string => (bytes === null ? 'n/a' : (bytes / MB).toFixed(0));

/** The memory figures as a BENCHMARKS.md section: a table and sentences read from the figures. */
export function renderMemory(r: MemoryResult): string {
  const sizeText = r.size % GiB === 0 ? `${r.size / GiB} GiB` : `${r.size / MiB} MiB`;
  const goal = `${mb(r.goalBytes)} MB`;
  const verdict = (bytes: number | null): string =>
    bytes === null ? 'unknown' : bytes < r.goalBytes ? 'under the goal' : '**over the goal**';
  const rows = [
    ['downloader (`swarmshare get`)', r.downloader],
    [
      `seeder (\`swarmshare peer\`), serving${r.seederPeakReset ? '' : ' (and hashing: its peak could not be reset)'}`,
      r.seeder,
    ],
  ] as const;
  const out: string[] = [
    `## Peak memory of a ${sizeText} transfer`,
    '',
    `One \`swarmshare peer\` seeds a ${sizeText} file of pseudo-random bytes; one \`swarmshare get\` downloads ` +
      `it over loopback (${r.downloadSeconds.toFixed(1)} s, ${r.downloadMbps.toFixed(0)} MB/s) and the download is ` +
      "checked against the payload's SHA-256; both files are deleted afterwards. *Peak* is the kernel's " +
      `high-water mark of resident memory (VmHWM), read from /proc every ${r.sampleMs} ms and reported by each ` +
      'process itself as it exits; *typical* is the median resident memory sampled during the transfer. ' +
      `The seeder's peak is reset once it has hashed its folder, so serving and hashing are shown apart. ` +
      `MB = 10^6 bytes. Goal: under ${goal} each.`,
    '',
    '| process | peak MB | typical MB | goal |',
    '|---|---:|---:|---:|',
    ...rows.map(
      ([label, p]) => `| ${label} | ${mb(p.peakBytes)} | ${mb(p.medianRssBytes)} | ${verdict(p.peakBytes)} |`,
    ),
    `| seeder, hashing its folder at start | ${mb(r.seederStartupBytes)} | | ${verdict(r.seederStartupBytes)} |`,
    `| for scale: \`swarmshare --version\` (Node and the code loaded) | ${mb(r.baselineBytes)} | | |`,
    '',
    memoryVerdict(r).join(' '),
    '',
  ];
  return out.join('\n');
}

/** Sentences read from the figures; the first one says whether the goal is met. */
export function memoryVerdict(r: MemoryResult): string[] {
  const sentences: string[] = [];
  const peaks = [
    ['downloader', r.downloader.peakBytes],
    ['seeder', r.seeder.peakBytes],
  ] as const;
  const over = peaks.filter(([, b]) => b !== null && b >= r.goalBytes);
  const unknown = peaks.filter(([, b]) => b === null);
  if (unknown.length > 0)
    sentences.push(`The peak of the ${unknown.map(([n]) => n).join(' and ')} could not be read.`);
  else if (over.length === 0) {
    const times = r.size / Math.max(r.downloader.peakBytes!, r.seeder.peakBytes!);
    sentences.push(
      `Both stay under the goal of ${mb(r.goalBytes)} MB while moving ${(r.size / MB).toFixed(0)} MB: ` +
        `the downloader peaks at ${mb(r.downloader.peakBytes)} MB and the seeder at ${mb(r.seeder.peakBytes)} MB` +
        (times >= 5
          ? `; the file is ${times.toFixed(0)} times the larger peak, so neither holds it in memory.`
          : '.'),
    );
  } else {
    sentences.push(
      `${over.map(([n, b]) => `The ${n} peaks at ${mb(b)} MB`).join('; ')}: over the goal of ${mb(r.goalBytes)} MB.`,
    );
  }
  if (r.baselineBytes !== null && r.downloader.peakBytes !== null && r.seeder.peakBytes !== null) {
    sentences.push(
      `\`swarmshare --version\` alone peaks at ${mb(r.baselineBytes)} MB (Node with the code loaded); the ` +
        `transfer adds ${mb(r.downloader.peakBytes - r.baselineBytes)} MB to that in the downloader and ` +
        `${mb(r.seeder.peakBytes - r.baselineBytes)} MB in the seeder at their peaks.`,
    );
  }
  for (const [name, p] of [
    ['downloader', r.downloader],
    ['seeder', r.seeder],
  ] as const) {
    if (!p.heap) continue;
    sentences.push(
      `The ${name}'s V8 heap reached ${mb(p.heap.heapTotal)} MB (${mb(p.heap.heapUsed)} MB in use at most) and ` +
        `its Buffers outside the heap ${mb(p.heap.arrayBuffers)} MB at most (sampled every 100 ms by the process).`,
    );
  }
  const { exitReportBytes: exitB, sampledBytes: sampledB } = r.downloader;
  if (exitB !== null && sampledB !== null && exitB > sampledB * 1.05) {
    sentences.push(
      `The downloader's peak came after the last sample, near its exit (${mb(exitB)} MB against ${mb(sampledB)} MB sampled).`,
    );
  }
  return sentences;
}
