/**
 * Child processes of the benchmark (ours and the other clients'). Every process is spawned through a
 * `ProcessGroup`, which kills whatever is still alive when the group is stopped, and (as a last
 * resort) when this process exits.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GiveUp, sleep, waitFor } from './util.js';

/** The real command line, `<repo>/bin/swarmshare.js` (this file runs as `<repo>/dist/bench/processes.js`). */
export const BIN = fileURLToPath(new URL('../../bin/swarmshare.js', import.meta.url));

const OUTPUT_KEPT = 64 * 1024;

/** A running child whose output is collected (the last 64 KiB of each stream). */
export class Child {
  stdout = '';
  stderr = '';
  readonly startedAt = performance.now();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  constructor(
    readonly label: string,
    readonly proc: ChildProcessWithoutNullStreams,
  ) {
    proc.stdout.on('data', (d: Buffer) => (this.stdout = keepTail(this.stdout + d.toString())));
    proc.stderr.on('data', (d: Buffer) => (this.stderr = keepTail(this.stderr + d.toString())));
    // A child that exits while we write to its stdin must not crash the benchmark.
    proc.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() }));
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits until stdout matches `pattern`; fails early if the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        const match = pattern.exec(this.stdout);
        if (match) return match;
        if (!this.alive) throw new GiveUp(`${this.label} exited: ${this.describeOutput()}`);
        return null;
      },
      `${this.label} to print ${pattern}`,
      timeoutMs,
      25,
    );
  }

  describeOutput(): string {
    return `stdout ${JSON.stringify(this.stdout.slice(-400))}, stderr ${JSON.stringify(this.stderr.slice(-400))}`;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(signal);
  }
}

function keepTail(text: string): string {
  return text.length > OUTPUT_KEPT ? text.slice(-OUTPUT_KEPT) : text;
}

export class ProcessGroup {
  private readonly children = new Set<Child>();
  private readonly onExit = (): void => {
    for (const child of this.children) child.kill('SIGKILL');
  };

  /** Trackers keep their identity under XDG_STATE_HOME: a folder of this run, not the user's. */
  private readonly stateHome = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmshare-bench-state-'));

  constructor() {
    process.on('exit', this.onExit);
    process.on('exit', () => fs.rmSync(this.stateHome, { recursive: true, force: true }));
  }

  /** Spawns `command ...args` (in `cwd` if given) with stdin, stdout and stderr as pipes. */
  spawn(label: string, command: string, args: readonly string[], cwd?: string): Child {
    const proc = spawn(command, args, {
      cwd,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', XDG_STATE_HOME: this.stateHome },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const child = new Child(label, proc);
    this.children.add(child);
    const forget = (): void => void this.children.delete(child);
    child.exited.then(forget, forget);
    return child;
  }

  /** Spawns `node ...nodeArgs <script> ...args` (nodeArgs: e.g. `--import` and a preload). */
  spawnNode(label: string, script: string, args: readonly string[], nodeArgs: readonly string[] = []): Child {
    return this.spawn(label, process.execPath, [...nodeArgs, script, ...args]);
  }

  /** Spawns `node ...nodeArgs bin/swarmshare.js ...args`. */
  swarmshare(label: string, args: readonly string[], nodeArgs: readonly string[] = []): Child {
    return this.spawnNode(label, BIN, args, nodeArgs);
  }

  /**
   * Ends a child politely (stdin closed, which ends the other clients' wrappers, then SIGTERM), and with SIGKILL if it is still there after
   * `graceMs`. Resolves once it has exited.
   */
  async stop(child: Child, graceMs = 3000): Promise<void> {
    if (!child.alive) return;
    child.proc.stdin.end();
    child.kill('SIGTERM');
    const exited = child.exited.then(
      () => true,
      () => true,
    );
    if (!(await Promise.race([exited, sleep(graceMs).then(() => false)]))) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** Stops every child still alive, all at once. */
  async stopAll(graceMs = 3000): Promise<void> {
    await Promise.all([...this.children].map((child) => this.stop(child, graceMs)));
    process.off('exit', this.onExit);
  }
}
