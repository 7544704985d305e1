/**
 * A swarm on loopback: one seeder and N downloaders of one file, every peer's upload capped, all
 * real `swarmshare peer` processes around one `swarmshare tracker`. The downloaders are told to
 * `get` the file through their shells at the same moment and keep serving what they hold until the
 * last one has finished. Each downloader's verified bytes are sampled from its HTTP API; the time
 * of the last one is compared with the fluid-model lower bound (Kumar and Ross):
 *
 *   T >= max(F / u_seed, N * F / (u_seed + sum of the downloaders' upload rates))
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fixed, mdTable, percent } from './format.js';
import { lineChartSvg } from './plot.js';
import { readThrough, sha256File, writePayload } from './payload.js';
import { machineCpu, type MachineCpu } from './proc-stat.js';
import type { Child, ProcessGroup } from './processes.js';
import {
  difference,
  errorText,
  GiveUp,
  MiB,
  median,
  nowSeconds,
  ownCpuSeconds,
  processCpuSeconds,
  sleep,
  sumOrNull,
  waitFor,
} from './util.js';

export const SWARM_FILE = 'swarm.bin';
/** The goal: the last downloader done within this factor of the lower bound. */
export const SWARM_GOAL_RATIO = 1.2;
/** Busy enough (share of all cores) to call the machine's CPU the limit. */
const CPU_BOUND_SHARE = 0.9;
/** Cores used by the rest of the machine beyond which a figure is called held down by it. */
const OTHER_LOAD = 0.25;
const SEEDER_NAME = 'seed';

export interface SwarmOptions {
  group: ProcessGroup;
  /** A fresh folder for the seeder's and the downloaders' folders. */
  workDir: string;
  downloaders: number;
  size: number;
  /** Every peer's upload limit, bytes per second. */
  uploadLimit: number;
  /** Swarms run one after another (fresh downloaders each time; same tracker and seeder). */
  runs?: number;
  /** How often each peer's progress is read. */
  sampleMs?: number;
  /** Where to write the SVG plot of the median run; no plot if absent. */
  plotFile?: string;
  log: (line: string) => void;
}

/** [seconds since the start of the run, bytes]. */
export type Sample = [number, number];

export interface SwarmDownloader {
  name: string;
  /** Seconds from the `get` lines being written to its download being under way (manifest found). */
  startSeconds: number | null;
  /** Seconds to every byte verified: the first sample showing it (within sampleMs), at most finishSeconds. */
  verifiedSeconds: number | null;
  /** Seconds from the `get` lines being written to its download done (every byte verified, the file flushed, linked and announced). */
  finishSeconds: number;
  /** Verified bytes it received from the seeder. */
  fromSeederBytes: number;
  /** Sources it received any bytes from. */
  sourcesUsed: number;
  /** Chunk bytes it sent to others during the run. */
  uploadedBytes: number;
  cpuSeconds: number | null;
  /** Its verified bytes over time. */
  progress: Sample[];
}

export interface SwarmRun {
  firstFinishSeconds: number;
  medianFinishSeconds: number;
  lastFinishSeconds: number;
  downloaders: SwarmDownloader[];
  seeder: { uploadedBytes: number; cpuSeconds: number | null; uploads: Sample[] };
  trackerCpu: number | null;
  /** The benchmark process itself (mostly the sampling). */
  benchCpu: number;
  /** CPU seconds of the whole machine (all cores), and the part no process of ours used. */
  machineBusy: number | null;
  machineIowait: number | null;
  otherCpu: number | null;
  /** The span the CPU figures cover: the start to the last download seen done (a little over the last finish). */
  cpuWindowSeconds: number;
  /** Cores busy over each sampling interval. */
  busyCores: Sample[];
  /** Cores the rest of the machine kept busy in the 2 s before the start (the swarm idle). */
  backgroundCores: number | null;
  /** Progress reads that failed or timed out (their samples are missing). */
  missedSamples: number;
}

export interface SwarmResult {
  downloaders: number;
  size: number;
  uploadLimit: number;
  boundSeconds: number;
  cores: number;
  sampleMs: number;
  /** Seconds to write the payload, and from the seeder's spawn to its being listed. */
  payloadSeconds: number;
  seederSeconds: number;
  runs: SwarmRun[];
  /** The run whose last finish is the median (for the details and the plot). */
  typical: SwarmRun;
  plotFile: string | null;
}

/** Kumar and Ross's lower bound on the time for every downloader to hold the file (no download cap). */
export function fluidBoundSeconds(
  downloaders: number,
  size: number,
  seederUpload: number,
  downloaderUploads: readonly number[],
): number {
  const total = seederUpload + downloaderUploads.reduce((a, u) => a + u, 0);
  return Math.max(size / seederUpload, (downloaders * size) / total);
}

interface Peer {
  name: string;
  dir: string;
  child: Child;
  /** Base URL of its HTTP API. */
  api: string;
}

/** A download as GET /api/downloads shows it (the fields read here). */
interface DownloadView {
  name: string;
  bytes: number;
  state: 'running' | 'paused' | 'finished' | 'failed';
  startedAt: string;
  endedAt: string | null;
  savedAs: string | null;
  sources: { name: string; bytes: number }[];
  error: { code: string; message: string } | null;
}

export async function runSwarm(options: SwarmOptions): Promise<SwarmResult> {
  const { group, workDir, size, uploadLimit, log } = options;
  const runsWanted = options.runs ?? 1;
  const sampleMs = options.sampleMs ?? 400;
  const seedDir = path.join(workDir, SEEDER_NAME);
  await fs.mkdir(seedDir, { recursive: true });
  const payload = path.join(seedDir, SWARM_FILE);

  log(`swarm: writing the ${size / MiB} MiB payload`);
  let start = nowSeconds();
  const payloadSha = await writePayload(payload, size);
  const payloadSeconds = nowSeconds() - start;

  // One keep-alive agent: polling the peers must cost them (and us) as little as possible.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const tracker = group.swarmshare('tracker', ['tracker', '--host', '127.0.0.1', '--port', '0']);
  let seederChild: Child | null = null;
  try {
    const address = (await tracker.waitForOutput(/swarmshare tracker listening on (\S+)/, 30_000))[1]!;
    await readThrough(payload);
    start = nowSeconds();
    const seeder = await startPeer(group, agent, SEEDER_NAME, seedDir, address, uploadLimit, size);
    seederChild = seeder.child;
    const seederSeconds = nowSeconds() - start;
    log(`swarm: tracker on ${address}; the seeder was ready after ${seederSeconds.toFixed(1)} s`);

    const runs: SwarmRun[] = [];
    for (let run = 1; run <= runsWanted; run++) {
      const result = await swarmOnce(options, agent, address, tracker, seeder, payload, payloadSha, sampleMs);
      log(
        `swarm run ${run}/${runsWanted}: last of ${options.downloaders} done after ` +
          `${result.lastFinishSeconds.toFixed(1)} s (first ${result.firstFinishSeconds.toFixed(1)} s)`,
      );
      runs.push(result);
    }
    const byLast = [...runs].sort((a, b) => a.lastFinishSeconds - b.lastFinishSeconds);
    const typical = byLast[(byLast.length - 1) >> 1]!;
    const result: SwarmResult = {
      downloaders: options.downloaders,
      size,
      uploadLimit,
      boundSeconds: fluidBoundSeconds(
        options.downloaders,
        size,
        uploadLimit,
        Array.from({ length: options.downloaders }, () => uploadLimit),
      ),
      cores: os.cpus().length,
      sampleMs,
      payloadSeconds,
      seederSeconds,
      runs,
      typical,
      plotFile: options.plotFile ?? null,
    };
    if (options.plotFile) {
      await fs.mkdir(path.dirname(options.plotFile), { recursive: true });
      await fs.writeFile(options.plotFile, swarmPlotSvg(result));
    }
    return result;
  } finally {
    agent.destroy();
    await Promise.all([seederChild, tracker].map((child) => child && group.stop(child)));
    await fs.rm(seedDir, { recursive: true, force: true });
  }
}

/** Spawns a peer with its HTTP API on a free loopback port; resolves once it is on the tracker. */
async function startPeer(
  group: ProcessGroup,
  agent: http.Agent,
  name: string,
  dir: string,
  tracker: string,
  uploadLimit: number,
  hashBytes: number,
): Promise<Peer> {
  await fs.mkdir(dir, { recursive: true });
  const child = group.swarmshare(name, [
    'peer',
    ...['--dir', dir, '--tracker', tracker, '--host', '127.0.0.1', '--name', name],
    ...['--upload-limit', String(uploadLimit)],
    ...['--http-port', '0', '--http-host', '127.0.0.1'],
    // Loopback only: no multicast offers out of this machine's real interfaces.
    '--no-lan',
  ]);
  // A seeder hashes its folder before it connects: allow ~5 MB/s and a minute.
  const timeoutMs = 60_000 + hashBytes / 5_000;
  try {
    const [, api] = await child.waitForOutput(/peer dashboard at (http:\/\/127\.0\.0\.1:\d+)\//, timeoutMs);
    await waitForTracker(agent, name, child, api!);
    return { name, dir, child, api: api! };
  } catch (err) {
    await group.stop(child);
    throw err;
  }
}

/** Its "connected to" line may come before the shell listens (the dashboard starts first): ask. */
async function waitForTracker(agent: http.Agent, name: string, child: Child, api: string): Promise<void> {
  await waitFor(
    async () => {
      if (!child.alive) throw new GiveUp(`${name} exited: ${child.describeOutput()}`);
      const status = await requestJson<{ trackers: { connected: boolean }[] }>(
        agent,
        `${api}/api/status`,
        5_000,
      );
      return status.trackers.length > 0 && status.trackers.every((t) => t.connected);
    },
    `${name} to connect to the tracker`,
    30_000,
    100,
  );
}

async function swarmOnce(
  options: SwarmOptions,
  agent: http.Agent,
  address: string,
  tracker: Child,
  seeder: Peer,
  payload: string,
  payloadSha: string,
  sampleMs: number,
): Promise<SwarmRun> {
  const { group, workDir, size, uploadLimit, log } = options;
  const getJson = <T>(url: string): Promise<T> => requestJson<T>(agent, url, 5_000);
  const runDir = path.join(workDir, 'downloaders');
  await fs.rm(runDir, { recursive: true, force: true });
  const names = Array.from({ length: options.downloaders }, (_, i) => `dl${i + 1}`);
  const started = await Promise.allSettled(
    names.map((name) => startPeer(group, agent, name, path.join(runDir, name), address, uploadLimit, 0)),
  );
  const peers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    // Every downloader must see the file before the start, or some would start late.
    await Promise.all(
      peers.map((peer) =>
        waitFor(
          async () => {
            if (!seeder.child.alive) throw new GiveUp(`the seeder exited: ${seeder.child.describeOutput()}`);
            const { files } = await getJson<{ files: { name: string; size: number }[] }>(
              `${peer.api}/api/catalog?q=${SWARM_FILE}`,
            );
            return files.some((f) => f.name === SWARM_FILE && f.size === size);
          },
          `${peer.name} to see ${SWARM_FILE} in the catalog`,
          30_000,
          200,
        ),
      ),
    );
    // The page cache of this VM is dropped within a minute: warm the payload; then let the
    // machine settle after starting so many processes.
    await readThrough(payload);
    const cpuOf = (): (number | null)[] =>
      [tracker, seeder.child, ...peers.map((p) => p.child)].map((c) => processCpuSeconds(c.pid));
    // Let the machine settle after starting so many processes, and see what else keeps it busy.
    const idleCpu = cpuOf();
    const idleMachine = machineCpu();
    const idleStart = nowSeconds();
    await sleep(2000);
    const idleOurs = sumOrNull(cpuOf().map((after, i) => difference(after, idleCpu[i] ?? null)));
    const idleBusy = machineDelta(machineCpu(), idleMachine)?.busy ?? null;
    const backgroundCores =
      idleBusy === null || idleOurs === null
        ? null
        : Math.max(0, idleBusy - idleOurs) / (nowSeconds() - idleStart);

    const uploadedOf = async (peer: Peer): Promise<number> =>
      (await getJson<{ uploadedBytes: number }>(`${peer.api}/api/status`)).uploadedBytes;
    const uploadedBefore = await Promise.all([seeder, ...peers].map(uploadedOf));
    const cpuBefore = cpuOf();
    const machineBefore = machineCpu();
    const benchBefore = ownCpuSeconds();

    const startedAt = Date.now();
    const t0 = nowSeconds();
    for (const peer of peers) peer.child.proc.stdin.write(`get ${SWARM_FILE}\n`);

    const progress = peers.map((): Sample[] => [[0, 0]]);
    const seederUploads: Sample[] = [[0, 0]];
    const ended: (DownloadView | null)[] = peers.map(() => null);
    const began: (number | null)[] = peers.map(() => null);
    const verified: (number | null)[] = peers.map(() => null);
    const busyCores: Sample[] = [];
    let missedSamples = 0;
    let stopped = false;
    // Generous: ten times what one copy takes at the cap, and two minutes.
    const deadline = t0 + 120 + (10 * size) / uploadLimit;

    /** Runs `step` every sampleMs until it returns true or the run stops; a slow answer delays only its own loop. */
    const every = async (step: () => Promise<boolean>): Promise<void> => {
      while (!stopped) {
        const tick = nowSeconds();
        if (await step()) return;
        if (tick > deadline) {
          const where = peers.map((p, i) => `${p.name} ${progress[i]!.at(-1)![1]}`).join(', ');
          throw new Error(`the swarm did not finish in ${(deadline - t0).toFixed(0)} s: bytes ${where}`);
        }
        await sleep(Math.max(0, sampleMs - (nowSeconds() - tick) * 1000));
      }
    };
    // Each downloader is read until its download has ended: one small request per peer and tick.
    const followDownloader = (peer: Peer, i: number): Promise<void> =>
      every(async () => {
        let downloads: DownloadView[];
        try {
          ({ downloads } = await getJson<{ downloads: DownloadView[] }>(`${peer.api}/api/downloads`));
        } catch {
          if (!peer.child.alive) throw new GiveUp(`${peer.name} exited: ${peer.child.describeOutput()}`);
          missedSamples++;
          return false;
        }
        const t = nowSeconds() - t0;
        const view = downloads.find((d) => d.name === SWARM_FILE);
        if (!view) return false;
        if (view.state === 'failed')
          throw new GiveUp(`${peer.name}: the download failed: ${view.error?.message ?? '?'}`);
        began[i] ??= (Date.parse(view.startedAt) - startedAt) / 1000;
        progress[i]!.push([t, view.bytes]);
        // Every byte verified; the download is done once the file is flushed, linked and announced.
        if (view.bytes === size) verified[i] ??= t;
        if (view.state !== 'finished') return false;
        ended[i] = view;
        return true;
      });
    // The seeder's upload over time, and the machine's busy cores (a file read: nearly free).
    let lastMachine = machineBefore;
    let lastT = 0;
    const followSeederAndMachine = every(async () => {
      const now = machineCpu();
      const t = nowSeconds() - t0;
      if (now && lastMachine && t > lastT) busyCores.push([t, (now.busy - lastMachine.busy) / (t - lastT)]);
      lastMachine = now;
      lastT = t;
      await uploadedOf(seeder).then(
        (bytes) => void seederUploads.push([nowSeconds() - t0, bytes - uploadedBefore[0]!]),
        () => void missedSamples++,
      );
      return false;
    });
    try {
      await Promise.all(peers.map(followDownloader));
    } finally {
      stopped = true;
      await followSeederAndMachine.catch(() => undefined);
    }
    // CPU up to the moment the last download was seen finished.
    const cpuAfter = cpuOf();
    const machineAfter = machineCpu();
    const benchCpu = ownCpuSeconds() - benchBefore;
    const cpuWindowSeconds = nowSeconds() - t0;
    const uploadedAfter = await Promise.all([seeder, ...peers].map(uploadedOf));

    const finishes = ended.map((view) => (Date.parse(view!.endedAt!) - startedAt) / 1000);
    const cpu = cpuAfter.map((after, i) => difference(after, cpuBefore[i] ?? null));

    log(`swarm: verifying ${peers.length} downloads`);
    for (const [i, peer] of peers.entries()) {
      const file = path.join(peer.dir, ended[i]!.savedAs!);
      const stat = await fs.stat(file);
      if (stat.size !== size) throw new Error(`${file} has ${stat.size} bytes, expected ${size}`);
      const sha = await sha256File(file);
      if (sha !== payloadSha)
        throw new Error(`${file}: SHA-256 ${sha} differs from the payload's ${payloadSha}`);
    }

    const downloaders: SwarmDownloader[] = peers.map((peer, i) => {
      const view = ended[i]!;
      // The last point is the finish itself, so every line ends at the file's size.
      const series = progress[i]!.filter(([t]) => t < finishes[i]!);
      series.push([finishes[i]!, size]);
      return {
        name: peer.name,
        startSeconds: began[i] ?? null,
        // Seen at the first sample after it: never later than the finish, which the peer timed itself.
        verifiedSeconds: Math.min(verified[i] ?? Infinity, finishes[i]!),
        finishSeconds: finishes[i]!,
        fromSeederBytes: view.sources.find((s) => s.name === SEEDER_NAME)?.bytes ?? 0,
        sourcesUsed: view.sources.filter((s) => s.bytes > 0).length,
        uploadedBytes: uploadedAfter[i + 1]! - uploadedBefore[i + 1]!,
        cpuSeconds: cpu[i + 2] ?? null,
        progress: series,
      };
    });
    const ours = sumOrNull([cpu[0] ?? null, cpu[1] ?? null, ...downloaders.map((d) => d.cpuSeconds)]);
    const machine = machineDelta(machineAfter, machineBefore);
    const sorted = [...finishes].sort((a, b) => a - b);
    return {
      firstFinishSeconds: sorted[0]!,
      medianFinishSeconds: median(sorted),
      lastFinishSeconds: sorted.at(-1)!,
      downloaders,
      seeder: {
        uploadedBytes: uploadedAfter[0]! - uploadedBefore[0]!,
        cpuSeconds: cpu[1] ?? null,
        uploads: seederUploads,
      },
      trackerCpu: cpu[0] ?? null,
      benchCpu,
      machineBusy: machine?.busy ?? null,
      machineIowait: machine?.iowait ?? null,
      otherCpu: machine === null || ours === null ? null : Math.max(0, machine.busy - ours - benchCpu),
      busyCores,
      backgroundCores,
      cpuWindowSeconds,
      missedSamples,
    };
  } finally {
    await Promise.all(peers.map((peer) => group.stop(peer.child)));
    await fs.rm(runDir, { recursive: true, force: true });
  }
}

function requestJson<T>(agent: http.Agent, url: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as T);
        } catch (err) {
          reject(new Error(`GET ${url}: ${errorText(err)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function machineDelta(after: MachineCpu | null, before: MachineCpu | null): MachineCpu | null {
  return after && before ? { busy: after.busy - before.busy, iowait: after.iowait - before.iowait } : null;
}

// ---- the plot ------------------------------------------------------------------------------------

const mibText = (bytes: number): string => `${+(bytes / MiB).toFixed(1)} MiB`;

/** Each downloader's verified MiB over time in the typical run, with the bound as a vertical line. */
export function swarmPlotSvg(r: SwarmResult): string {
  const run = r.typical;
  return lineChartSvg({
    title:
      `1 seeder + ${r.downloaders} downloaders of ${mibText(r.size)}, uploads capped at ` +
      `${mibText(r.uploadLimit)}/s: last done at ${run.lastFinishSeconds.toFixed(1)} s`,
    xLabel: 'seconds since the downloads were started',
    yLabel: 'verified MiB',
    series: run.downloaders.map((d) => ({
      label: `${d.name} ${d.finishSeconds.toFixed(1)} s`,
      points: d.progress.map(([t, b]): [number, number] => [t, b / MiB]),
    })),
    markers: [{ x: r.boundSeconds, label: `bound ${r.boundSeconds.toFixed(1)} s` }],
    yMax: r.size / MiB,
    yExact: true,
  });
}

// ---- the report ----------------------------------------------------------------------------------

const secs = (seconds: number): string => `${fixed(seconds, 1)} s`;
/** CPU seconds, and in parentheses the cores they kept busy over `seconds`. */
const cpuText = (cpu: number | null, seconds: number): string =>
  cpu === null ? 'n/a' : `${fixed(cpu, 1)} (${fixed(cpu / seconds, 2)})`;

/** The latest time every downloader held every byte verified (before flushing), or null if unseen. */
export function lastVerified(run: SwarmRun): number | null {
  const times = run.downloaders.map((d) => d.verifiedSeconds);
  return times.some((t) => t === null) ? null : Math.max(...(times as number[]));
}

/**
 * The swarm as a BENCHMARKS.md section: the finish times against the bound, a row per peer, the
 * plot (linked as `plotLink`, relative to the report), and sentences read from the figures.
 */
export function renderSwarm(r: SwarmResult, plotLink = 'docs/bench-swarm.svg'): string {
  const run = r.typical;
  const T = run.lastFinishSeconds;
  const cap = mibText(r.uploadLimit);
  const verifiedAll = lastVerified(run);
  const runsNote =
    r.runs.length > 1
      ? ` Runs: ${r.runs.map((x) => secs(x.lastFinishSeconds)).join(', ')} for the last downloader; the ` +
        'tables and the plot show the median run.'
      : '';
  const row = (label: string, seconds: number | null): string[] =>
    seconds === null ? [label, 'n/a', 'n/a'] : [label, fixed(seconds, 1), fixed(seconds / r.boundSeconds, 2)];
  const out: string[] = [
    `## Swarm: 1 seeder and ${r.downloaders} downloaders of ${mibText(r.size)}, every upload capped at ${cap}/s`,
    '',
    `Real processes on loopback: one \`swarmshare tracker\` and ${r.downloaders + 1} \`swarmshare peer --no-lan ` +
      `--upload-limit ${r.uploadLimit}\` on ${r.cores} cores. The downloaders start empty and are all told ` +
      `\`get ${SWARM_FILE}\` through their shells at the same moment; each serves what it holds while and after ` +
      `it downloads, and all stay up until the last one is done. Each downloader's progress is read from its ` +
      `HTTP API every ${r.sampleMs} ms; the finish times are the peers' own (the file verified, flushed to disk, ` +
      "linked and announced). Every download is checked against the payload's SHA-256 afterwards. The lower " +
      `bound (Kumar and Ross's fluid model) is max(F/u, N·F/((N+1)·u)) = ${secs(r.boundSeconds)}: the seeder ` +
      'must send every byte at least once.' +
      runsNote,
    '',
    ...mdTable([
      ['', 'seconds', 'ratio to the bound'],
      row('lower bound', r.boundSeconds),
      row('first downloader done', run.firstFinishSeconds),
      row('median downloader done', run.medianFinishSeconds),
      row(`every byte verified at every downloader (seen within ${r.sampleMs} ms)`, verifiedAll),
      ['**last downloader done**', `**${fixed(T, 1)}**`, `**${fixed(T / r.boundSeconds, 2)}**`],
    ]),
    '',
    `![each downloader's verified MiB over time](${plotLink})`,
    '',
    'Per peer: when its download got under way, held every byte verified, and was done; where its bytes ' +
      `came from; what it uploaded in the run (MiB, and MiB/s over the ${secs(T)}); its CPU seconds ` +
      '(in parentheses: cores, over the run).',
    '',
    ...mdTable([
      [
        'peer',
        'under way s',
        'verified s',
        'done s',
        'from the seeder',
        'sources used',
        'uploaded MiB',
        'upload MiB/s',
        'CPU s (cores)',
      ],
      [
        SEEDER_NAME,
        '',
        '',
        '',
        '',
        '',
        fixed(run.seeder.uploadedBytes / MiB),
        fixed(run.seeder.uploadedBytes / MiB / T, 1),
        cpuText(run.seeder.cpuSeconds, run.cpuWindowSeconds),
      ],
      ...run.downloaders.map((d) => [
        d.name,
        d.startSeconds === null ? 'n/a' : fixed(d.startSeconds, 1),
        d.verifiedSeconds === null ? 'n/a' : fixed(d.verifiedSeconds, 1),
        fixed(d.finishSeconds, 1),
        percent(d.fromSeederBytes / r.size),
        String(d.sourcesUsed),
        fixed(d.uploadedBytes / MiB),
        fixed(d.uploadedBytes / MiB / T, 1),
        cpuText(d.cpuSeconds, run.cpuWindowSeconds),
      ]),
      ['tracker', '', '', '', '', '', '', '', cpuText(run.trackerCpu, run.cpuWindowSeconds)],
      ['benchmark (sampling)', '', '', '', '', '', '', '', cpuText(run.benchCpu, run.cpuWindowSeconds)],
      ['rest of the machine', '', '', '', '', '', '', '', cpuText(run.otherCpu, run.cpuWindowSeconds)],
    ]),
    '',
    swarmVerdict(r).join(' '),
    '',
  ];
  return out.join('\n');
}

/** Sentences read from the typical run: the goal, the seeder's and the swarm's upload use, the CPU. */
export function swarmVerdict(r: SwarmResult): string[] {
  const run = r.typical;
  const T = run.lastFinishSeconds;
  const ratio = T / r.boundSeconds;
  const sentences: string[] = [];
  sentences.push(
    `The last of ${r.downloaders} downloaders was done after ${secs(T)}, ` +
      `${fixed(ratio, 2)} times the lower bound of ${secs(r.boundSeconds)}: ` +
      (ratio <= SWARM_GOAL_RATIO
        ? `within the goal of ${fixed(SWARM_GOAL_RATIO, 1)} times.`
        : `outside the goal of ${fixed(SWARM_GOAL_RATIO, 1)} times.`),
  );
  const verifiedAll = lastVerified(run);
  if (verifiedAll !== null && T - verifiedAll >= 0.1 * T) {
    const tails = run.downloaders
      .filter((d) => d.verifiedSeconds !== null)
      .map((d) => d.finishSeconds - d.verifiedSeconds!);
    sentences.push(
      `Every byte was verified everywhere by ${secs(verifiedAll)} (${fixed(verifiedAll / r.boundSeconds, 2)} times ` +
        `the bound); a downloader then took ${secs(Math.min(...tails))} to ${secs(Math.max(...tails))} ` +
        `(median ${secs(median(tails))}) to flush its file to disk, link and announce it, all ` +
        `${r.downloaders} flushing at about the same time.`,
    );
  }

  const seederRate = run.seeder.uploadedBytes / T;
  const seederCopies = run.seeder.uploadedBytes / r.size;
  sentences.push(
    `The seeder sent ${fixed(seederCopies, 2)} copies of the file, at ${fixed(seederRate / MiB, 1)} MiB/s on ` +
      `average, ${percent(seederRate / r.uploadLimit)} of its cap over the run; ` +
      `at the cap, one copy takes ${secs(r.size / r.uploadLimit)}.`,
  );
  const fromSeeder = run.downloaders.reduce((a, d) => a + d.fromSeederBytes, 0) / (r.downloaders * r.size);
  if (seederCopies > 1.1) {
    sentences.push(
      `The downloaders took ${percent(fromSeeder)} of their bytes from the seeder; the bound assumes each ` +
        `byte leaves the seeder once (${percent(1 / r.downloaders)} here) and the downloaders pass it on, ` +
        `so every copy beyond the first costs up to ${secs(r.size / r.uploadLimit)} more at the cap.`,
    );
  }
  // The start: before the downloaders learn of each other, the seeder alone feeds them all.
  const early = r.boundSeconds / 4;
  const earlyRate = run.downloaders.reduce((a, d) => a + bytesAt(d.progress, early), 0) / early;
  const overallRate = (r.downloaders * r.size) / T;
  if (earlyRate < 0.5 * overallRate) {
    sentences.push(
      `The start is slow: in the first ${secs(early)} the downloaders together verified ` +
        `${fixed(earlyRate / MiB, 1)} MiB/s (${fixed(earlyRate / r.uploadLimit, 1)} times the seeder's cap), ` +
        `against ${fixed(overallRate / MiB, 1)} MiB/s over the whole run, so little passed between them yet.`,
    );
  }
  const late = Math.max(...run.downloaders.map((d) => d.startSeconds ?? 0));
  if (late >= 0.05 * T) {
    sentences.push(`The last download got under way only ${secs(late)} after the start (finding the file).`);
  }

  const uploaded = run.downloaders.reduce((a, d) => a + d.uploadedBytes, 0) + run.seeder.uploadedBytes;
  const needed = r.downloaders * r.size;
  const capacity = (r.downloaders + 1) * r.uploadLimit * T;
  const uploadRates = run.downloaders.map((d) => d.uploadedBytes / T).sort((a, b) => a - b);
  sentences.push(
    `All peers together uploaded ${fixed(uploaded / MiB)} MiB (${percent(uploaded / needed)} of the ` +
      `${fixed(needed / MiB)} MiB the downloaders needed), ${percent(uploaded / capacity)} of what ` +
      `${r.downloaders + 1} capped uploads could send in that time; a downloader uploaded ` +
      `${fixed(uploadRates[0]! / MiB, 1)} to ${fixed(uploadRates.at(-1)! / MiB, 1)} MiB/s on average ` +
      `(median ${fixed(median(uploadRates) / MiB, 1)}).`,
  );
  sentences.push(...cpuVerdict(r));
  if (run.missedSamples > 0) sentences.push(`${run.missedSamples} progress reads went unanswered.`);
  return sentences;
}

/** Verified bytes at time t, interpolated between the samples around it. */
function bytesAt(progress: readonly Sample[], t: number): number {
  const after = progress.findIndex(([time]) => time >= t);
  if (after === -1) return progress.at(-1)?.[1] ?? 0;
  if (after === 0) return progress[0]![1];
  const [t0, b0] = progress[after - 1]!;
  const [t1, b1] = progress[after]!;
  return t1 > t0 ? b0 + ((b1 - b0) * (t - t0)) / (t1 - t0) : b1;
}

/** CPU seconds the swarm's own processes (downloaders, seeder, tracker) used in a run; null if unknown. */
export function swarmCpuSeconds(run: SwarmRun): number | null {
  return sumOrNull([...run.downloaders.map((d) => d.cpuSeconds), run.seeder.cpuSeconds, run.trackerCpu]);
}

/** Whether the machine's CPU was the limit, and how much CPU the swarm itself needs. */
function cpuVerdict(r: SwarmResult): string[] {
  const run = r.typical;
  const T = run.lastFinishSeconds;
  // Shares of the machine over the span the CPU was measured, which ends a sample after T.
  const W = run.cpuWindowSeconds;
  if (run.machineBusy === null) return [];
  const sentences: string[] = [];
  const share = run.machineBusy / (r.cores * W);
  const saturated = run.busyCores.filter(([, c]) => c >= CPU_BOUND_SHARE * r.cores).length;
  const saturatedShare = saturated / Math.max(1, run.busyCores.length);
  const downloaderCpu = sumOrNull(run.downloaders.map((d) => d.cpuSeconds));
  const swarmCpu = swarmCpuSeconds(run);
  const other = run.otherCpu === null ? null : run.otherCpu / W;
  let usage = `The machine's ${r.cores} cores were ${percent(share)} busy over the run (above ${percent(CPU_BOUND_SHARE)} in ${percent(saturatedShare)} of the samples)`;
  if (downloaderCpu !== null && run.seeder.cpuSeconds !== null) {
    usage +=
      `: the downloaders used ${fixed(downloaderCpu / W, 2)} cores together ` +
      `(${fixed(downloaderCpu / r.downloaders / W, 2)} each), the seeder ${fixed(run.seeder.cpuSeconds / W, 2)}, ` +
      `the sampling ${fixed(run.benchCpu / W, 2)}` +
      (other === null ? '' : ` and other work on the machine ${fixed(other, 2)}`);
  }
  sentences.push(
    `${usage}.` +
      (run.backgroundCores === null
        ? ''
        : ` In the 2 s before the start, with the swarm idle, other work kept ${fixed(run.backgroundCores, 2)} cores busy.`),
  );
  const floor = swarmCpu === null ? null : swarmCpu / r.cores;
  if (swarmCpu !== null && floor !== null) {
    const perMiB = (swarmCpu * 1000) / ((r.downloaders * r.size) / MiB);
    sentences.push(
      `The swarm's processes spent ${fixed(swarmCpu, 1)} CPU seconds in all, ${fixed(perMiB, 1)} ms per MiB ` +
        `delivered to a downloader: on ${r.cores} cores that alone takes ${secs(floor)}, ` +
        `${fixed(floor / r.boundSeconds, 2)} times the bound` +
        (floor > SWARM_GOAL_RATIO * r.boundSeconds
          ? `, so on this machine the goal needs that cost per byte ${fixed(floor / (SWARM_GOAL_RATIO * r.boundSeconds), 1)} times smaller.`
          : '.'),
    );
  }
  if (share >= CPU_BOUND_SHARE || saturatedShare >= 0.3) {
    const when = share >= CPU_BOUND_SHARE ? '' : ' for part of the run';
    const othersHeavy = other !== null && other >= OTHER_LOAD;
    if (floor !== null && floor < 0.5 * T && othersHeavy) {
      sentences.push(
        `The CPU was saturated${when}, largely by other work (${fixed(other, 2)} cores), while the swarm's own ` +
          `CPU need fits in ${fixed(floor / T, 2)} of its time: its cost per byte was not the limit, but it ` +
          'competed for the cores, so an idle machine would likely do better.',
      );
    } else {
      sentences.push(
        `The CPU was the limit${when}` +
          (othersHeavy
            ? `, and other work on the machine took ${fixed(other, 2)} cores of it, so an idle machine would do better.`
            : '.'),
      );
    }
  } else {
    sentences.push('The CPU was not the limit: the time went to waiting, on the caps or on the scheduling.');
  }
  if (run.machineIowait !== null && run.machineIowait / (r.cores * run.cpuWindowSeconds) >= 0.1) {
    sentences.push(
      `The cores also waited on the disk ${percent(run.machineIowait / (r.cores * run.cpuWindowSeconds))} of the time.`,
    );
  }
  return sentences;
}
