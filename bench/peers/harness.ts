/**
 * One client's cases: its own tracker, its seeders (each in its own folder with a hard link to the
 * payload), and timed downloads from spawn to exit, each checked against the payload's SHA-256.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { readThrough, sha256File } from '../payload.js';
import type { Child, ProcessGroup } from '../processes.js';
import { errorText, linkOrCopy, mbPerSecond, measureDownloadCpu, median, nowSeconds } from '../util.js';
import { torrentFile, type TorrentInfo } from './torrent.js';
import { Tracker } from './tracker.js';
import type { ClientDriver, Payload, PeerCase, PeerRun } from './types.js';

export interface CaseContext {
  group: ProcessGroup;
  payload: Payload;
  info: TorrentInfo;
  /** The generated module that re-exports bittorrent-tracker (see install.ts). */
  entry: string;
  /** This client's folder, created here and removed afterwards. */
  dir: string;
  runs: number;
  seederCounts: readonly number[];
  log: (line: string) => void;
}

interface Seeder {
  child: Child;
  port: number;
}

/** A TCP port free on 127.0.0.1 right now (the client is told to listen on it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs every case for one client; the first seeder's start-up time comes back beside the cases. */
export async function runClientCases(
  driver: ClientDriver,
  ctx: CaseContext,
): Promise<{ firstSeederSeconds: number | null; cases: PeerCase[] }> {
  const { group, payload, info, log } = ctx;
  await fs.mkdir(ctx.dir, { recursive: true });
  const tracker = await Tracker.start(group, ctx.entry, `${driver.name} tracker`);
  const seeders: Seeder[] = [];
  try {
    const torrentPath = path.join(ctx.dir, `${info.name}.torrent`);
    await fs.writeFile(torrentPath, torrentFile(info, tracker.announce));

    const startSeeders = async (count: number): Promise<void> => {
      while (seeders.length < count) {
        const n = seeders.length + 1;
        const dir = path.join(ctx.dir, `seed${n}`);
        await fs.mkdir(dir, { recursive: true });
        await linkOrCopy(payload.path, path.join(dir, info.name));
        const port = await freePort();
        seeders.push({
          child: driver.startSeeder(group, `${driver.name} seed${n}`, torrentPath, dir, port),
          port,
        });
      }
      await tracker.waitForSeeders(seeders.slice(0, count));
    };

    await readThrough(payload.path);
    const start = nowSeconds();
    await startSeeders(1);
    const firstSeederSeconds = nowSeconds() - start;
    log(`peers: ${driver.label}: seed1 announced complete ${firstSeederSeconds.toFixed(2)} s after spawn`);

    const cases: PeerCase[] = [];
    for (const count of ctx.seederCounts) {
      const runs: PeerRun[] = [];
      let error: string | undefined;
      try {
        await startSeeders(count);
        for (let run = 1; run <= ctx.runs; run++) {
          const result = await downloadOnce(driver, ctx, tracker, torrentPath, seeders.slice(0, count));
          runs.push(result);
          log(
            `peers: ${driver.label}, ${count} seeder(s), run ${run}/${ctx.runs}: ` +
              `${result.wallSeconds.toFixed(2)} s wall, ${mbPerSecond(payload.size, result.wallSeconds).toFixed(0)} MB/s` +
              (result.ownMbps === null ? '' : ` (own ${result.ownMbps.toFixed(0)} MB/s)`),
          );
        }
      } catch (err) {
        error = errorText(err);
        log(`peers: ${driver.label}, ${count} seeder(s) failed: ${error}`);
      }
      cases.push(summarise(count, runs, payload.size, error));
    }
    return { firstSeederSeconds, cases };
  } finally {
    await Promise.all([...seeders.map((s) => group.stop(s.child)), group.stop(tracker.child)]);
    await fs.rm(ctx.dir, { recursive: true, force: true });
  }
}

function summarise(seeders: number, runs: PeerRun[], size: number, error: string | undefined): PeerCase {
  const byWall = [...runs].sort((a, b) => a.wallSeconds - b.wallSeconds);
  const own = runs.map((r) => r.ownMbps).filter((v): v is number => v !== null);
  return {
    seeders,
    runs,
    wallMbps: median(runs.map((r) => mbPerSecond(size, r.wallSeconds))),
    ownMbps: own.length > 0 ? median(own) : null,
    typical: byWall[(byWall.length - 1) >> 1] ?? null,
    ...(error === undefined ? {} : { error }),
  };
}

async function downloadOnce(
  driver: ClientDriver,
  ctx: CaseContext,
  tracker: Tracker,
  torrentPath: string,
  seeders: readonly Seeder[],
): Promise<PeerRun> {
  const { group, payload, info } = ctx;
  const outDir = path.join(ctx.dir, 'get');
  await fs.rm(outDir, { recursive: true, force: true });
  await fs.mkdir(outDir);
  // Every seeder still listed as complete, and the page cache warm (this VM drops it within a minute).
  await tracker.waitForSeeders(seeders);
  await readThrough(payload.path);

  const port = await freePort();
  const cpu = measureDownloadCpu(
    tracker.child.pid,
    seeders.map((s) => s.child.pid),
  );
  const get = driver.startDownloader(group, torrentPath, outDir, port);
  let stopped = '';
  const abort = (why: string): void => {
    stopped ||= why;
    get.kill('SIGKILL');
  };
  // Generous: the whole file at 4 MB/s, plus a minute. A downloader left without a source stops early.
  const deadline = setTimeout(() => abort('it ran out of time'), 60_000 + payload.size / 4_000);
  const watch = setInterval(() => {
    const dead = [tracker.child, ...seeders.map((s) => s.child)].find((c) => !c.alive);
    if (dead) abort(`${dead.label} exited meanwhile: ${dead.describeOutput()}`);
  }, 250);
  try {
    const exit = await get.exited.finally(() => {
      clearTimeout(deadline);
      clearInterval(watch);
    });
    const wallSeconds = (exit.at - get.startedAt) / 1000;
    // Read at once: the downloader is the only child of this process that exits meanwhile, so the
    // growth of the reaped children's CPU time is its own.
    const { downloaderCpu, seedersCpu, trackerCpu, otherCpu } = cpu();
    if (stopped) throw new Error(`${get.label} was stopped: ${stopped}`);
    if (exit.code !== 0) {
      throw new Error(`${get.label} exited with ${exit.code ?? exit.signal}: ${get.describeOutput()}`);
    }

    const file = path.join(outDir, info.name);
    const stat = await fs.stat(file);
    if (stat.size !== payload.size)
      throw new Error(`${file} has ${stat.size} bytes, expected ${payload.size}`);
    // Neither client syncs its file; timed apart so the comparison with a download that does is fair.
    const flushStart = nowSeconds();
    const handle = await fs.open(file, 'r');
    await handle.sync().finally(() => handle.close());
    const flushSeconds = nowSeconds() - flushStart;
    const sha = await sha256File(file);
    if (sha !== payload.sha256)
      throw new Error(`${file}: SHA-256 ${sha} differs from the payload's ${payload.sha256}`);

    return {
      wallSeconds,
      ownMbps: driver.ownMbps(get, payload.size),
      flushSeconds,
      downloaderCpu,
      seedersCpu,
      trackerCpu,
      otherCpu,
    };
  } finally {
    await group.stop(get);
    await fs.rm(outDir, { recursive: true, force: true });
  }
}
