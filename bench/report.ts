/**
 * The benchmark's results as a table for the terminal and as BENCHMARKS.md. Every figure, every
 * goal's verdict and every sentence of the analysis comes from the run being reported.
 */
import { chunkSizeFor } from '../src/storage/manifest.js';
import { fixed, mdTable, percent, textTable } from './format.js';
import type { Measured } from './limits.js';
import { ENCRYPTION_GOAL_RATIO, renderEncryption, type EncryptionResult } from './encryption.js';
import { renderMemory, type MemoryResult } from './memory.js';
import {
  formatPeerClientsConsole,
  renderPeerClients,
  type OurFigure,
  type PeerCase,
  type PeerClientResult,
} from './peers/index.js';
import { lastVerified, renderSwarm, SWARM_GOAL_RATIO, swarmCpuSeconds, type SwarmResult } from './swarm.js';
import type { TrackerLoadResult } from './tracker-load.js';
import type { DownloadRun, TransferCase, TransferResult } from './transfer.js';
import { MB, MiB, mbPerSecond } from './util.js';

/** The benchmark's cases in the order they run; `--only` picks some of them. */
export const CASES = ['limits', 'transfer', 'encryption', 'peers', 'swarm', 'memory', 'tracker'] as const;
export type CaseName = (typeof CASES)[number];

/** A download from one seeder should reach this share of the lower limit. */
export const TRANSFER_GOAL_RATIO = 0.6;

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  platform: string;
  memoryGiB: number;
}

export interface Limits {
  sha256: Measured;
  rawTcp: Measured;
  disk: Measured;
}

/** What one run measured; a case left out (`--only`) or failed is null. */
export interface BenchResult {
  /** The exact command that produced it. */
  command: string;
  /** Small sizes and single runs: a smoke test, not figures to compare. */
  quick: boolean;
  date: Date;
  totalSeconds: number;
  machine: Machine;
  transferRuns: number;
  limits: Limits | null;
  transfer: TransferResult | null;
  encryption: EncryptionResult | null;
  peers: PeerClientResult[] | null;
  swarm: SwarmResult | null;
  /** The swarm's plot as the report links it (relative to the report). */
  swarmPlotLink: string;
  memory: MemoryResult | null;
  tracker: TrackerLoadResult | null;
  /** Cases asked for that failed, and why. */
  failed: { name: CaseName; error: string }[];
}

const rate = (mbps: number): string => `${fixed(mbps)} MB/s`;
/** Seconds with one decimal, or two below one second. */
const secs = (seconds: number): string => `${fixed(seconds, seconds < 1 ? 2 : 1)} s`;
const mbText = (bytes: number | null): string => (bytes === null ? 'n/a' : `${fixed(bytes / MB)} MB`);
const sizeText = (bytes: number): string =>
  bytes % (1024 * MiB) === 0
    ? `${bytes / (1024 * MiB)} GiB`
    : bytes % MiB === 0
      ? `${bytes / MiB} MiB`
      : bytes % 1024 === 0
        ? `${bytes / 1024} KiB`
        : `${fixed(bytes / MB, 1)} MB`;
const cores = (value: number | null): string => fixed(value, 2);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function lowerLimit(l: Limits): { mbps: number; name: string } {
  return l.sha256.mbps <= l.rawTcp.mbps
    ? { mbps: l.sha256.mbps, name: 'SHA-256 on one core' }
    : { mbps: l.rawTcp.mbps, name: 'raw loopback TCP' };
}

function perRun(m: Measured): string {
  return m.runs.map((v) => fixed(v)).join(', ');
}

/** CPU seconds per wall second of a run (how many cores a process kept busy). */
function coresOf(cpu: number | null, run: { wallSeconds: number }): number | null {
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

function runsMbps(c: TransferCase, size: number): number[] {
  return c.runs.map((run) => mbPerSecond(size, run.wallSeconds));
}

/** The rows of the download table, shared by the terminal and the Markdown. */
function transferRows(l: Limits, t: TransferResult): string[][] {
  const lower = lowerLimit(l);
  return t.cases.map((c) => [
    seedersLabel(c.seeders),
    fixed(c.wallMbps),
    fixed(c.wallMbps / lower.mbps, 2),
    fixed(c.ownMbps),
    fixed(c.wallMbps / l.disk.mbps, 2),
    fixed(c.typical.wallSeconds, 2),
    runsMbps(c, t.size)
      .map((v) => fixed(v))
      .join(', '),
    cores(coresOf(c.typical.downloaderCpu, c.typical)),
    cores(coresOf(c.typical.seedersCpu, c.typical)),
    cores(coresOf(c.typical.trackerCpu, c.typical)),
    cores(coresOf(c.typical.otherCpu, c.typical)),
  ]);
}

function limitRows(l: Limits): string[][] {
  return [
    [
      `SHA-256 on one core (createHash, ${sizeText(l.sha256.bytes)} in 1 MiB updates)`,
      fixed(l.sha256.mbps),
      perRun(l.sha256),
    ],
    [
      `raw loopback TCP, process to process (${sizeText(l.rawTcp.bytes)}, read and discarded)`,
      fixed(l.rawTcp.mbps),
      perRun(l.rawTcp),
    ],
    [
      `for context: writing ${sizeText(l.disk.bytes)} to a file in the work folder, then fsync`,
      fixed(l.disk.mbps),
      perRun(l.disk),
    ],
  ];
}

/** swarmshare's downloads as rows of the other clients' table. */
function ourFigures(t: TransferResult | null): OurFigure[] {
  return (t?.cases ?? []).map((c) => ({
    seeders: c.seeders,
    wallMbps: c.wallMbps,
    ownMbps: c.ownMbps,
    wallSeconds: c.typical.wallSeconds,
    runsMbps: runsMbps(c, t!.size),
    downloaderCores: coresOf(c.typical.downloaderCpu, c.typical),
    seedersCores: coresOf(c.typical.seedersCpu, c.typical),
  }));
}

// ---- the goals -----------------------------------------------------------------------------------

export type Verdict = 'met' | 'not met' | 'not measured';

export interface Goal {
  goal: string;
  measured: string;
  /** What the figure is compared with. */
  against: string;
  ratio: number;
  target: string;
  verdict: Verdict;
}

const judged = (ok: boolean | null): Verdict => (ok === null ? 'not measured' : ok ? 'met' : 'not met');

function goalRow(g: Goal): string[] {
  return [g.goal, g.measured, g.against, fixed(g.ratio, 2), g.target, g.verdict];
}

const GOAL_HEADER = ['goal', 'measured', 'compared with', 'ratio', 'target', 'verdict'];

/** Every goal the run has figures for, each judged from them. */
export function goals(r: BenchResult): Goal[] {
  const out: Goal[] = [];
  const t = r.transfer;
  const one = t?.cases.find((c) => c.seeders === 1);
  const many = t?.cases.filter((c) => c.seeders > 1).sort((a, b) => b.seeders - a.seeders)[0];
  if (t && one && r.limits) {
    const lower = lowerLimit(r.limits);
    const ratio = one.wallMbps / lower.mbps;
    out.push({
      goal: `1 seeder → 1 downloader, ${sizeText(t.size)}: at least ${fixed(TRANSFER_GOAL_RATIO, 1)} of the lower limit`,
      measured: rate(one.wallMbps),
      against: `${rate(lower.mbps)} (${lower.name})`,
      ratio,
      target: `≥ ${fixed(TRANSFER_GOAL_RATIO, 2)}`,
      verdict: judged(ratio >= TRANSFER_GOAL_RATIO),
    });
  }
  if (one && many) {
    const ratio = many.wallMbps / one.wallMbps;
    out.push({
      goal: `${seedersLabel(many.seeders)} → 1 downloader: at least as fast as 1 seeder`,
      measured: rate(many.wallMbps),
      against: `${rate(one.wallMbps)} (1 seeder)`,
      ratio,
      target: '≥ 1.00',
      verdict: judged(ratio >= 1),
    });
  }
  for (const client of r.peers ?? []) {
    const cases: (PeerCase | null)[] = client.notRun === undefined ? client.cases : [null];
    for (const c of cases) {
      const ours = t?.cases.find((o) => o.seeders === (c?.seeders ?? 1));
      const theirs = c && Number.isFinite(c.wallMbps) ? c.wallMbps : null;
      const ratio = ours && theirs !== null ? ours.wallMbps / theirs : Number.NaN;
      out.push({
        goal: `faster than ${client.label}${c ? `, ${seedersLabel(c.seeders)}` : ''}`,
        measured: ours ? rate(ours.wallMbps) : 'n/a',
        against:
          client.notRun !== undefined
            ? `not run: ${client.notRun}`
            : theirs === null
              ? `failed: ${c?.error ?? 'no run succeeded'}`
              : `${rate(theirs)} (${client.label})`,
        ratio,
        target: '> 1.00',
        verdict: judged(Number.isFinite(ratio) ? ratio > 1 : null),
      });
    }
  }
  const sw = r.swarm;
  if (sw) {
    const T = sw.typical.lastFinishSeconds;
    const ratio = T / sw.boundSeconds;
    out.push({
      goal:
        `swarm, 1 seeder + ${sw.downloaders} downloaders of ${sizeText(sw.size)}, uploads capped at ` +
        `${sizeText(sw.uploadLimit)}/s: last done within ${fixed(SWARM_GOAL_RATIO, 1)}× the Kumar-Ross bound`,
      measured: secs(T),
      against: `${secs(sw.boundSeconds)} (the bound)`,
      ratio,
      target: `≤ ${fixed(SWARM_GOAL_RATIO, 2)}`,
      verdict: judged(ratio <= SWARM_GOAL_RATIO),
    });
  }
  const e = r.encryption;
  if (e) {
    out.push({
      goal: `encrypted (TLS 1.3) ${sizeText(e.size)} download: at least ${fixed(ENCRYPTION_GOAL_RATIO, 1)} of unencrypted`,
      measured: rate(e.tlsMbps),
      against: `${rate(e.plainMbps)} (unencrypted, same run)`,
      ratio: e.ratio,
      target: `≥ ${fixed(ENCRYPTION_GOAL_RATIO, 2)}`,
      verdict: judged(e.ratio >= ENCRYPTION_GOAL_RATIO),
    });
  }
  const m = r.memory;
  if (m) {
    const peak = (who: string, bytes: number | null, note = ''): Goal => ({
      goal: `peak RSS of the ${who}, ${sizeText(m.size)} transfer: under ${mbText(m.goalBytes)}`,
      measured: `${mbText(bytes)}${note}`,
      against: mbText(m.goalBytes),
      ratio: bytes === null ? Number.NaN : bytes / m.goalBytes,
      target: '< 1.00',
      verdict: judged(bytes === null ? null : bytes < m.goalBytes),
    });
    out.push(peak('downloader', m.downloader.peakBytes));
    out.push(
      peak(
        'seeder while serving',
        m.seeder.peakBytes,
        m.seederStartupBytes === null ? '' : ` (hashing at start: ${mbText(m.seederStartupBytes)})`,
      ),
    );
  }
  for (const f of r.failed) {
    out.push({
      goal: `the ${f.name} case`,
      measured: 'failed',
      against: f.error.replace(/\s+/g, ' ').slice(0, 300),
      ratio: Number.NaN,
      target: '',
      verdict: 'not measured',
    });
  }
  return out;
}

function goalSection(judged: readonly Goal[]): string[] {
  if (judged.length === 0) return [];
  return [
    '## Goals',
    '',
    'Each goal judged from the figures below: *ratio* is the figure over what it is compared with.',
    '',
    ...mdTable([GOAL_HEADER, ...judged.map(goalRow)]),
    '',
  ];
}

// ---- terminal ------------------------------------------------------------------------------------

export function formatConsole(r: BenchResult): string {
  const indent = (rows: string[][]): string[][] => rows.map(([first, ...rest]) => [`  ${first}`, ...rest]);
  const { limits: l, transfer: t, tracker: k, swarm: sw, memory: m } = r;
  const lines: string[] = [
    '',
    `swarmshare benchmark${r.quick ? ' (quick: small sizes, figures not comparable)' : ''}: ` +
      `${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${fixed(r.totalSeconds)} s in all`,
    `  ${r.command}`,
    '',
  ];
  const measured = goals(r);
  if (measured.length > 0) lines.push('goals', ...textTable(indent([GOAL_HEADER, ...measured.map(goalRow)])));
  if (l) {
    lines.push(
      '',
      `limits (SHA-256 and TCP: median of ${l.sha256.runs.length} runs spread over the bench; disk: of ${l.disk.runs.length})`,
      ...textTable(indent([['what', 'MB/s', 'runs'], ...limitRows(l)])),
    );
  }
  if (t && l) {
    const lower = lowerLimit(l);
    lines.push(
      '',
      `downloads of ${sizeText(t.size)}, verified, median of ${r.transferRuns}; ` +
        `ratio to ${lower.name} (${rate(lower.mbps)}) and to the disk (${rate(l.disk.mbps)})`,
      ...textTable(
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
          ...transferRows(l, t),
        ]),
      ),
      '  (wall s, and the CPU use in cores of the downloader, the seeders, the tracker and everything else on the',
      '  machine, are those of the median run)',
      ...t.cases
        .filter((c) => c.seeders > 1)
        .map((c) => `  bytes per source, ${seedersLabel(c.seeders)}: ${sourcesText(c.typical, t.size)}`),
    );
  }
  if (r.peers && l) {
    const lower = lowerLimit(l);
    lines.push(
      '',
      `other BitTorrent clients, the same download; ratio to ${lower.name}`,
      formatPeerClientsConsole(r.peers, lower.mbps, {
        ceilingName: lower.name,
        ours: ourFigures(t),
      }).trimEnd(),
    );
  }
  if (sw) {
    const run = sw.typical;
    lines.push(
      '',
      `swarm: 1 seeder + ${sw.downloaders} downloaders of ${sizeText(sw.size)}, uploads capped at ${sizeText(sw.uploadLimit)}/s`,
      `  last done ${secs(run.lastFinishSeconds)} (first ${secs(run.firstFinishSeconds)}, median ` +
        `${secs(run.medianFinishSeconds)}); Kumar-Ross bound ${secs(sw.boundSeconds)}; ratio ` +
        `${fixed(run.lastFinishSeconds / sw.boundSeconds, 2)}; plot: ${sw.plotFile ?? 'none'}`,
    );
  }
  if (r.encryption) {
    const e = r.encryption;
    lines.push(
      '',
      `encryption: ${sizeText(e.size)}, TLS 1.3 ${rate(e.tlsMbps)} vs unencrypted ${rate(e.plainMbps)}: ratio ${fixed(e.ratio, 2)}`,
    );
  }
  if (m) {
    lines.push(
      '',
      `memory: a ${sizeText(m.size)} transfer (${secs(m.downloadSeconds)}, ${rate(m.downloadMbps)})`,
      `  peak RSS: downloader ${mbText(m.downloader.peakBytes)}, seeder serving ${mbText(m.seeder.peakBytes)}, ` +
        `seeder hashing at start ${mbText(m.seederStartupBytes)}; \`swarmshare --version\` ${mbText(m.baselineBytes)}`,
    );
  }
  if (k) {
    lines.push(
      '',
      `tracker: ${k.sessions} sessions, a shared file of ${k.chunks} chunks`,
      ...textTable(
        indent([
          TRACKER_PHASE_HEADER,
          phaseRow('HAVE, one chunk each', k.have),
          phaseRow(`LOCATE (${fixed(k.locate.replyBytes / 1000)} kB replies)`, k.locate),
        ]),
      ),
      `  setup: ${k.sessions} sessions connected and registered in ${secs(k.setupSeconds)}`,
    );
  }
  lines.push('', ...whereItStands(r).map((sentence) => `- ${sentence}`), '');
  return lines.join('\n') + '\n';
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

export function formatMarkdown(r: BenchResult): string {
  const { limits: l, transfer: t, tracker: k } = r;
  const out: string[] = [
    '# Benchmarks',
    '',
    '```sh',
    r.command,
    '```',
    '',
    `Written by that command on ${r.date.toISOString().replace(/\.\d+Z$/, 'Z')} (the whole run took ` +
      `${fixed(r.totalSeconds)} s). Every figure here comes from that one run. The machine is shared and ` +
      'noisy, so each figure stands beside a limit measured in the same run (or a bound computed for it), ' +
      'and the ratio is what to compare between runs. MB = 10^6 bytes.' +
      (r.quick
        ? ' **This is a quick run** (`--quick`: small sizes, one run each): a smoke test of the benchmark, ' +
          'not figures to compare with a full run.'
        : ''),
    '',
    ...goalSection(goals(r)),
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
  ];
  if (l) {
    const lower = lowerLimit(l);
    out.push(
      '## Limits',
      '',
      `SHA-256 and TCP: median of ${plural(l.sha256.runs.length, 'run')}, taken at the start of the benchmark, ` +
        'between the big cases and at the end, so they span the same noise as the figures ' +
        `they scale. Disk: median of ${plural(l.disk.runs.length, 'run')} at the start.`,
      '',
      ...mdTable([['what', 'MB/s', 'runs'], ...limitRows(l)]),
      '',
      `The lower of the first two, ${lower.name} at ${rate(lower.mbps)}, is the ceiling a download is ` +
        'compared with: every byte received must cross a loopback socket and be hashed once. The disk ' +
        'figure is context: a download writes its file and flushes it to disk before it reports success, ' +
        'and this virtual disk is noisy.',
      '',
    );
  }
  if (t && l) {
    const lower = lowerLimit(l);
    out.push(
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
        ...transferRows(l, t),
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
    );
  }
  if (r.peers && l) {
    const lower = lowerLimit(l);
    out.push(renderPeerClients(r.peers, lower.mbps, { ceilingName: lower.name, ours: ourFigures(t) }));
  }
  if (r.encryption) out.push(renderEncryption(r.encryption));
  if (r.swarm) out.push(renderSwarm(r.swarm, r.swarmPlotLink));
  if (r.memory) out.push(renderMemory(r.memory));
  if (k) {
    out.push(
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
    );
  }
  out.push('## Where it stands', '', whereItStands(r).join(' '), '');
  return out.join('\n');
}

// ---- the verdict ---------------------------------------------------------------------------------

/** Busy enough to call a process CPU-bound (one JavaScript thread can use a little over one core). */
const SATURATED = 0.85;
/** Cores used by the rest of the machine beyond which a figure is called held down by it. */
const OTHER_LOAD = 0.25;

/** A few sentences that read the figures of this run; no number in them is written by hand. */
export function whereItStands(r: BenchResult): string[] {
  return [
    ...goalSentences(r),
    ...transferSentences(r),
    ...peerSentences(r),
    ...swarmSentences(r),
    ...memorySentences(r),
    ...trackerSentences(r),
  ];
}

function goalSentences(r: BenchResult): string[] {
  const all = goals(r);
  const judgedGoals = all.filter((g) => g.verdict !== 'not measured');
  const missed = judgedGoals.filter((g) => g.verdict === 'not met');
  const unmeasured = all.filter((g) => g.verdict === 'not measured');
  if (all.length === 0) return [];
  const notMet = missed.map((g) => `${g.goal} (ratio ${fixed(g.ratio, 2)}, target ${g.target})`).join('; ');
  const met = judgedGoals.length - missed.length;
  const summary =
    judgedGoals.length === 0
      ? 'No goal could be judged in this run.'
      : judgedGoals.length === 1
        ? `The one goal measured in this run is ${missed.length === 0 ? 'met' : `not met: ${notMet}`}.`
        : missed.length === 0
          ? `All ${judgedGoals.length} goals measured in this run are met.`
          : `${met} of the ${judgedGoals.length} goals measured in this run are met; not met: ${notMet}.`;
  return [
    summary +
      (unmeasured.length === 0
        ? ''
        : ` Not measured: ${unmeasured.map((g) => `${g.goal} (${g.against})`).join('; ')}.`),
  ];
}

function transferSentences(r: BenchResult): string[] {
  const { limits: l, transfer: t } = r;
  if (!l || !t) return [];
  const lower = lowerLimit(l);
  const sentences: string[] = [];
  const one = t.cases.find((c) => c.seeders === 1);
  const many = t.cases.filter((c) => c.seeders > 1).sort((a, b) => b.seeders - a.seeders)[0];

  if (one) {
    const run = one.typical;
    sentences.push(
      `A ${sizeText(t.size)} download from one seeder runs at ${rate(one.wallMbps)} by the wall clock, ` +
        `${percent(one.wallMbps / lower.mbps)} of the ceiling set by ${lower.name} (${rate(lower.mbps)}).`,
    );
    const hashSeconds = t.size / MB / l.sha256.mbps;
    const diskSeconds = t.size / MB / l.disk.mbps;
    sentences.push(
      `Of the median run's ${secs(run.wallSeconds)}, hashing every byte needs ${secs(hashSeconds)} at the ` +
        `SHA-256 speed measured, and writing and flushing the file ${secs(diskSeconds)} at the disk speed measured.`,
    );
    const busy = coresOf(run.downloaderCpu, run);
    if (busy !== null && run.downloaderCpu !== null) {
      const msPerMB = (run.downloaderCpu * 1000) / (t.size / MB);
      const hashMsPerMB = 1000 / l.sha256.mbps;
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

  return sentences;
}

function trackerSentences(r: BenchResult): string[] {
  const { tracker: k, transfer: t } = r;
  if (!k) return [];
  const sentences: string[] = [];
  const one = t?.cases.find((c) => c.seeders === 1);
  sentences.push(
    `The tracker registered ${fixed(k.have.perSecond)} chunks per second, one HAVE request each, from ` +
      `${k.sessions} concurrent sessions (p99 ${fixed(k.have.p99Ms, 1)} ms)${bottleneck(k.have)}.`,
  );
  sentences.push(
    `It answered ${fixed(k.locate.perSecond)} locates per second for a file with ${k.locate.holders} holders ` +
      `(${fixed(k.locate.replyBytes / 1000)} kB replies)${bottleneck(k.locate)}.`,
  );
  if (one && t) {
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

/** CPU milliseconds a downloader process spent per MB it downloaded; null if unknown. */
function cpuMsPerMB(cpu: number | null, size: number): number | null {
  return cpu === null ? null : (cpu * 1000) / (size / MB);
}

/** swarmshare against each other client, case by case: speed, CPU per byte, and the fsync they skip. */
function peerSentences(r: BenchResult): string[] {
  const { peers, transfer: t } = r;
  if (!peers) return [];
  const sentences: string[] = [];
  for (const p of peers.filter((p) => p.notRun !== undefined)) {
    sentences.push(`${p.label} was not run: ${p.notRun}.`);
  }
  const ran = peers.filter((p) => p.notRun === undefined);
  const counts = [...new Set(ran.flatMap((p) => p.cases.map((c) => c.seeders)))].sort((a, b) => a - b);
  for (const n of counts) {
    const ours = t?.cases.find((c) => c.seeders === n);
    const theirs = ran.flatMap((p) => {
      const c = p.cases.find((x) => x.seeders === n && Number.isFinite(x.wallMbps) && x.typical);
      return c ? [{ p, c, run: c.typical! }] : [];
    });
    if (theirs.length === 0) continue;
    const listed = theirs.map(({ p, c }) => `${p.label} ${rate(c.wallMbps)}`).join(', ');
    if (!ours) {
      sentences.push(`From ${seedersLabel(n)}, the other clients downloaded at: ${listed}.`);
      continue;
    }
    const slower = theirs.filter(({ c }) => ours.wallMbps <= c.wallMbps);
    const verdict =
      slower.length === 0
        ? `faster than ${theirs.length === 1 ? theirs[0]!.p.label : theirs.length === 2 ? 'both' : `all ${theirs.length}`}`
        : `slower than ${slower.map(({ p }) => p.label).join(' and ')}`;
    sentences.push(
      `From ${seedersLabel(n)}, swarmshare's ${rate(ours.wallMbps)} is ` +
        theirs
          .map(({ p, c }) => `${fixed(ours.wallMbps / c.wallMbps, 2)} times ${p.label}'s ${rate(c.wallMbps)}`)
          .join(' and ') +
        `: ${verdict}.`,
    );
    if (n !== counts[0]) continue;
    // Where the time goes, for the first case only: CPU per byte, and the fsync the others skip.
    const ourMs = cpuMsPerMB(ours.typical.downloaderCpu, t!.size);
    const theirMs = theirs.map(({ p, run }) => ({ p, ms: cpuMsPerMB(run.downloaderCpu, p.payloadSize) }));
    if (ourMs !== null && theirMs.every(({ ms }) => ms !== null)) {
      sentences.push(
        `Per MB downloaded, the downloader process used ${fixed(ourMs, 1)} CPU-ms in swarmshare, ` +
          theirMs.map(({ p, ms }) => `${fixed(ms, 1)} in ${p.label}`).join(' and ') +
          ' (median runs).',
      );
    }
    for (const { p, run } of theirs) {
      if (run.flushSeconds < 0.1 * run.wallSeconds) continue;
      sentences.push(
        `${p.label} does not flush its file to disk; an fsync after it took ${secs(run.flushSeconds)}, which ` +
          `swarmshare's wall time includes: with it, ${p.label}'s median run would be at ` +
          `${rate(mbPerSecond(p.payloadSize, run.wallSeconds + run.flushSeconds))}.`,
      );
    }
  }
  return sentences;
}

function swarmSentences(r: BenchResult): string[] {
  const sw = r.swarm;
  if (!sw) return [];
  const run = sw.typical;
  const T = run.lastFinishSeconds;
  const ratio = T / sw.boundSeconds;
  const sentences = [
    `In the swarm (1 seeder and ${sw.downloaders} downloaders of ${sizeText(sw.size)}, every upload capped at ` +
      `${sizeText(sw.uploadLimit)}/s), the last downloader was done after ${secs(T)}, ${fixed(ratio, 2)} times ` +
      `the Kumar-Ross bound of ${secs(sw.boundSeconds)}: ` +
      (ratio <= SWARM_GOAL_RATIO
        ? `within the goal of ${fixed(SWARM_GOAL_RATIO, 1)} times.`
        : `outside the goal of ${fixed(SWARM_GOAL_RATIO, 1)} times.`),
  ];
  const verified = lastVerified(run);
  if (verified !== null && verified <= SWARM_GOAL_RATIO * sw.boundSeconds && ratio > SWARM_GOAL_RATIO) {
    sentences.push(
      `Every byte was verified everywhere by ${secs(verified)} (${fixed(verified / sw.boundSeconds, 2)} times the ` +
        'bound): flushing, linking and announcing the files took the rest.',
    );
  }
  const copies = run.seeder.uploadedBytes / sw.size;
  if (copies > 1.1) {
    sentences.push(
      `The seeder sent ${fixed(copies, 2)} copies of the file where the bound assumes one; each extra copy ` +
        `costs up to ${secs(sw.size / sw.uploadLimit)} at its cap.`,
    );
  }
  const cpu = swarmCpuSeconds(run);
  if (cpu !== null) {
    const floor = cpu / sw.cores;
    sentences.push(
      `The swarm's processes used ${fixed(cpu, 1)} CPU seconds, ${secs(floor)} of all ${sw.cores} cores, ` +
        `${fixed(floor / sw.boundSeconds, 2)} times the bound` +
        (floor > SWARM_GOAL_RATIO * sw.boundSeconds
          ? ': on this machine the CPU cost per byte alone keeps the swarm outside the goal.'
          : floor > 0.5 * T
            ? ': the CPU was a large part of the time.'
            : ': the CPU was not what held it.'),
    );
  }
  return sentences;
}

function memorySentences(r: BenchResult): string[] {
  const m = r.memory;
  if (!m) return [];
  const peaks = [
    ['downloader', m.downloader],
    ['seeder', m.seeder],
  ] as const;
  const known = peaks.flatMap(([name, p]) => (p.peakBytes === null ? [] : [{ name, p, bytes: p.peakBytes }]));
  if (known.length < peaks.length)
    return [`The peak memory of the ${sizeText(m.size)} transfer could not be read.`];
  const over = known.filter((k) => k.bytes >= m.goalBytes);
  const sentences = [
    `Moving ${sizeText(m.size)} from one seeder to one downloader, the downloader's resident memory peaked at ` +
      `${mbText(m.downloader.peakBytes)} and the seeder's at ${mbText(m.seeder.peakBytes)} while serving ` +
      `(${fixed(m.downloader.peakBytes! / m.goalBytes, 2)} and ${fixed(m.seeder.peakBytes! / m.goalBytes, 2)} ` +
      `of the ${mbText(m.goalBytes)} goal): ` +
      (over.length === 0
        ? 'the goal is met'
        : `the goal is not met by the ${over.map((k) => k.name).join(' and ')}`) +
      (m.size / Math.max(...known.map((k) => k.bytes)) >= 5
        ? ', and neither holds the file in memory.'
        : '.'),
  ];
  if (m.seederStartupBytes !== null && m.seederStartupBytes >= m.goalBytes) {
    sentences.push(
      `Hashing its folder at start, before the transfer, the seeder peaked at ${mbText(m.seederStartupBytes)}, ` +
        'over the goal.',
    );
  }
  for (const { name, p } of over) {
    if (!p.heap) continue;
    const buffers = p.heap.arrayBuffers >= p.heap.heapTotal;
    sentences.push(
      `The ${name}'s peak is mostly ${buffers ? 'Buffers outside the V8 heap' : 'the V8 heap'} ` +
        `(heap up to ${mbText(p.heap.heapTotal)}, Buffers up to ${mbText(p.heap.arrayBuffers)}).`,
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
