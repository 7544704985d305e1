/**
 * Text formatting for people: sizes, rates, durations, tables. Text from the network or the disk
 * is shown through escapeForTerminal (src/terminal-text.ts) wherever it is printed.
 */
import type { DownloadResult } from '../peer/download.js';
import { escapeForTerminal } from '../terminal-text.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 1) return `${seconds.toFixed(2)}s`;
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 90) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 90
    ? `${minutes}m${Math.round(seconds % 60)}s`
    : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/** "1 file", "3 files". */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

export function shortId(hex: string): string {
  return hex.slice(0, 12);
}

/** Left-aligned columns; numeric-looking columns are right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  const numeric = header.map(
    (_, col) => rows.length > 0 && rows.every((row) => /^[\d.,]+( \S+)?$/.test(row[col] ?? '')),
  );
  return all
    .map((row) =>
      row
        .map((cell, col) => (numeric[col] ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One line about a finished download: "got NAME: SIZE in TIME (RATE) from N sources -> PATH". */
export function describeDownload(result: DownloadResult): string {
  const rate = result.seconds > 0 ? result.size / result.seconds : 0;
  const sources = result.sources.filter((s) => s.bytes > 0).length;
  return (
    `got ${escapeForTerminal(result.name)}: ${formatBytes(result.size)} in ${formatSeconds(result.seconds)} ` +
    `(${formatRate(rate)}) from ${plural(sources, 'source')} -> ${escapeForTerminal(result.path)}`
  );
}
