/**
 * SHA-256 off the event loop: a small pool of worker threads that hash data in shared memory
 * (SharedArrayBuffer-backed Buffers, see shared-buffers.ts) where it lies, so the main thread keeps
 * receiving and writing while a worker hashes. Nothing is copied or transferred: the caller's Buffer
 * stays usable, and must not change until the hash resolves.
 *
 * Workers start lazily, one more only while all are busy, and are unref'd while idle, so an idle
 * pool never keeps a process alive. The queue is bounded: when it is full, hash() returns null and
 * the caller hashes inline (the main thread is then the bottleneck anyway). A worker that dies fails
 * its jobs with ERR_IO; the next job starts a new one.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HASH_BYTES } from '../constants.js';
import { SwarmError } from '../errors.js';

/** Workers at most: two (the final check hashes two blocks at once), or one on a single core. */
const DEFAULT_WORKERS = Math.max(1, Math.min(2, availableParallelism()));
/** Jobs handed to one worker at once: a second one waits there, so it never idles between replies. */
const JOBS_PER_WORKER = 2;
/** Jobs waiting for a worker before hash() declines (returns null). */
const DEFAULT_MAX_QUEUED = 64;

/**
 * The worker: hashes each `piece` bytes of a shared view and answers with the digests. Dynamic
 * imports, because an eval'd worker is CommonJS or ESM as the process was started (--input-type).
 */
const WORKER_SOURCE = `
Promise.all([import('node:worker_threads'), import('node:crypto')]).then(([{ parentPort }, { createHash }]) => {
  parentPort.on('message', ({ id, memory, offset, length, piece }) => {
    const count = Math.max(1, Math.ceil(length / piece));
    const digests = new Uint8Array(count * ${HASH_BYTES});
    for (let i = 0; i < count; i++) {
      const start = offset + i * piece;
      const view = new Uint8Array(memory, start, Math.min(piece, offset + length - start));
      digests.set(createHash('sha256').update(view).digest(), i * ${HASH_BYTES});
    }
    parentPort.postMessage({ id, digests }, [digests.buffer]);
  });
});
`;

export interface HashPoolOptions {
  /** Workers at most (default: one per spare core, 1 to 2). */
  workers?: number;
  /** Jobs waiting for a worker before hash() declines. */
  maxQueued?: number;
  /** The worker's source (CommonJS); for tests of a worker that fails. */
  workerSource?: string;
}

interface Job {
  id: number;
  memory: SharedArrayBuffer;
  offset: number;
  length: number;
  piece: number;
  resolve: (digests: Buffer) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

export class HashPool {
  private readonly maxWorkers: number;
  private readonly maxQueued: number;
  private readonly source: string;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: HashPoolOptions = {}) {
    this.maxWorkers = Math.max(1, options.workers ?? DEFAULT_WORKERS);
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.source = options.workerSource ?? WORKER_SOURCE;
  }

  /** Workers running now. */
  get workers(): number {
    return this.slots.length;
  }

  /**
   * SHA-256 of each consecutive `piece` bytes of `data` (all of it by default), digests concatenated.
   * Null when the pool cannot take it (`data` not in shared memory, the queue full, or the pool closed):
   * hash it inline then. Rejects with ERR_IO if the worker dies.
   */
  hash(data: Buffer, piece = data.length): Promise<Buffer> | null {
    const memory = data.buffer;
    if (this.closed || !(memory instanceof SharedArrayBuffer) || this.queue.length >= this.maxQueued)
      return null;
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({
        id: this.nextId++,
        memory,
        offset: data.byteOffset,
        length: data.length,
        piece: Math.max(1, piece),
        resolve,
        reject,
      });
      this.pump();
    });
  }

  /** Stops the workers; their jobs fail with ERR_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    const error = new SwarmError('ERR_CLOSED', 'the hash pool was closed');
    for (const job of this.queue.splice(0)) job.reject(error);
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.jobs.size === 0);
      if (!slot && this.slots.length < this.maxWorkers) slot = this.startWorker();
      slot ??= this.slots.find((s) => s.jobs.size < JOBS_PER_WORKER);
      if (!slot) return;
      const job = this.queue.shift()!;
      // A worker with work keeps the process alive until it answers; an idle one never does.
      if (slot.jobs.size === 0) slot.worker.ref();
      slot.jobs.set(job.id, job);
      const { id, memory, offset, length, piece } = job;
      slot.worker.postMessage({ id, memory, offset, length, piece });
    }
  }

  private startWorker(): Slot {
    const worker = new Worker(this.source, { eval: true });
    const slot: Slot = { worker, jobs: new Map() };
    worker.unref();
    worker.on('message', ({ id, digests }: { id: number; digests: Uint8Array }) => {
      const job = slot.jobs.get(id);
      if (!job) return;
      slot.jobs.delete(id);
      if (slot.jobs.size === 0) worker.unref();
      job.resolve(Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength));
      this.pump();
    });
    let failure: Error | undefined;
    worker.on('error', (err) => (failure = err));
    worker.on('exit', (code) => {
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      const error = this.closed
        ? new SwarmError('ERR_CLOSED', 'the hash pool was closed')
        : new SwarmError('ERR_IO', `a hash worker exited (code ${code}): ${failure?.message ?? 'no error'}`, {
            cause: failure,
          });
      for (const job of slot.jobs.values()) job.reject(error);
      slot.jobs.clear();
      if (!this.closed) this.pump();
    });
    this.slots.push(slot);
    return slot;
  }
}

let shared: HashPool | null = null;

/** The process's hash pool, created on first use. */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}

/** SHA-256 of `data` on the main thread. */
export function hashInline(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
