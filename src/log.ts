/**
 * Structured logging (pino). Components take a Logger and default to a silent one, so a library
 * user or a test pays nothing for logs it does not want.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Minimum level to stderr ('silent' to keep stderr clean). */
  stderrLevel?: pino.LevelWithSilent;
  /** Also write every record at `fileLevel` and above to this file (appended). */
  file?: string;
  fileLevel?: pino.Level;
  name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const streams: pino.StreamEntry[] = [];
  const stderrLevel = options.stderrLevel ?? 'info';
  if (stderrLevel !== 'silent')
    streams.push({ level: stderrLevel, stream: pino.destination({ fd: 2, sync: true }) });
  if (options.file) {
    fs.mkdirSync(path.dirname(path.resolve(options.file)), { recursive: true });
    streams.push({
      level: options.fileLevel ?? 'info',
      stream: pino.destination({ dest: options.file, sync: true }),
    });
  }
  if (streams.length === 0) return silentLogger();
  const level = streams
    .map((s) => s.level as string)
    .reduce((a, b) => (pino.levels.values[a]! <= pino.levels.values[b]! ? a : b));
  return pino({ name: options.name, level, base: { pid: process.pid } }, pino.multistream(streams));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
