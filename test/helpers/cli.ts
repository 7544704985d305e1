/** Runs the real command line in child processes, as a user would. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { SWARM_SECRET_ENV } from '../../src/transport/swarm-secret.js';
import { waitFor } from './wait.js';

export const BIN = fileURLToPath(new URL('../../../bin/swarmshare.js', import.meta.url));

/**
 * The environment of every command run here: trackers keep their identity under XDG_STATE_HOME,
 * which points into a folder of this test process, never the user's own.
 */
const STATE_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmshare-test-state-'));
process.on('exit', () => fs.rmSync(STATE_HOME, { recursive: true, force: true }));
export const CLI_ENV: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0', XDG_STATE_HOME: STATE_HOME };
// A swarm secret where the tests run would make every command here a member of a private swarm.
delete CLI_ENV[SWARM_SECRET_ENV];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `swarmshare ...args` to completion, with optional stdin, extra environment, and a deadline. */
export function runCli(
  args: string[],
  options: { input?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...CLI_ENV, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `swarmshare ${args.join(' ')} did not finish in time\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running CLI process (tracker or peer) whose output is collected as it comes. */
export class CliProcess {
  stdout = '';
  stderr = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits for stdout to match, and returns the match. */
  async waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => pattern.exec(this.stdout),
      `output ${pattern} (stdout so far: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr.slice(-500))})`,
      timeoutMs,
    );
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Starts a CLI process (with extra environment, if given) that is killed when the test ends. */
export function startCli(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...CLI_ENV, ...env } });
  const proc = new CliProcess(child);
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc.exited;
  });
  return proc;
}

/** Starts `swarmshare tracker` on a free loopback port and returns its address. */
export async function startTrackerProcess(
  t: TestContext,
  extra: string[] = [],
): Promise<{ proc: CliProcess; address: string }> {
  const proc = startCli(t, ['tracker', '--host', '127.0.0.1', '--port', '0', ...extra]);
  const match = await proc.waitForOutput(/listening on (\S+)/);
  return { proc, address: match[1]! };
}
