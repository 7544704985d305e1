/**
 * The other clients' figures as a Markdown section (for BENCHMARKS.md) and as terminal lines.
 * Every number comes from the results passed in.
 */
import { fixed, mdTable, textTable } from '../format.js';
import { MB, mbPerSecond } from '../util.js';
import type { PeerCase, PeerClientResult, PeerRun } from './types.js';

/** A swarmshare figure from the same run, to stand in the same table (optional). */
export interface OurFigure {
  seeders: number;
  wallMbps: number;
  /** The speed swarmshare reports itself, the median run's wall seconds, and every run's wall MB/s. */
  ownMbps?: number | null;
  wallSeconds?: number | null;
  runsMbps?: readonly number[];
  /** Cores (CPU seconds per wall second) of the median run, if known. */
  downloaderCores?: number | null;
  seedersCores?: number | null;
}

export interface RenderOptions {
  /** What the ceiling is, e.g. "SHA-256 on one core". */
  ceilingName?: string;
  ours?: readonly OurFigure[];
}

const coresOf = (cpu: number | null, run: PeerRun | null): number | null =>
  cpu === null || run === null ? null : cpu / run.wallSeconds;
const seedersLabel = (n: number): string => `${n} seeder${n === 1 ? '' : 's'}`;

const HEADER = [
  'client',
  'case',
  'wall MB/s',
  'ratio to ceiling',
  'own MB/s',
  'wall s',
  'fsync s',
  'runs, wall MB/s',
  'downloader cores',
  'seeders cores',
  'tracker cores',
  'other cores',
];

function caseRow(label: string, c: PeerCase, size: number, ceiling: number): string[] {
  const run = c.typical;
  return [
    label,
    seedersLabel(c.seeders),
    fixed(c.wallMbps),
    fixed(c.wallMbps / ceiling, 2),
    fixed(c.ownMbps),
    run ? fixed(run.wallSeconds, 2) : 'n/a',
    run ? fixed(run.flushSeconds, 2) : 'n/a',
    c.runs.map((r) => fixed(mbPerSecond(size, r.wallSeconds))).join(', ') || 'none',
    fixed(coresOf(run?.downloaderCpu ?? null, run), 2),
    fixed(coresOf(run?.seedersCpu ?? null, run), 2),
    fixed(coresOf(run?.trackerCpu ?? null, run), 2),
    fixed(coresOf(run?.otherCpu ?? null, run), 2),
  ];
}

function ourRow(o: OurFigure, ceiling: number): string[] {
  return [
    'swarmshare',
    seedersLabel(o.seeders),
    fixed(o.wallMbps),
    fixed(o.wallMbps / ceiling, 2),
    fixed(o.ownMbps ?? null),
    fixed(o.wallSeconds ?? null, 2),
    // swarmshare flushes its file to disk before it exits: the fsync is part of its wall time.
    'in wall',
    o.runsMbps?.map((v) => fixed(v)).join(', ') ?? '(above)',
    fixed(o.downloaderCores ?? null, 2),
    fixed(o.seedersCores ?? null, 2),
    '',
    '',
  ];
}

function rows(results: readonly PeerClientResult[], ceiling: number, options: RenderOptions): string[][] {
  const size = sizeOf(results);
  const ours = [...(options.ours ?? [])].map((o) => ourRow(o, ceiling));
  return [
    ...ours,
    ...results.flatMap((r) =>
      r.notRun !== undefined
        ? [[r.label, 'not run', ...HEADER.slice(2).map(() => '')]]
        : r.cases.map((c) => caseRow(r.label, c, size, ceiling)),
    ),
  ];
}

function sizeOf(results: readonly PeerClientResult[]): number {
  return results[0]?.payloadSize ?? Number.NaN;
}

const secs = (s: number | null): string => (s === null ? 'n/a' : `${s.toFixed(s < 10 ? 2 : 1)} s`);

/** Sentences on setup costs (outside the timed part), clients not run, and cases that failed. */
function notes(results: readonly PeerClientResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    if (r.notRun !== undefined) {
      out.push(`**${r.label}: not run:** ${r.notRun}`);
      continue;
    }
    const install =
      r.installSeconds === null
        ? ''
        : r.installSeconds > 0
          ? `installed in this run in ${secs(r.installSeconds)}; `
          : 'already installed; ';
    out.push(
      `**${r.label}:** ${r.setup} Outside the timed part: ${install}its first seeder was announced complete ` +
        `${secs(r.firstSeederSeconds)} after it was spawned.`,
    );
    const one = r.cases.find((c) => c.typical?.ownMbps);
    if (one?.typical?.ownMbps) {
      const outside = one.typical.wallSeconds - r.payloadSize / MB / one.typical.ownMbps;
      out.push(
        `With ${seedersLabel(one.seeders)}, ${secs(outside)} of the median run's ${secs(one.typical.wallSeconds)} ` +
          `lie outside ${r.label}'s own clock (process start, finding the tracker and peers, closing down).`,
      );
    }
    for (const c of r.cases.filter((c) => c.error !== undefined)) {
      out.push(
        `**${r.label}, ${seedersLabel(c.seeders)}: failed** after ${c.runs.length} good run(s): ${c.error}`,
      );
    }
  }
  const torrent = results.find((r) => r.torrentSeconds !== null)?.torrentSeconds ?? null;
  if (torrent !== null) {
    out.push(
      `Making the .torrent (SHA-1 of every 1 MiB piece of the payload, once for both clients) took ${secs(torrent)}.`,
    );
  }
  return out;
}

/** A Markdown section: heading, method, one table row per client and case, setup notes. */
export function renderPeerClients(
  results: readonly PeerClientResult[],
  ceilingMbps: number,
  options: RenderOptions = {},
): string {
  const size = sizeOf(results);
  const runs = Math.max(0, ...results.flatMap((r) => r.cases.map((c) => c.runs.length)));
  const ceilingName = options.ceilingName ?? 'the ceiling';
  const sizeText = !Number.isFinite(size)
    ? 'the payload'
    : size % 2 ** 30 === 0
      ? `${size / 2 ** 30} GiB`
      : `${(size / 2 ** 20).toFixed(0)} MiB`;
  return [
    `## The same download with other BitTorrent clients`,
    '',
    `The same ${sizeText} payload, one seeder (then several) to one downloader on 127.0.0.1, with real ` +
      'BitTorrent clients: aria2 (Debian package) and webtorrent (npm), each against its own local ' +
      'bittorrent-tracker (HTTP, 127.0.0.1) and a private .torrent with 1 MiB pieces. Each seeder has the ' +
      'payload hard-linked into its folder; the payload is read through the page cache before each run. ' +
      '*Wall* is the downloader process from spawn to exit; *own* is the average the client reports itself ' +
      "(aria2's results table; webtorrent: adding the torrent to the last piece written). The downloaded " +
      "file is checked against the payload's SHA-256 after each run, then deleted. Neither client syncs its " +
      'file to disk: *fsync s* is an fsync of it timed after the downloader exited, not part of *wall*. ' +
      `Median of ${runs} run(s) per case${
        options.ours?.length
          ? ' (the swarmshare rows are the downloads of the section above, which flush their file to disk ' +
            'before they exit)'
          : ''
      }; CPU figures (CPU seconds over wall seconds, in cores) are those of ` +
      `the median run. The ratio is to ${ceilingName} (${fixed(ceilingMbps)} MB/s) measured in the same run.`,
    '',
    ...mdTable([HEADER, ...rows(results, ceilingMbps, options)], 2),
    '',
    ...notes(results).flatMap((line) => [line, '']),
  ].join('\n');
}

/** The same as plain lines for the terminal. */
export function formatPeerClientsConsole(
  results: readonly PeerClientResult[],
  ceilingMbps: number,
  options: RenderOptions = {},
): string {
  const lines = textTable([HEADER, ...rows(results, ceilingMbps, options)], 2);
  const plain = notes(results).map((line) => `- ${line.replace(/\*\*/g, '').replace(/`/g, '')}`);
  return [...lines.map((l) => `  ${l}`), ...plain].join('\n') + '\n';
}
