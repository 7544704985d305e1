/**
 * The long fuzz run, `npm run fuzz [-- --seconds 60] [--seed N] [--only NAME]`: every property of the
 * default-run suite (test/fuzz/decoders.test.ts), in batches with fresh seeds, for a share of the time
 * given; then, per decoder, the inputs tried and the failures. Exits 1 on any failure, printing
 * fast-check's report (seed, path, counterexample) for each.
 *
 * The properties run in a worker thread: a decode that hangs cannot be interrupted from within, so the
 * main thread stops the worker when it has reported no progress for HANG_MS and reports a hang in the
 * property it was running.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { allProperties, decoderNames } from './targets.js';

interface Options {
  seconds: number;
  seed: number;
  only: string | undefined;
}

type Report =
  | { kind: 'start'; property: number }
  | { kind: 'progress'; property: number; inputs: number }
  | { kind: 'failure'; property: number; report: string }
  | { kind: 'done' };

/** A batch of inputs that takes longer than this is not made bigger. */
const BATCH_TARGET_MS = 250;
/** No progress for this long: the worker is stuck in one input. */
const HANG_MS = 30_000;

function parseOptions(args: string[]): Options {
  const options: Options = { seconds: 60, seed: Date.now() % 2 ** 31, only: undefined };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = args[i + 1];
    if (arg === '--seconds' && value !== undefined) options.seconds = Number(value);
    else if (arg === '--seed' && value !== undefined) options.seed = Number(value);
    else if (arg === '--only' && value !== undefined) options.only = value;
    else {
      console.error(`usage: npm run fuzz -- [--seconds N] [--seed N] [--only DECODER]   (unknown: ${arg})`);
      process.exit(2);
    }
    i++;
  }
  if (!(options.seconds > 0) || !Number.isInteger(options.seed)) {
    console.error('--seconds must be positive and --seed an integer');
    process.exit(2);
  }
  return options;
}

function selected(only: string | undefined) {
  return allProperties().filter((p) => !only || p.decoder.toLowerCase().includes(only.toLowerCase()));
}

/** Worker side: runs each property for its share of the time, reporting as it goes. */
function fuzz(options: Options, report: (message: Report) => void): void {
  const properties = selected(options.only);
  const shareMs = (options.seconds * 1000) / properties.length;
  let seed = options.seed;
  properties.forEach((property, index) => {
    report({ kind: 'start', property: index });
    const deadline = performance.now() + shareMs;
    let batch = 50;
    while (performance.now() < deadline) {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      const started = performance.now();
      const outcome = property.check({ numRuns: batch, seed });
      report({ kind: 'progress', property: index, inputs: outcome.numRuns });
      if (outcome.failed) {
        report({ kind: 'failure', property: index, report: outcome.report ?? 'failed' });
        break;
      }
      const took = performance.now() - started;
      const left = deadline - performance.now();
      // Bigger batches while they are quick, never one that would overrun the share by much.
      if (took < BATCH_TARGET_MS / 2) batch *= 2;
      batch = Math.max(1, Math.min(batch, Math.floor((batch * left) / Math.max(took, 1)) + 1));
    }
  });
  report({ kind: 'done' });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const properties = selected(options.only);
  if (properties.length === 0) {
    console.error(`no decoder matches ${options.only}`);
    process.exit(2);
  }
  console.log(
    `fuzzing ${decoderNames(properties).length} decoders (${properties.length} properties) for ${options.seconds} s, seed ${options.seed}`,
  );
  const inputs = properties.map(() => 0);
  const failures = properties.map(() => 0);
  const reports: string[] = [];
  let current = -1;
  const started = performance.now();

  const finished = await new Promise<'done' | 'hang' | 'crash'>((resolve) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: options });
    let lastProgress = performance.now();
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgress <= HANG_MS) return;
      clearInterval(watchdog);
      void worker.terminate();
      resolve('hang');
    }, 1_000);
    worker.on('message', (message: Report) => {
      lastProgress = performance.now();
      if (message.kind === 'start') {
        current = message.property;
      } else if (message.kind === 'progress') {
        inputs[message.property]! += message.inputs;
      } else if (message.kind === 'failure') {
        failures[message.property]! += 1;
        const property = properties[message.property]!;
        reports.push(`${property.decoder}: ${property.name}\n${message.report}`);
      } else {
        clearInterval(watchdog);
        resolve('done');
      }
    });
    worker.on('error', (err) => {
      clearInterval(watchdog);
      reports.push(`the fuzz worker crashed: ${err.stack ?? String(err)}`);
      resolve('crash');
    });
  });
  if (finished === 'hang' && current >= 0) {
    const property = properties[current]!;
    failures[current]! += 1;
    reports.push(`${property.decoder}: ${property.name}\nno progress for ${HANG_MS / 1000} s: a hang`);
  }

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const rows = decoderNames(properties).map((decoder) => {
    const mine = properties.map((p, i) => i).filter((i) => properties[i]!.decoder === decoder);
    return {
      decoder,
      properties: mine.length,
      inputs: mine.reduce((sum, i) => sum + inputs[i]!, 0),
      failures: mine.reduce((sum, i) => sum + failures[i]!, 0),
    };
  });
  const total = {
    decoder: 'total',
    properties: properties.length,
    inputs: inputs.reduce((a, b) => a + b, 0),
    failures: failures.reduce((a, b) => a + b, 0) + (finished === 'crash' ? 1 : 0),
  };
  const width = Math.max(...rows.map((r) => r.decoder.length), 'decoder'.length);
  const line = (r: typeof total) =>
    `${r.decoder.padEnd(width)}  ${String(r.properties).padStart(10)}  ${r.inputs.toLocaleString('en-US').padStart(12)}  ${String(r.failures).padStart(8)}`;
  console.log(`\n${'decoder'.padEnd(width)}  properties        inputs  failures`);
  for (const row of rows) console.log(line(row));
  console.log(line(total));
  console.log(`\n${total.inputs.toLocaleString('en-US')} inputs in ${seconds} s, seed ${options.seed}`);
  for (const report of reports) console.error(`\nFAILED ${report}`);
  process.exitCode = total.failures > 0 || finished !== 'done' ? 1 : 0;
}

if (isMainThread) {
  await main();
} else {
  fuzz(workerData as Options, (message) => parentPort!.postMessage(message));
}
