import { ephemeralCredentials } from '../../src/transport/credentials.js';
/**
 * Fixtures for data-plane tests: files with known content, chunk servers that seed them (fully or
 * partly, slowly, never, or with corrupted bytes), and a seeder in a child process that can be killed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { ChunkServer } from '../../src/peer/chunk-server.js';
import type { SourceInfo } from '../../src/peer/download.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { hashFile } from '../../src/storage/hasher.js';
import { chunkCount, type Manifest } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { writeRandomFile } from './wait.js';

export interface TestFile {
  path: string;
  manifest: Manifest;
  sha256: string;
}

/** Writes `size` pseudo-random bytes to `dir/name` and hashes it. */
export async function makeFile(dir: string, name: string, size: number, seed = 7): Promise<TestFile> {
  const file = path.join(dir, name);
  await writeRandomFile(file, size, seed);
  return { path: file, manifest: await hashFile(file, name), sha256: await sha256File(file) };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const data of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(data as Buffer);
  return hash.digest('hex');
}

/** A promise with its resolve function: a gate a test opens when it is ready. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export interface SeederOptions {
  /** Chunks it holds (default: all). Requests for others are refused. */
  chunks?: Bitfield;
  /** Each answer waits for this promise first. */
  gate?: Promise<void>;
  /** Each answer is delayed this long (throttling, not synchronisation). */
  delayMs?: number;
  /** Serves every chunk with one byte flipped. */
  corrupt?: boolean;
  /** Serves, for each chunk asked for, the right bytes of another chunk (the next one). */
  wrongIndex?: boolean;
  /** Never answers at all. */
  stall?: boolean;
  /** Claims (in its SourceInfo) every chunk, whatever it really holds. */
  claimAll?: boolean;
  name?: string;
}

export interface Seeder {
  server: ChunkServer;
  port: number;
  peerId: string;
  /** How many chunk reads the provider has been asked for. */
  reads: () => number;
  source: () => SourceInfo;
}

/** A chunk server on 127.0.0.1 seeding `file`; closed when the test ends. */
export async function startSeeder(
  t: TestContext,
  file: TestFile,
  options: SeederOptions = {},
): Promise<Seeder> {
  const total = chunkCount(file.manifest);
  const chunks = options.chunks ?? Bitfield.full(total);
  let reads = 0;
  const credentials = await ephemeralCredentials();
  const server = new ChunkServer({
    credentials,
    provider: async (fileId, index) => {
      reads++;
      if (options.stall) return new Promise<never>(() => undefined);
      if (options.gate) await options.gate;
      if (options.delayMs) await delay(options.delayMs);
      if (!fileId.equals(file.manifest.id) || !chunks.has(index)) return null;
      const served = options.wrongIndex ? (index + 1) % total : index;
      const data = await readFileChunk(file.path, file.manifest, served);
      if (options.corrupt) data[data.length >> 1]! ^= 0xff;
      return data;
    },
  });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  const peerId = credentials.peerId.toString('hex');
  const name = options.name ?? `seeder-${port}`;
  return {
    server,
    port,
    peerId,
    reads: () => reads,
    source: () => ({
      peerId,
      name,
      host: '127.0.0.1',
      port,
      chunks: options.claimAll ? Bitfield.full(total) : chunks,
    }),
  };
}

/** Chunks whose index has the given remainder modulo `every`. */
export function stripes(total: number, every: number, remainder: number): Bitfield {
  const field = new Bitfield(total);
  for (let i = remainder; i < total; i += every) field.set(i);
  return field;
}

export interface SeederProcess {
  pid: number;
  port: number;
  peerId: string;
  source: () => SourceInfo;
  /** SIGKILL, then resolves once the process is gone. */
  kill: () => Promise<void>;
  /** Resolves with the signal that ended the process (null for a normal exit). */
  exited: Promise<NodeJS.Signals | null>;
}

/**
 * A seeder in a child process (dist/test/helpers/seeder-process.js) answering each request after
 * `delayMs`. Killed at the latest when the test ends; it also exits if this process goes away.
 */
export async function spawnSeeder(
  t: TestContext,
  file: TestFile,
  delayMs: number,
  /** 'kill-mid-chunk': sends its first chunk whole, half of its second, then SIGKILLs itself. */
  mode?: 'kill-mid-chunk',
): Promise<SeederProcess> {
  const script = fileURLToPath(new URL('./seeder-process.js', import.meta.url));
  const args = [script, file.path, file.manifest.name, String(delayMs), ...(mode ? [mode] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ port: number; peerId: string }>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as { port: number; peerId: string }));
    child.once('exit', (code) => reject(new Error(`seeder process exited early with ${code}`)));
  });
  const peerId = ready.peerId;
  const total = chunkCount(file.manifest);
  return {
    pid: child.pid!,
    port: ready.port,
    peerId,
    source: () => ({
      peerId,
      name: 'child-seeder',
      host: '127.0.0.1',
      port: ready.port,
      chunks: Bitfield.full(total),
    }),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}
