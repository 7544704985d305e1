/**
 * Preloaded into a child by the memory benchmark (`node --import <this> bin/swarmshare.js ...`):
 * as the process exits, it writes to stderr its peak resident memory (VmHWM, Linux only) and the
 * largest V8 heap and Buffer memory it saw (sampled every 100 ms), so nothing between the last
 * outside sample and the exit is missed, and a peak can be told apart: JavaScript objects or bytes.
 * The lines are parsed in memory.ts (which must not import this file: it would report itself).
 */
import { readFileSync, writeSync } from 'node:fs';

const peaks = { heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };

function sample(): void {
  const usage = process.memoryUsage();
  for (const key of Object.keys(peaks) as (keyof typeof peaks)[])
    peaks[key] = Math.max(peaks[key], usage[key]);
}

// Unref'd: the sampling must not keep the process alive.
setInterval(sample, 100).unref();

process.on('exit', () => {
  sample();
  // Synchronous writes: an exit handler cannot wait for a stream.
  writeSync(2, `\n[bench] memory ${JSON.stringify(peaks)}\n`);
  try {
    const kib = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib) writeSync(2, `[bench] VmHWM ${kib} kB\n`);
  } catch {
    // Not Linux, or /proc not mounted: the samples taken from outside are all there is.
  }
});
