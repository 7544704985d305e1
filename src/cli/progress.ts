/**
 * Progress bars for downloads (cli-progress), drawn on a terminal only: on a pipe or a file they
 * would be noise, so there the display stays silent and callers print plain result lines.
 */
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';
import type { ActiveDownload, PeerNode } from '../peer/peer-node.js';
import { escapeForTerminal } from '../terminal-text.js';
import { formatBytes, formatRate, formatSeconds } from './format.js';

interface BarPayload {
  name: string;
  done: string;
  size: string;
  speed: string;
  etaText: string;
  sources: number;
  /** ", 2 banned" once sources were banned, else empty. */
  banned: string;
}

/** A bar's label: the start of the file's name. */
const LABEL_CHARS = 28;
const FORMAT =
  '{name} |{bar}| {percentage}% | {done}/{size} | {speed} | ETA {etaText} | {sources} sources{banned}';

export class DownloadProgressDisplay {
  private readonly multibar: cliProgress.MultiBar | null;
  private readonly bars = new Map<ActiveDownload, cliProgress.SingleBar>();

  /** Bars are drawn on `stream` if it is a terminal; null means never draw. */
  constructor(stream: (Writable & { isTTY?: boolean }) | null = process.stderr) {
    this.multibar = stream?.isTTY
      ? new cliProgress.MultiBar(
          { format: FORMAT, stream, hideCursor: true, clearOnComplete: false, barsize: 24, fps: 5 },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  get active(): boolean {
    return this.multibar !== null;
  }

  /** Shows a bar for every download that the node starts, until it finishes or fails. */
  attach(node: PeerNode): () => void {
    const started = (active: ActiveDownload): void => this.track(active);
    const ended = (active: ActiveDownload): void => this.untrack(active);
    node.on('download-started', started);
    node.on('download-finished', ended);
    node.on('download-failed', ended);
    return () => {
      node.off('download-started', started);
      node.off('download-finished', ended);
      node.off('download-failed', ended);
    };
  }

  track(active: ActiveDownload): void {
    if (!this.multibar) return;
    const { manifest, download } = active;
    const bar = this.multibar.create(Math.max(1, manifest.size), 0, payload(active));
    this.bars.set(active, bar);
    download.on('progress', () => bar.update(download.progress.bytes, payload(active)));
  }

  untrack(active: ActiveDownload): void {
    const bar = this.bars.get(active);
    if (!bar) return;
    bar.update(active.download.progress.bytes, payload(active));
    bar.stop();
    this.bars.delete(active);
    if (this.bars.size === 0) this.multibar?.stop();
  }

  /** Prints a line above the bars (or plainly when there are none). */
  log(stream: Writable, line: string): void {
    if (this.multibar && this.bars.size > 0) this.multibar.log(`${line}\n`);
    else stream.write(`${line}\n`);
  }

  stop(): void {
    this.multibar?.stop();
  }
}

function payload({ manifest, download }: ActiveDownload): BarPayload {
  const p = download.progress;
  const remaining = p.size - p.bytes;
  return {
    name: Array.from(escapeForTerminal(manifest.name)).slice(0, LABEL_CHARS).join(''),
    done: formatBytes(p.bytes),
    size: formatBytes(p.size),
    speed: formatRate(p.bytesPerSecond),
    etaText: p.bytesPerSecond > 0 ? formatSeconds(remaining / p.bytesPerSecond) : '?',
    sources: p.sources,
    banned: p.bannedSources > 0 ? `, ${p.bannedSources} banned` : '',
  };
}
