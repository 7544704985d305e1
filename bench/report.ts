/**
 * The benchmark's results as a table for the terminal and as BENCHMARKS.md. Every figure and every
 * sentence of the verdict comes from the run being reported.
 */
import { chunkSizeFor } from '../src/storage/manifest.js';
import type { Measured } from './limits.js';
import type { TrackerLoadResult } from './tracker-load.js';
import type { DownloadRun, TransferCase, TransferResult } from './transfer.js';
import { MB, MiB, mbPerSecond } from './util.js';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  platform: string;
  memoryGiB: number;
}

export interface BenchResult {
  command: string;
  date: Date;
  totalSeconds: number;
  machine: Machine;
  transferRuns: number;
  sha256: Measured;
  rawTcp: Measured;
  disk: Measured;
  transfer: TransferResult;
  tracker: TrackerLoadResult;
}

const fixed = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const rate = (mbps: number): string => `${fixed(mbps)} MB/s`;
/** Seconds with one decimal, or two below one second. */
const secs = (seconds: number): string => `${fixed(seconds, seconds < 1 ? 2 : 1)} s`;
const sizeText = (bytes: number): string =>
  bytes % MiB === 0
    ? `${bytes / MiB} MiB`
    : bytes % 1024 === 0
      ? `${bytes / 1024} KiB`
      : `${fixed(bytes / MB, 1)} MB`;
const percent = (ratio: number): string => `${fixed(ratio * 100)} %`;
const cores = (value: number | null): string => (value === null ? 'n/a' : fixed(value, 2));

function lowerLimit(r: BenchResult): { mbps: number; name: string } {
  return r.sha256.mbps <= r.rawTcp.mbps
    ? { mbps: r.sha256.mbps, name: 'SHA-256 on one core' }
    : { mbps: r.rawTcp.mbps, name: 'raw loopback TCP' };
}

function perRun(m: Measured): string {
  return m.runs.map((v) => fixed(v)).join(', ');
}

/** CPU seconds per wall second of a run (how many cores a process kept busy). */
function coresOf(cpu: number | null, run: DownloadRun): number | null {
  return cpu === null ? null : cpu / run.wallSeconds;
}

function sourcesText(run: DownloadRun, size: number): string {
  return [...run.sources]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => `${s.name} ${percent(s.bytes / size)}`)
    .join(', ');
}

function seedersLabel(n: number): string {
  return `${n} seeder${n === 1 ? '' : 's'}`;
}

// ---- terminal ------------------------------------------------------------------------------------

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** The rows of the download table, shared by the terminal and the Markdown. */
function transferRows(r: BenchResult): string[][] {
  const lower = lowerLimit(r);
  const t = r.transfer;
  return t.cases.map((c) => [
    seedersLabel(c.seeders),
    fixed(c.wallMbps),
    fixed(c.wallMbps / lower.mbps, 2),
    fixed(c.ownMbps),
    fixed(c.wallMbps / r.disk.mbps, 2),
    fixed(c.typical.wallSeconds, 2),
    runsText(c, t.size),
    cores(coresOf(c.typical.downloaderCpu, c.typical)),
    cores(coresOf(c.typical.seedersCpu, c.typical)),
    cores(coresOf(c.typical.trackerCpu, c.typical)),
    cores(coresOf(c.typical.otherCpu, c.typical)),
  ]);
}

function limitRows(r: BenchResult): string[][] {
  return [
    [
      `SHA-256 on one core (createHash, ${sizeText(r.sha256.bytes)} in 1 MiB updates)`,
      fixed(r.sha256.mbps),
      perRun(r.sha256),
    ],
    [
      `raw loopback TCP, process to process (${sizeText(r.rawTcp.bytes)}, read and discarded)`,
      fixed(r.rawTcp.mbps),
      perRun(r.rawTcp),
    ],
    [
      `for context: writing ${sizeText(r.disk.bytes)} to a file in the work folder, then fsync`,
      fixed(r.disk.mbps),
      perRun(r.disk),
    ],
  ];
}

export function formatConsole(r: BenchResult): string {
  const lower = lowerLimit(r);
  const { transfer: t, tracker: k } = r;
  const indent = (rows: string[][]): string[][] => rows.map(([first, ...rest]) => [`  ${first}`, ...rest]);
  const lines: string[] = [
    '',
    `swarmshare benchmark: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ` +
      `${fixed(r.totalSeconds)} s in all`,
    '',
    `limits (SHA-256 and TCP: median of ${r.sha256.runs.length} runs spread over the bench; disk: of ${r.disk.runs.length})`,
    ...table(indent([['what', 'MB/s', 'runs'], ...limitRows(r)])),
    '',
    `downloads of ${sizeText(t.size)}, verified, median of ${r.transferRuns}; ` +
      `ratio to ${lower.name} (${rate(lower.mbps)}) and to the disk (${rate(r.disk.mbps)})`,
    ...table(
      indent([
        [
          'case',
          'wall MB/s',
          'ratio',
          'own MB/s',
          'vs disk',
          'wall s',
          'runs',
          'get',
          'seeders',
          'tracker',
          'other',
        ],
        ...transferRows(r),
      ]),
    ),
    '  (wall s, and the CPU use in cores of the downloader, the seeders, the tracker and everything else on the',
    '  machine, are those of the median run)',
    ...t.cases
      .filter((c) => c.seeders > 1)
      .map((c) => `  bytes per source, ${seedersLabel(c.seeders)}: ${sourcesText(c.typical, t.size)}`),
    '',
    `tracker: ${k.sessions} sessions, a shared file of ${k.chunks} chunks`,
    ...table(
      indent([
        TRACKER_PHASE_HEADER,
        phaseRow('HAVE, one chunk each', k.have),
        phaseRow(`LOCATE (${fixed(k.locate.replyBytes / 1000)} kB replies)`, k.locate),
      ]),
    ),
    `  setup: ${k.sessions} sessions connected and registered in ${secs(k.setupSeconds)}`,
    '',
    ...whereItStands(r).map((sentence) => `- ${sentence}`),
    '',
  ];
  return lines.join('\n') + '\n';
}

function runsText(c: TransferCase, size: number): string {
  return c.runs.map((run) => fixed(mbPerSecond(size, run.wallSeconds))).join(', ');
}

const TRACKER_PHASE_HEADER = [
  'phase',
  'requests',
  'seconds',
  'per second',
  'p50 ms',
  'p99 ms',
  'tracker cores',
  'client cores',
  'other cores',
];

function phaseRow(label: string, p: TrackerLoadResult['have']): string[] {
  return [
    label,
    String(p.requests),
    fixed(p.seconds, 2),
    fixed(p.perSecond),
    fixed(p.p50Ms, 2),
    fixed(p.p99Ms, 2),
    cores(p.trackerCores),
    cores(p.clientCores),
    cores(p.otherCores),
  ];
}

// ---- BENCHMARKS.md -------------------------------------------------------------------------------

function mdTable(rows: string[][]): string[] {
  const [head, ...body] = rows;
  return [
    `| ${head!.join(' | ')} |`,
    `|${head!.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...body.map((row) => `| ${row.join(' | ')} |`),
  ];
}

export function formatMarkdown(r: BenchResult): string {
  const lower = lowerLimit(r);
  const { transfer: t, tracker: k } = r;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const out: string[] = [
    '# Benchmarks',
    '',
    `Written by \`${r.command}\` on ${r.date.toISOString().replace(/\.\d+Z$/, 'Z')} (the whole run took ` +
      `${fixed(r.totalSeconds)} s). Every figure here comes from that one run. The machine is shared and ` +
      'noisy, so each speed stands beside a limit measured in the same run, and the ratio is what to ' +
      'compare between runs. MB = 10^6 bytes.',
    '',
    '## Machine',
    '',
    ...mdTable([
      ['', 'this run'],
      ['cores', String(r.machine.cores)],
      ['CPU', r.machine.cpu],
      ['Node', r.machine.node],
      ['platform', r.machine.platform],
      ['memory', `${fixed(r.machine.memoryGiB, 1)} GiB`],
    ]),
    '',
    '## Limits',
    '',
    `SHA-256 and TCP: median of ${plural(r.sha256.runs.length, 'run')}, taken at the start of the benchmark, ` +
      'between the download cases and at the end, so they span the same noise as the figures ' +
      `they scale. Disk: median of ${plural(r.disk.runs.length, 'run')} at the start.`,
    '',
    ...mdTable([['what', 'MB/s', 'runs'], ...limitRows(r)]),
    '',
    `The lower of the first two, ${lower.name} at ${rate(lower.mbps)}, is the ceiling a download is ` +
      'compared with: every byte received must cross a loopback socket and be hashed once. The disk ' +
      'figure is context: a download writes its file and flushes it to disk before it reports success, ' +
      'and this virtual disk is noisy.',
    '',
    `## Downloads of ${sizeText(t.size)} on loopback`,
    '',
    'Real processes and the real command line: `swarmshare tracker`, seeders started with `swarmshare peer` ' +
      '(all sharing one hard-linked payload of pseudo-random bytes), and `swarmshare get NAME --json` ' +
      'writing to disk. The payload is read through the page cache before each run; the download is ' +
      "checked against the payload's SHA-256 after each run, then deleted. " +
      `Median of ${plural(r.transferRuns, 'run')} per case. *Wall* is the downloader process from spawn to ` +
      'exit; *own* is the `seconds` it reports itself. *Wall s* and the CPU use (CPU seconds over wall ' +
      'seconds, in cores) are those of the median run; *other* is what the rest of the machine (other ' +
      "people's processes, kernel threads) used meanwhile.",
    '',
    ...mdTable([
      [
        'case',
        'wall MB/s',
        `ratio to ${lower.name}`,
        'own MB/s',
        'ratio to disk',
        'wall s',
        'runs, wall MB/s',
        'downloader cores',
        'seeders cores',
        'tracker cores',
        'other cores',
      ],
      ...transferRows(r),
    ]),
    '',
    ...t.cases
      .filter((c) => c.seeders > 1)
      .flatMap((c) => [
        `Bytes per source with ${seedersLabel(c.seeders)} (median run): ${sourcesText(c.typical, t.size)}.`,
        '',
      ]),
    `Setup, not in the figures: generating and writing the payload took ${secs(t.payloadSeconds)}; the first ` +
      `seeder was listed by the tracker ${secs(t.firstSeederSeconds)} after it was spawned (it hashes its ` +
      'folder at start).',
    '',
    '## Tracker',
    '',
    `${k.sessions} simulated peers (\`TrackerClient\` sessions in the benchmark process) against a tracker ` +
      `in its own process. Each session registers every one of the ${k.chunks} chunks of one shared file ` +
      `(${sizeText(k.chunks * k.chunkSize)} in ${sizeText(k.chunkSize)} chunks), one HAVE request per chunk, ` +
      `${k.sessions * k.chunks} requests in all, as that many downloaders finishing the file would; then every ` +
      `session asks for the file's holders (LOCATE) for a fixed time, each reply naming ${k.locate.holders} ` +
      `holders with their chunk bitfields (${fixed(k.locate.replyBytes / 1000, 1)} kB). Latency is as the ` +
      'client sees it, with several requests in flight per session. *Client cores* is the load generator; ' +
      '*other cores* the rest of the machine.',
    '',
    ...mdTable([
      TRACKER_PHASE_HEADER,
      phaseRow('HAVE, one chunk per request', k.have),
      phaseRow('LOCATE', k.locate),
    ]),
    '',
    `Connecting and registering all ${k.sessions} sessions at once took ${secs(k.setupSeconds)}.`,
    '',
    '## Where it stands',
    '',
    whereItStands(r).join(' '),
    '',
  ];
  return out.join('\n');
}

// ---- the verdict ---------------------------------------------------------------------------------

/** Busy enough to call a process CPU-bound (one JavaScript thread can use a little over one core). */
const SATURATED = 0.85;
/** Cores used by the rest of the machine beyond which a figure is called held down by it. */
const OTHER_LOAD = 0.25;

/** A few sentences that read the figures of this run; no number in them is written by hand. */
export function whereItStands(r: BenchResult): string[] {
  const lower = lowerLimit(r);
  const { transfer: t, tracker: k } = r;
  const sentences: string[] = [];
  const one = t.cases.find((c) => c.seeders === 1);
  const many = t.cases.filter((c) => c.seeders > 1).sort((a, b) => b.seeders - a.seeders)[0];

  if (one) {
    const run = one.typical;
    sentences.push(
      `A ${sizeText(t.size)} download from one seeder runs at ${rate(one.wallMbps)} by the wall clock, ` +
        `${percent(one.wallMbps / lower.mbps)} of the ceiling set by ${lower.name} (${rate(lower.mbps)}).`,
    );
    const hashSeconds = t.size / MB / r.sha256.mbps;
    const diskSeconds = t.size / MB / r.disk.mbps;
    sentences.push(
      `Of the median run's ${secs(run.wallSeconds)}, hashing every byte needs ${secs(hashSeconds)} at the ` +
        `SHA-256 speed measured, and writing and flushing the file ${secs(diskSeconds)} at the disk speed measured.`,
    );
    const busy = coresOf(run.downloaderCpu, run);
    if (busy !== null && run.downloaderCpu !== null) {
      const msPerMB = (run.downloaderCpu * 1000) / (t.size / MB);
      const hashMsPerMB = 1000 / r.sha256.mbps;
      const kernel =
        run.downloaderSystemCpu === null
          ? ''
          : `, ${percent(run.downloaderSystemCpu / run.downloaderCpu)} of it in the kernel`;
      const reading =
        busy >= SATURATED
          ? 'close to a whole core, so its CPU cost per byte, rather than the network, the seeder or the disk, is the likely limit'
          : diskSeconds >= 0.5 * run.wallSeconds
            ? 'the disk accounts for much of the time'
            : 'it spends much of the time waiting for chunks, not computing';
      sentences.push(
        `The downloader process used ${fixed(busy, 2)} cores (JavaScript, I/O threads and kernel together${kernel}), ` +
          `${fixed(msPerMB, 1)} CPU-ms per MB, ${fixed(msPerMB / hashMsPerMB, 1)} times what hashing alone costs: ${reading}.`,
      );
    }
    const other = coresOf(run.otherCpu, run);
    if (other !== null && other >= OTHER_LOAD) {
      sentences.push(
        `Other work on the machine used ${fixed(other, 2)} of its ${r.machine.cores} cores during that run, ` +
          'so an idle machine would likely do better.',
      );
    }
    const outside = run.wallSeconds - run.ownSeconds;
    if (outside > 0.1 * run.wallSeconds) {
      sentences.push(
        `${secs(outside)} of that wall time lies outside the downloader's own clock ` +
          '(process start, finding the file, leaving the tracker).',
      );
    }
  }
  if (one && many) {
    const speedup = many.wallMbps / one.wallMbps;
    // Half the relative spread of the runs: a difference smaller than that is not a finding.
    const noise = Math.max(spreadOf(one, t.size), spreadOf(many, t.size)) / 2;
    const verdict =
      Math.abs(speedup - 1) <= noise
        ? `runs at ${fixed(speedup, 2)} times the one-seeder speed, a difference within the spread of the runs`
        : speedup >= 1.1
          ? `is ${fixed(speedup, 2)} times as fast, so more sources help`
          : speedup <= 0.9
            ? `is slower (${fixed(speedup, 2)} times the one-seeder speed): more sources cost more than they bring`
            : `runs at about the same speed (${fixed(speedup, 2)} times): the downloader, not the number of sources, sets the pace`;
    const busy = coresOf(many.typical.downloaderCpu, many.typical);
    const cpu =
      busy !== null && busy >= SATURATED
        ? `, with the downloader close to a whole core (${fixed(busy, 2)})`
        : '';
    const shares = many.typical.sources.filter((s) => s.bytes > 0).map((s) => s.bytes / t.size);
    const largest = Math.max(...shares);
    const even = 1 / many.seeders;
    const balance =
      shares.length < many.seeders
        ? `only ${shares.length} of the ${many.seeders} seeders sent anything`
        : `the largest share of the bytes from one seeder was ${percent(largest)} (even would be ${percent(even)})`;
    sentences.push(`With ${many.seeders} seeders the download ${verdict}${cpu}; ${balance}.`);
  }

  sentences.push(
    `The tracker registered ${fixed(k.have.perSecond)} chunks per second, one HAVE request each, from ` +
      `${k.sessions} concurrent sessions (p99 ${fixed(k.have.p99Ms, 1)} ms)${bottleneck(k.have)}.`,
  );
  sentences.push(
    `It answered ${fixed(k.locate.perSecond)} locates per second for a file with ${k.locate.holders} holders ` +
      `(${fixed(k.locate.replyBytes / 1000)} kB replies)${bottleneck(k.locate)}.`,
  );
  if (one) {
    // Each verified chunk of a download costs the tracker one HAVE.
    const chunkSize = chunkSizeFor(t.size);
    const sustainable = (k.have.perSecond * chunkSize) / MB;
    sentences.push(
      `With ${sizeText(chunkSize)} chunks that rate keeps up with downloads totalling ${rate(sustainable)}, ` +
        `${fixed(sustainable / one.wallMbps)} times the one-seeder download above.`,
    );
  }
  return sentences;
}

/** (fastest - slowest) / median of a case's runs, by wall clock; 0 for a single run. */
function spreadOf(c: TransferCase, size: number): number {
  const speeds = c.runs.map((run) => mbPerSecond(size, run.wallSeconds));
  return (Math.max(...speeds) - Math.min(...speeds)) / c.wallMbps;
}

function bottleneck(p: TrackerLoadResult['have']): string {
  if (p.trackerCores === null) return '';
  if (p.trackerCores >= SATURATED) return `, its process saturated at ${fixed(p.trackerCores, 2)} cores`;
  if (p.clientCores >= SATURATED) {
    return (
      `; its process used ${fixed(p.trackerCores, 2)} cores while the load generator was saturated at ` +
      `${fixed(p.clientCores, 2)}, so the tracker can do more than this figure`
    );
  }
  if (p.otherCores !== null && p.otherCores >= OTHER_LOAD) {
    return (
      `; neither its process (${fixed(p.trackerCores, 2)} cores) nor the load generator ` +
      `(${fixed(p.clientCores, 2)}) was saturated while other work on the machine used ` +
      `${fixed(p.otherCores, 2)} cores, so this figure is held down by that work`
    );
  }
  return `, its process at ${fixed(p.trackerCores, 2)} cores`;
}
