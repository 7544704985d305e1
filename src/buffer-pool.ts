/**
 * Large frame bodies (chunk data) are pooled by exact size: a fresh 256 KiB-1 MiB Buffer costs a
 * malloc, page faults on first touch and a free after a garbage collection, for every chunk. The
 * connection that receives a body takes one; whoever consumes it last (PartialFile.write once the
 * chunk is verified and written, or a PeerClient dropping an answer it no longer wants) releases it.
 * A buffer never released is simply garbage-collected: forgetting a release costs an allocation,
 * never correctness. Releasing hands the memory to the next frame, so only the last reader may do it.
 */

/**
 * Free bytes kept over all sizes. The pool only ever holds what was in use at once (chunks received
 * and not yet written: about the requests in flight), so this bounds what is kept after a peak; 16
 * per size made the pool drop and reallocate all the time (536 fresh of 4096 takes in a 1 GiB
 * download with 256 KiB chunks; 34 with this bound).
 */
const MAX_FREE_BYTES = 32 * 1024 * 1024;

const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;
/** Buffers handed out and not yet released: a release of anything else is ignored. */
const lent = new WeakSet<ArrayBuffer>();

/** A Buffer of `length` bytes over its own ArrayBuffer, from the pool if one is free. Contents are undefined. */
export function takeBuffer(length: number): Buffer {
  let memory = free.get(length)?.pop();
  if (memory) freeBytes -= length;
  else memory = Buffer.allocUnsafeSlow(length).buffer as ArrayBuffer;
  lent.add(memory);
  return Buffer.from(memory, 0, length);
}

/**
 * Returns the buffer `data` is a view into to the pool (a no-op for any other buffer, or a second
 * release). Call it only when nothing will read `data` again: its bytes belong to the next taker.
 */
export function releaseBuffer(data: Uint8Array): void {
  const memory = data.buffer;
  if (!(memory instanceof ArrayBuffer) || !lent.delete(memory)) return;
  const size = memory.byteLength;
  if (freeBytes + size > MAX_FREE_BYTES) return;
  let list = free.get(size);
  if (!list) free.set(size, (list = []));
  list.push(memory);
  freeBytes += size;
}

/** Free bytes held by the pool (for tests and diagnostics). */
export function pooledBytes(): number {
  return freeBytes;
}
