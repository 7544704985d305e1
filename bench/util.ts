/**
 * Small helpers shared by the benchmark modules: units, medians, polling with a deadline, files, and
 * CPU time read from /proc (Linux only; null elsewhere).
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';

export const MiB = 1024 * 1024;
/** Throughput is reported in MB/s, MB = 10^6 bytes. */
export const MB = 1_000_000;

export function mbPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / MB / seconds : 0;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The value at quantile q (0..1) of an already sorted array, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function nowSeconds(): number {
  return performance.now() / 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown from a `waitFor` check to stop waiting at once (e.g. the process waited on has died). */
export class GiveUp extends Error {}

/**
 * Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws, naming
 * `what` and the last error seen). A bounded loop: never waits forever. A check that throws
 * `GiveUp` ends the wait with that error; other errors are retried.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string | (() => string),
  timeoutMs: number,
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const subject = typeof what === 'string' ? what : what();
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${subject}${last ? `: ${errorText(last)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Hard-links `from` as `to` (replacing it), or copies it where a link is not possible. */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await fs.rm(to, { force: true });
  try {
    await fs.link(from, to);
  } catch {
    await fs.copyFile(from, to);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const CLOCK_TICKS_PER_SECOND = 100;

/** Fields of /proc/PID/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) used so far by a live process, or null if it cannot be read. */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const f = statFields(pid);
  // After the name: state(3) ... utime(14) stime(15), i.e. indices 11 and 12 here.
  if (!f) return null;
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND;
}

/** User and system CPU seconds. */
export interface CpuTimes {
  user: number;
  system: number;
}

/**
 * CPU time of this process's children that have exited and been reaped (cutime, cstime). The
 * difference across one child's life is that child's CPU time, if no other child exits meanwhile.
 */
export function reapedChildrenCpu(): CpuTimes | null {
  const f = statFields('self');
  if (!f) return null;
  return { user: Number(f[13]) / CLOCK_TICKS_PER_SECOND, system: Number(f[14]) / CLOCK_TICKS_PER_SECOND };
}

/**
 * CPU seconds the whole machine has spent busy (every core; user, nice, system, irq, softirq and
 * steal, not idle or iowait) since boot, from /proc/stat; null if it cannot be read.
 */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce<number>((a, v) => a + (v ?? 0), 0);
    return busy / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU seconds this process has used so far. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

export function difference(after: number | null, before: number | null): number | null {
  return after === null || before === null ? null : after - before;
}

/** The sum, or null if any term is unknown. */
export function sumOrNull(values: readonly (number | null)[]): number | null {
  return values.some((v) => v === null) ? null : values.reduce<number>((a, v) => a + v!, 0);
}

/** Where one timed download's CPU went, in CPU seconds (null where it cannot be read: off Linux). */
export interface DownloadCpu {
  /** The downloader: the only child of this process to exit during the download. */
  downloaderCpu: number | null;
  /** The part of downloaderCpu spent in the kernel. */
  downloaderSystemCpu: number | null;
  trackerCpu: number | null;
  /** All seeders together. */
  seedersCpu: number | null;
  /** The rest of the machine (other people's processes, kernel threads): not ours, not this process. */
  otherCpu: number | null;
}

/**
 * Starts measuring the CPU of one download: call before spawning the downloader, and call the
 * function returned as soon as it has exited (before any other child of this process exits).
 */
export function measureDownloadCpu(
  trackerPid: number | undefined,
  seederPids: readonly (number | undefined)[],
): () => DownloadCpu {
  const cpuOf = (): (number | null)[] => [trackerPid, ...seederPids].map(processCpuSeconds);
  const othersBefore = cpuOf();
  const reapedBefore = reapedChildrenCpu();
  const machineBefore = machineBusySeconds();
  const benchBefore = ownCpuSeconds();
  return () => {
    const reapedAfter = reapedChildrenCpu();
    const othersAfter = cpuOf();
    const machine = difference(machineBusySeconds(), machineBefore);
    const bench = ownCpuSeconds() - benchBefore;
    const deltas = othersAfter.map((after, i) => difference(after, othersBefore[i] ?? null));
    const reaped = reapedAfter && reapedBefore;
    const downloaderCpu = reaped
      ? reapedAfter.user + reapedAfter.system - reapedBefore.user - reapedBefore.system
      : null;
    const trackerCpu = deltas[0] ?? null;
    const seedersCpu = sumOrNull(deltas.slice(1));
    const ours = sumOrNull([downloaderCpu, trackerCpu, seedersCpu]);
    return {
      downloaderCpu,
      downloaderSystemCpu: reaped ? reapedAfter.system - reapedBefore.system : null,
      trackerCpu,
      seedersCpu,
      otherCpu: machine === null || ours === null ? null : Math.max(0, machine - ours - bench),
    };
  };
}
