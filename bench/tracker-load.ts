/**
 * Tracker throughput: simulated peer sessions (the real TrackerClient, in this process) against a
 * tracker in its own process.
 *
 * - setup: every session connects, handshakes and registers, all at once;
 * - HAVE: every session registers every chunk of one shared file, one HAVE request per chunk
 *   (a fixed count: what that many downloaders finishing the file would send), each session
 *   starting at a different chunk and keeping several requests in flight;
 * - LOCATE: every session asks for the file's holders (a reply naming every session) for a fixed
 *   duration.
 */
import { createHash } from 'node:crypto';
import { chunkSizeFor, computeFileId, type Manifest } from '../src/storage/manifest.js';
import { TrackerClient } from '../src/tracker/client.js';
import { encodeTrackerMessage } from '../src/wire/tracker-messages.js';
import type { ProcessGroup } from './processes.js';
import { difference, machineBusySeconds, MiB, nowSeconds, processCpuSeconds, quantile } from './util.js';

export interface TrackerLoadOptions {
  group: ProcessGroup;
  sessions: number;
  /** Size of the shared file; its chunk count (from chunkSizeFor) sets the HAVE request count. */
  fileSize: number;
  /** Requests each session keeps in flight. */
  haveInFlight: number;
  locateInFlight: number;
  locateSeconds: number;
  log: (line: string) => void;
}

export interface PhaseResult {
  requests: number;
  seconds: number;
  perSecond: number;
  /** Request latency as the client sees it (ms). */
  p50Ms: number;
  p99Ms: number;
  /** Share of one core the tracker process used during the phase (null off Linux). */
  trackerCores: number | null;
  /** Share of one core this (load-generating) process used. */
  clientCores: number;
  /** Cores the machine spent on anything else meanwhile (null off Linux). */
  otherCores: number | null;
}

export interface TrackerLoadResult {
  sessions: number;
  chunks: number;
  chunkSize: number;
  setupSeconds: number;
  have: PhaseResult;
  locate: PhaseResult & { replyBytes: number; holders: number };
}

/** A manifest over made-up chunk hashes: valid (its id proves its hashes), with no content behind it. */
export function fakeManifest(name: string, size: number): Manifest {
  const chunkSize = chunkSizeFor(size);
  const chunks = Math.ceil(size / chunkSize);
  const hashes = Buffer.alloc(chunks * 32);
  for (let i = 0; i < chunks; i++) {
    createHash('sha256')
      .update(`${name}:${i}`)
      .digest()
      .copy(hashes, i * 32);
  }
  return { id: computeFileId(size, chunkSize, hashes), name, size, chunkSize, hashes };
}

/** The load `npm run bench` applies. */
export const DEFAULT_TRACKER_LOAD = {
  sessions: 100,
  fileSize: 512 * MiB,
  haveInFlight: 8,
  locateInFlight: 2,
  locateSeconds: 3,
} as const;

/** The HAVE phase is a fixed count, but gives up (and fails the benchmark) after this long. */
const HAVE_DEADLINE_SECONDS = 60;

/** Starts `swarmshare tracker` in its own process, loads it, and stops it. */
export async function measureTracker(options: TrackerLoadOptions): Promise<TrackerLoadResult> {
  const { group } = options;
  const tracker = group.swarmshare('tracker', ['tracker', '--host', '127.0.0.1', '--port', '0']);
  try {
    const listening = await tracker.waitForOutput(/swarmshare tracker listening on (\S+):(\d+)/, 30_000);
    return await loadTracker({ host: listening[1]!, port: Number(listening[2]) }, tracker.pid, options);
  } finally {
    await group.stop(tracker);
  }
}

/** The load itself, against a tracker already running at `endpoint` (process `trackerPid`). */
export async function loadTracker(
  endpoint: { host: string; port: number },
  trackerPid: number | undefined,
  options: Omit<TrackerLoadOptions, 'group'>,
): Promise<TrackerLoadResult> {
  const { log } = options;
  const clients: TrackerClient[] = [];
  try {
    const manifest = fakeManifest('tracker-load.bin', options.fileSize);
    const chunks = manifest.hashes.length / 32;
    const owner = await TrackerClient.connect(endpoint);
    clients.push(owner);
    await owner.register({ name: 'owner', port: 1 });
    const [announced] = await owner.announce([manifest]);
    if (!announced || announced.code !== '') {
      throw new Error(`the tracker refused the load manifest: ${announced?.code} ${announced?.message}`);
    }

    // Setup: every session at once.
    const start = nowSeconds();
    const sessions = await Promise.all(
      Array.from({ length: options.sessions }, async (_, i) => {
        const client = await TrackerClient.connect(endpoint);
        clients.push(client);
        await client.register({ name: `load${i}`, port: 10_000 + i });
        return client;
      }),
    );
    const setupSeconds = nowSeconds() - start;
    log(`tracker load: ${sessions.length} sessions registered in ${setupSeconds.toFixed(2)} s`);

    // HAVE: every chunk from every session, one request per chunk.
    const haveDeadline = nowSeconds() + HAVE_DEADLINE_SECONDS;
    const have = await phase(trackerPid, sessions, options.haveInFlight, (session) => {
      const first = Math.floor((session * chunks) / sessions.length);
      let sent = 0;
      return () => {
        if (sent >= chunks || nowSeconds() > haveDeadline) return null;
        const index = (first + sent++) % chunks;
        return () => sessions[session]!.have(manifest.id, [index]);
      };
    });
    const listing = await owner.list('tracker-load.bin', 1);
    const seeders = listing.files[0]?.seeders ?? 0;
    if (have.requests !== sessions.length * chunks || seeders !== sessions.length + 1) {
      throw new Error(
        `HAVE load: ${have.requests} requests done of ${sessions.length * chunks} ` +
          `(in at most ${HAVE_DEADLINE_SECONDS} s), ` +
          `${seeders} seeders listed of ${sessions.length + 1}`,
      );
    }
    log(`tracker load: ${have.requests} HAVE in ${have.seconds.toFixed(2)} s`);

    // LOCATE: for a fixed time.
    const location = await owner.locate(manifest.id);
    const replyBytes = encodeTrackerMessage({ type: 'location', req: 0, ...location }).length;
    const until = nowSeconds() + options.locateSeconds;
    const locate = await phase(trackerPid, sessions, options.locateInFlight, (session) => () => {
      if (nowSeconds() >= until) return null;
      return () => sessions[session]!.locate(manifest.id);
    });
    log(`tracker load: ${locate.requests} LOCATE in ${locate.seconds.toFixed(2)} s`);

    return {
      sessions: sessions.length,
      chunks,
      chunkSize: manifest.chunkSize,
      setupSeconds,
      have,
      locate: { ...locate, replyBytes, holders: location.holders.length },
    };
  } finally {
    for (const client of clients) client.close();
  }
}

/**
 * Runs `inFlight` workers per session; each worker takes the next request from its session's
 * source (null: the session is done) until none is left. Every request must succeed.
 */
async function phase(
  trackerPid: number | undefined,
  sessions: readonly TrackerClient[],
  inFlight: number,
  sourceFor: (session: number) => () => (() => Promise<unknown>) | null,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const trackerBefore = processCpuSeconds(trackerPid);
  const clientBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  const start = nowSeconds();
  await Promise.all(
    sessions.flatMap((_, session) => {
      const next = sourceFor(session);
      return Array.from({ length: inFlight }, async () => {
        for (let request = next(); request; request = next()) {
          const sent = performance.now();
          await request();
          latencies.push(performance.now() - sent);
        }
      });
    }),
  );
  const seconds = nowSeconds() - start;
  const trackerCpu = difference(processCpuSeconds(trackerPid), trackerBefore);
  const client = process.cpuUsage(clientBefore);
  const machine = difference(machineBusySeconds(), machineBefore);
  const clientCores = (client.user + client.system) / 1e6 / seconds;
  const trackerCores = trackerCpu === null ? null : trackerCpu / seconds;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    trackerCores,
    clientCores,
    otherCores:
      machine === null || trackerCores === null
        ? null
        : Math.max(0, machine / seconds - trackerCores - clientCores),
  };
}
