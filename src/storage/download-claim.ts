/**
 * One download of a file into a folder at a time, across processes. Two processes downloading one
 * file into one folder would share its temp file and its state, and the first to finish would take
 * the temp file from under the other. So a download first claims its temp file: a claim file beside
 * it, created atomically (a hard link, which fails if the name is taken) and naming its holder (host,
 * pid, and a random token). A second process is refused with ERR_IN_PROGRESS, saying who holds it.
 *
 * A claim whose holder is gone (killed, crashed, power lost) is stale and taken over: it names this
 * host and a pid that no live process has, or this very process (pids repeat across restarts, in
 * containers especially; claims within one process are kept apart by PartialFile). Taking over is
 * done under a second, short-lived lock beside the claim, by one process at a time, which removes
 * the claim only if it is still the one judged stale: several processes finding one stale claim at
 * once leave exactly one holder. A claim made on another host (a folder shared over the network) is
 * never judged stale: the error says which file to remove if its holder is gone.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import { SwarmError, errorCode } from '../errors.js';
import { readSmallFile, writeFileAtomic } from './atomic-file.js';

/** A claim held by this process: release it once the download is over (more calls do nothing). */
export interface DownloadClaim {
  release(): Promise<void>;
}

interface ClaimHolder {
  host: string;
  pid: number;
  token: string;
}

/** A claim file is a line of JSON; anything longer is not one of ours. */
const MAX_CLAIM_FILE_BYTES = 1024;
/** Tries to create the claim, each after a stale one was removed or vanished. */
const CLAIM_ATTEMPTS = 3;
/** A takeover takes milliseconds; a takeover lock this old was left by a process that died in one. */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Claims `claimPath` for this process, taking over a stale claim. ERR_IN_PROGRESS if a live process
 * holds it; `what` names the download in that error.
 */
export async function claimDownload(claimPath: string, what: string): Promise<DownloadClaim> {
  const mine: ClaimHolder = { host: os.hostname(), pid: process.pid, token: randomBytes(8).toString('hex') };
  const content = `${JSON.stringify(mine)}\n`;
  let holder: ClaimHolder | null = null;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    if (await writeFileAtomic(claimPath, content, { overwrite: false, mode: 0o600 })) {
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          // Only our own claim is removed, never one that took ours over.
          if ((await readClaim(claimPath)) === content) await fs.rm(claimPath, { force: true });
        },
      };
    }
    const held = await readClaim(claimPath);
    if (held === null) continue; // released meanwhile: try again
    holder = parseHolder(held);
    if (holder && !isStale(holder)) break;
    holder = null; // stale: whoever takes it over is the holder to name
    if (!(await takeOver(claimPath, held))) break;
  }
  const by = holder ? `process ${holder.pid} on ${holder.host}` : 'another process';
  throw new SwarmError(
    'ERR_IN_PROGRESS',
    `${what} is already being downloaded into this folder by ${by}; wait for it to end ` +
      `(if no such download runs, remove ${claimPath})`,
  );
}

/**
 * The claim file's text, or null if there is none. A file that cannot be a claim (not a regular file,
 * or too large) reads as '', which names no holder: it is taken as stale.
 */
async function readClaim(claimPath: string): Promise<string | null> {
  try {
    return (await readSmallFile(claimPath, MAX_CLAIM_FILE_BYTES))?.toString('utf8') ?? null;
  } catch (err) {
    if (err instanceof SwarmError) return '';
    throw err;
  }
}

/** The holder a claim names, or null for text that is not a claim (taken as stale). */
function parseHolder(text: string): ClaimHolder | null {
  try {
    const value = JSON.parse(text) as Partial<ClaimHolder> | null;
    if (
      value &&
      typeof value.host === 'string' &&
      Number.isSafeInteger(value.pid) &&
      (value.pid as number) > 0 &&
      typeof value.token === 'string'
    ) {
      return value as ClaimHolder;
    }
  } catch {
    // not JSON
  }
  return null;
}

/** Gone: this host's, and its pid is ours (see the header) or no process's. Another host's: never. */
function isStale(holder: ClaimHolder): boolean {
  if (holder.host !== os.hostname()) return false;
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists, as another user's.
    return errorCode(err) === 'ESRCH';
  }
}

/**
 * Removes the claim judged stale (whose text is `judged`), if it is still there, under the takeover
 * lock. Returns false if another process is taking it over now: that one will hold it.
 */
async function takeOver(claimPath: string, judged: string): Promise<boolean> {
  const lockPath = `${claimPath}.takeover`;
  const lock = `${JSON.stringify({ pid: process.pid, token: randomBytes(8).toString('hex') })}\n`;
  if (!(await writeFileAtomic(lockPath, lock, { overwrite: false, mode: 0o600 }))) {
    const age = await fs.stat(lockPath).then(
      (stat) => Date.now() - stat.mtimeMs,
      () => Infinity,
    );
    if (age < TAKEOVER_STALE_MS) return false;
    await fs.rm(lockPath, { force: true });
    if (!(await writeFileAtomic(lockPath, lock, { overwrite: false, mode: 0o600 }))) return false;
  }
  try {
    // Nobody else removes a claim now, and nobody makes one while it is there: if it is still the
    // stale one, it goes. If it changed, the next attempt judges the new one.
    if ((await readClaim(claimPath)) === judged) await fs.rm(claimPath, { force: true });
    return true;
  } finally {
    if ((await readClaim(lockPath)) === lock) await fs.rm(lockPath, { force: true });
  }
}
