/** `swarmshare demo` (also `npm start`): the demo swarm, with nothing to configure. */
import { runDemo } from '../../demo/demo.js';

export interface DemoCommandOptions {
  size: number;
  keep?: boolean;
}

export async function runDemoCommand(options: DemoCommandOptions): Promise<void> {
  await runDemo({
    sizeMiB: options.size,
    keep: options.keep,
    out: process.stdout,
    progressStream: process.stderr,
  });
}
