/**
 * The local BitTorrent tracker (a child process), and what it has heard: the last announce of each
 * peer, keyed by the peer's listening port (every peer here is on 127.0.0.1 with a port we chose).
 */
import { fileURLToPath } from 'node:url';
import type { Child, ProcessGroup } from '../processes.js';
import { GiveUp, waitFor } from '../util.js';

const TRACKER_CHILD = fileURLToPath(new URL('./tracker-child.js', import.meta.url));

interface Announce {
  event: string;
  left: number;
}

export class Tracker {
  private readonly peers = new Map<number, Announce>();
  private pending = '';
  private url = '';

  private constructor(readonly child: Child) {
    child.proc.stdout.on('data', (d: Buffer) => this.read(d.toString()));
  }

  /** The announce URL, http://127.0.0.1:PORT/announce. */
  get announce(): string {
    return this.url;
  }

  static async start(group: ProcessGroup, entry: string, label: string): Promise<Tracker> {
    const child = group.spawnNode(label, TRACKER_CHILD, [entry]);
    // Listen for announces from the start (Child keeps only a tail of the output).
    const tracker = new Tracker(child);
    const match = await child.waitForOutput(
      /tracker listening on (http:\/\/127\.0\.0\.1:\d+\/announce)/,
      30_000,
    );
    tracker.url = match[1]!;
    return tracker;
  }

  private read(text: string): void {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^announce (\w+) (\d+) (\S+)$/.exec(line);
      if (m) this.peers.set(Number(m[2]), { event: m[1]!, left: Number(m[3]) });
    }
  }

  /** True once the peer listening on `port` has announced that it has everything, and not left. */
  isSeeding(port: number): boolean {
    const last = this.peers.get(port);
    return last !== undefined && last.left === 0 && last.event !== 'stop' && last.event !== 'pause';
  }

  /**
   * Waits until every seeder (by listening port) is announced as complete, failing early if one of
   * them or the tracker dies.
   */
  async waitForSeeders(
    seeders: readonly { child: Child; port: number }[],
    timeoutMs = 60_000,
  ): Promise<void> {
    await waitFor(
      () => {
        const dead = [this.child, ...seeders.map((s) => s.child)].find((c) => !c.alive);
        if (dead) throw new GiveUp(`${dead.label} exited: ${dead.describeOutput()}`);
        return seeders.every((s) => this.isSeeding(s.port));
      },
      () =>
        `the tracker to hear from ${seeders
          .filter((s) => !this.isSeeding(s.port))
          .map((s) => s.child.label)
          .join(', ')} ` + 'as complete',
      timeoutMs,
      50,
    );
  }
}
