/** What the other clients' benchmark takes and gives back. */
import type { Child, ProcessGroup } from '../processes.js';

/** The benchmark's payload: already on disk, with its SHA-256 (hex). */
export interface Payload {
  path: string;
  size: number;
  sha256: string;
}

export interface PeerClientOptions {
  /** A folder this module may fill (a subfolder per client, removed afterwards). */
  workDir: string;
  /** Timed downloads per case; the median is reported. Default 3. */
  runs?: number;
  /** Seeders per case, e.g. [1, 4]. Default [1]. */
  seederCounts?: readonly number[];
  /** Which clients to run. Default both. */
  clients?: readonly ClientName[];
  /** Where webtorrent and bittorrent-tracker are installed. Default `<repo>/bench/.peer-clients`. */
  cacheDir?: string;
  log?: (line: string) => void;
}

export type ClientName = 'aria2' | 'webtorrent';

export interface PeerRun {
  /** The downloader process from spawn to exit. */
  wallSeconds: number;
  /** The speed the downloader reports itself (aria2's average; webtorrent: adding to done), MB/s. */
  ownMbps: number | null;
  /** fsync of the downloaded file after the downloader exited (neither client syncs it). */
  flushSeconds: number;
  /** CPU seconds (null off Linux): the downloader, all seeders together, the tracker. */
  downloaderCpu: number | null;
  seedersCpu: number | null;
  trackerCpu: number | null;
  /** CPU seconds the rest of the machine used meanwhile (other people's work, kernel threads). */
  otherCpu: number | null;
}

export interface PeerCase {
  seeders: number;
  runs: PeerRun[];
  /** Medians over the runs (NaN if none succeeded). */
  wallMbps: number;
  ownMbps: number | null;
  /** The run whose wall time is the median, for the CPU figures. */
  typical: PeerRun | null;
  /** Why the case stopped early, if it did (the runs before the failure are kept). */
  error?: string;
}

export interface PeerClientResult {
  client: ClientName;
  /** e.g. "aria2 1.36.0"; the name alone if the client never ran. */
  label: string;
  /** Bytes downloaded per run (the payload's size). */
  payloadSize: number;
  /** Set when the client was not run at all (install failed, tracker missing...). */
  notRun?: string;
  /** How it was run, for the report. */
  setup: string;
  /** Seconds spent installing it in this run (0 when it was already there), null if not attempted. */
  installSeconds: number | null;
  /** Hashing the payload into .torrent pieces (shared by the clients). */
  torrentSeconds: number | null;
  /** From spawning the first seeder to the tracker counting it as complete. */
  firstSeederSeconds: number | null;
  cases: PeerCase[];
}

/** How one client is started as a seeder and as a downloader. */
export interface ClientDriver {
  name: ClientName;
  label: string;
  setup: string;
  /**
   * Spawns a seeder whose folder `dir` already holds the payload, listening on 127.0.0.1:`port`
   * (the tracker knows it by that port).
   */
  startSeeder(group: ProcessGroup, label: string, torrentFile: string, dir: string, port: number): Child;
  /** Spawns a downloader writing into `dir`; it must exit once the file is complete. */
  startDownloader(group: ProcessGroup, torrentFile: string, dir: string, port: number): Child;
  /** The downloader's own speed from its output, MB/s, or null if it gave none. */
  ownMbps(downloader: Child, size: number): number | null;
}
