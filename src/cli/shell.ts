/**
 * The peer's interactive shell, in the spirit of the seeds: share, unshare, list, search, get,
 * status, peers, help, exit. Reads commands from a terminal or from piped input (a script); each
 * command finishes before the next one starts. A failing command prints one error line and the
 * shell goes on; with piped input the shell's exit status reports whether any command failed.
 */
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { errorMessage } from '../errors.js';
import type { PeerNode } from '../peer/peer-node.js';
import { fileIdHex } from '../storage/manifest.js';
import type { FileSummary } from '../wire/tracker-messages.js';
import { escapeForTerminal, escapeLinesForTerminal } from '../terminal-text.js';
import { describeDownload, formatBytes, formatRate, plural, shortId, table } from './format.js';
import { DownloadProgressDisplay } from './progress.js';

export interface ShellIO {
  input: Readable;
  output: Writable;
  /** A person at a terminal: show a prompt and progress bars. */
  interactive: boolean;
}

interface Command {
  usage: string;
  help: string;
  run: (arg: string) => Promise<void>;
}

export class PeerShell {
  private failures = 0;
  private exitRequested = false;
  private readonly commands: Record<string, Command>;
  private readonly progress: DownloadProgressDisplay;
  private readonly background = new Set<Promise<void>>();
  private rl: readline.Interface | null = null;
  /** A command is running: a notice must not redraw the prompt in the middle of its output. */
  private busy = false;

  constructor(
    private readonly node: PeerNode,
    private readonly io: ShellIO,
  ) {
    this.progress = new DownloadProgressDisplay(io.interactive ? io.output : null);
    this.commands = {
      share: {
        usage: 'share PATH',
        help: 'share a file or folder inside the peer folder',
        run: (a) => this.share(a),
      },
      unshare: { usage: 'unshare NAME|ID', help: 'stop sharing a file', run: (a) => this.unshare(a) },
      list: { usage: 'list', help: 'list every file in the catalog', run: () => this.list('') },
      search: { usage: 'search TEXT', help: 'list files whose name contains TEXT', run: (a) => this.list(a) },
      get: {
        usage: 'get NAME|ID [&]',
        help: 'download a file (with & in the background)',
        run: (a) => this.get(a),
      },
      status: {
        usage: 'status',
        help: 'shared files, downloads in progress, tracker',
        run: () => this.status(),
      },
      peers: { usage: 'peers', help: 'the peers in the swarms of our files', run: () => this.peers() },
      wait: {
        usage: 'wait',
        help: 'wait for background downloads to finish',
        run: () => this.waitForBackground(),
      },
      help: { usage: 'help', help: 'this list', run: async () => this.help() },
      exit: {
        usage: 'exit',
        help: 'leave the swarm and quit',
        run: async () => void (this.exitRequested = true),
      },
    };
  }

  /** Runs until `exit` or the end of input; resolves with the number of commands that failed. */
  async run(): Promise<number> {
    const rl = readline.createInterface({
      input: this.io.input,
      output: this.io.interactive ? this.io.output : undefined,
      terminal: this.io.interactive,
      prompt: 'swarmshare> ',
    });
    this.rl = rl;
    const detach = this.progress.attach(this.node);
    try {
      if (this.io.interactive) {
        this.say(`Type "help" for commands.`);
        rl.prompt();
      }
      for await (const line of rl) {
        this.busy = true;
        await this.execute(line);
        this.busy = false;
        if (this.exitRequested) break;
        if (this.io.interactive) rl.prompt();
      }
      // A script that ends with downloads running in the background waits for them.
      if (!this.exitRequested) await this.waitForBackground();
    } finally {
      detach();
      this.progress.stop();
      this.rl = null;
      rl.close();
    }
    return this.failures;
  }

  /** Runs one command line; errors are reported, never thrown. */
  async execute(line: string): Promise<void> {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    const space = trimmed.search(/\s/);
    const word = (space === -1 ? trimmed : trimmed.slice(0, space)).toLowerCase();
    const arg = space === -1 ? '' : trimmed.slice(space + 1).trim();
    const command = this.commands[word === 'quit' ? 'exit' : word];
    if (!command) {
      this.fail(`unknown command "${escapeForTerminal(word)}"; type "help"`);
      return;
    }
    try {
      await command.run(arg);
    } catch (err) {
      this.fail(errorMessage(err));
    }
  }

  /**
   * Prints something that happened on its own (the tracker came or went, a background download
   * ended) without garbling the line being typed: the prompt is redrawn after it.
   */
  notify(line: string): void {
    const rl = this.rl;
    if (!rl || !this.io.interactive || this.busy) {
      this.say(line);
      return;
    }
    readline.clearLine(this.io.output, 0);
    readline.cursorTo(this.io.output, 0);
    this.say(line);
    rl.prompt(true);
  }

  /** Every line the shell prints: escaped once more as a whole, so nothing can act on the terminal. */
  private say(text: string): void {
    this.progress.log(this.io.output, escapeLinesForTerminal(text));
  }

  private fail(message: string): void {
    this.failures++;
    this.say(`error: ${escapeForTerminal(message)}`);
  }

  private help(): void {
    const rows = Object.values(this.commands).map((c) => [c.usage, c.help]);
    this.say(table(['command', 'what it does'], rows));
  }

  private async share(path: string): Promise<void> {
    if (!path) throw new Error('usage: share PATH');
    const results = await this.node.share(path);
    if (results.length === 0) this.say('nothing to share there');
    for (const { file, result } of results) {
      const label = `${escapeForTerminal(file.manifest.name)} (${shortId(fileIdHex(file.manifest.id))}, ${formatBytes(file.manifest.size)})`;
      if (!result || !result.code)
        this.say(`shared ${label}${result ? '' : ' (tracker offline: announced when it returns)'}`);
      else this.fail(`tracker refused ${label}: ${result.message}`);
    }
  }

  private async unshare(nameOrId: string): Promise<void> {
    if (!nameOrId) throw new Error('usage: unshare NAME|ID');
    const file = await this.node.unshare(nameOrId);
    this.say(`unshared ${escapeForTerminal(file.manifest.name)}`);
  }

  private async list(query: string): Promise<void> {
    const { files, failures } = await this.node.list(query);
    for (const { label, error } of failures)
      this.say(`(${label} did not answer: ${escapeForTerminal(errorMessage(error))})`);
    if (files.length === 0) {
      this.say(query ? `no file matches "${escapeForTerminal(query)}"` : 'the catalog is empty');
      return;
    }
    this.say(catalogTable(files));
  }

  private async get(arg: string): Promise<void> {
    const inBackground = arg.endsWith('&');
    const nameOrId = inBackground ? arg.slice(0, -1).trim() : arg;
    if (!nameOrId) throw new Error('usage: get NAME|ID [&]');
    // A download stopped earlier (peer closed, killed, failed) resumes from its partial file.
    const task = this.node.get(nameOrId).then((result) => {
      const resumed =
        result.resumedBytes > 0 ? ` (resumed: ${formatBytes(result.resumedBytes)} were already here)` : '';
      this.notify(`${describeDownload(result)}${resumed}`);
    });
    if (!inBackground) return task;
    const tracked: Promise<void> = task
      .then(undefined, (err: unknown) => {
        this.failures++;
        this.notify(`error: get ${escapeForTerminal(nameOrId)}: ${escapeForTerminal(errorMessage(err))}`);
      })
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
    this.say(`downloading ${escapeForTerminal(nameOrId)} in the background ("status" shows progress)`);
  }

  private async waitForBackground(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  private async status(): Promise<void> {
    const node = this.node;
    this.say(`peer ${escapeForTerminal(node.describe())}`);
    for (const { label, connected } of node.trackerStates()) {
      this.say(`${label}: ${connected ? 'connected' : 'not connected (retrying)'}`);
    }
    this.say(`${plural(node.meshPeers().length, 'peer')} connected directly`);
    const shared = node.sharedFiles();
    this.say(`sharing ${plural(shared.length, 'file')}, uploaded ${formatBytes(node.uploadedBytes)}`);
    if (shared.length > 0) {
      this.say(
        table(
          ['id', 'name', 'size'],
          shared.map((f) => [
            shortId(fileIdHex(f.manifest.id)),
            escapeForTerminal(f.manifest.name),
            formatBytes(f.manifest.size),
          ]),
        ),
      );
    }
    const downloads = node.activeDownloads();
    if (downloads.length === 0) {
      this.say('no downloads in progress');
      return;
    }
    const rows = downloads.map(({ manifest, download }) => {
      const p = download.progress;
      const percent = p.size > 0 ? ((100 * p.bytes) / p.size).toFixed(1) : '100.0';
      return [
        escapeForTerminal(manifest.name),
        `${percent}%`,
        formatRate(p.bytesPerSecond),
        String(p.sources),
      ];
    });
    this.say(table(['downloading', 'done', 'speed', 'sources'], rows));
  }

  private async peers(): Promise<void> {
    const rows = await this.node.swarmPeers();
    if (rows.length === 0) {
      this.say('no other peers in the swarms of our files');
      return;
    }
    this.say(
      table(
        ['peer', 'id', 'address', 'file', 'chunks'],
        rows.map((p) => [
          escapeForTerminal(p.name),
          shortId(p.peerId),
          escapeForTerminal(p.address),
          escapeForTerminal(p.file),
          `${p.chunks}/${p.totalChunks}`,
        ]),
      ),
    );
  }
}

export function catalogTable(files: FileSummary[]): string {
  return table(
    ['id', 'name', 'size', 'chunks', 'sources'],
    files.map((f) => [
      shortId(fileIdHex(f.id)),
      escapeForTerminal(f.name),
      formatBytes(f.size),
      String(f.chunks),
      String(f.seeders),
    ]),
  );
}
