/** Test helpers shared by every suite: temp folders with teardown, and polling with a deadline. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp folder, removed when the test ends (teardown registered before any work). */
export async function tempDir(t: TestContext, prefix = 'swarmshare-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Polls `check` until it returns a truthy value (which is returned) or the deadline passes.
 * Use this instead of sleeps: it waits as long as needed and no longer.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Writes `size` bytes of deterministic pseudo-random content (a seeded xorshift) to `file`. */
export async function writeRandomFile(file: string, size: number, seed = 1): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    let state = seed >>> 0 || 1;
    const block = Buffer.allocUnsafe(1 << 20);
    for (let written = 0; written < size;) {
      const n = Math.min(block.length, size - written);
      for (let i = 0; i < n; i += 4) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        state >>>= 0;
        block.writeUInt32LE(state, i);
      }
      await handle.write(block, 0, n, written);
      written += n;
    }
  } finally {
    await handle.close();
  }
}
