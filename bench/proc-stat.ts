/**
 * Memory and CPU figures of processes and of the machine, read from /proc (Linux only; null
 * elsewhere): resident memory and its high-water mark, and the machine's busy and iowait time.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

export interface Rss {
  /** Resident memory now (VmRSS), bytes. */
  rss: number;
  /** Its high-water mark since the start or the last reset (VmHWM), bytes. */
  hwm: number;
}

/** VmRSS and VmHWM of a live process, or null if they cannot be read (it has gone, or not Linux). */
export function readRss(pid: number | undefined): Rss | null {
  if (pid === undefined) return null;
  try {
    return parseRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM from the text of /proc/PID/status. */
export function parseRss(status: string): Rss | null {
  const kib = (field: string): number | null => {
    const match = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : null;
  };
  const rss = kib('VmRSS');
  const hwm = kib('VmHWM');
  return rss === null || hwm === null ? null : { rss, hwm };
}

/**
 * Resets a process's VmHWM to its current RSS (writing 5 to /proc/PID/clear_refs, Linux 4.0+), so
 * the next reading is the peak of what follows only. False if that is not possible.
 */
export function resetPeakRss(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface MachineCpu {
  /** Seconds of all cores busy: user, nice, system, irq, softirq, steal. */
  busy: number;
  /** Seconds of all cores idle waiting for I/O. */
  iowait: number;
}

/** The machine's CPU time since boot, from /proc/stat; null if it cannot be read. */
export function machineCpu(): MachineCpu | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [user, nice, system, , iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce<number>((a, v) => a + (v ?? 0), 0);
    return { busy: busy / CLOCK_TICKS_PER_SECOND, iowait: (iowait ?? 0) / CLOCK_TICKS_PER_SECOND };
  } catch {
    return null;
  }
}
