/**
 * Structured logging (pino). Components take a Logger and default to a silent one, so a library
 * user or a test pays nothing for logs it does not want.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { escapeJsonForTerminal } from './terminal-text.js';

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
    streams.push({ level: stderrLevel, stream: readable(pino.destination({ fd: 2, sync: true })) });
  if (options.file) {
    fs.mkdirSync(path.dirname(path.resolve(options.file)), { recursive: true });
    streams.push({
      level: options.fileLevel ?? 'info',
      stream: readable(pino.destination({ dest: options.file, sync: true })),
    });
  }
  if (streams.length === 0) return silentLogger();
  const level = streams
    .map((s) => s.level as string)
    .reduce((a, b) => (pino.levels.values[a]! <= pino.levels.values[b]! ? a : b));
  return pino({ name: options.name, level, base: { pid: process.pid } }, pino.multistream(streams));
}

/**
 * Log lines carry names and messages from the network, and are read on terminals (stderr, `tail`,
 * `less`): what JSON leaves as it is and a terminal would act on is written as `\u` escapes.
 */
function readable(destination: pino.DestinationStream): pino.DestinationStream {
  return { write: (line: string) => destination.write(escapeJsonForTerminal(line)) };
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
