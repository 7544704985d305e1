/**
 * The state file of a download in progress, `<stateDir>/partial/<fileIdHex>.state`, next to its data
 * (`<fileIdHex>.part`): which chunks are verified and written, so a download killed at any moment
 * resumes where it was. It is only ever a hint: at resume every chunk it claims is hashed again, and
 * a state that does not decode (truncated, garbage, another file's) means hashing the whole partial
 * file. Layout (big-endian, like the wire):
 *
 *   magic "SWSPART\n" | u16 version | fileId[32] | u64 size | u32 chunkSize | u32 chunks
 *   | bitfield (ceil(chunks / 8) bytes, chunk 0 in the high bit, spare bits zero)
 *   | SHA-256 of everything before it [32]
 *
 * It is written to a temp name, fsynced and renamed (writeFileAtomic), so a crash leaves the old
 * state or the new one; and it may only claim chunks whose data was written and fdatasync'ed before
 * it (see PartialFile), which is what makes trusting it for the order of work safe.
 */
import { createHash } from 'node:crypto';
import { HASH_BYTES } from '../constants.js';
import { errorMessage } from '../errors.js';
import { Bitfield } from './bitfield.js';
import { chunkCount, type Manifest } from './manifest.js';

export const PARTIAL_STATE_MAGIC = Buffer.from('SWSPART\n', 'latin1');
export const PARTIAL_STATE_VERSION = 1;
/** magic, version, file id, size, chunk size, chunk count. */
const HEADER_BYTES = PARTIAL_STATE_MAGIC.length + 2 + HASH_BYTES + 8 + 4 + 4;

/** The state of `manifest`'s download with the chunks in `have` verified and written. */
export function encodePartialState(manifest: Manifest, have: Bitfield): Buffer {
  const chunks = chunkCount(manifest);
  if (have.size !== chunks) throw new RangeError(`bitfield of ${have.size} bits for ${chunks} chunks`);
  const body = Buffer.alloc(HEADER_BYTES + have.bytes.length);
  let at = PARTIAL_STATE_MAGIC.copy(body, 0);
  at = body.writeUInt16BE(PARTIAL_STATE_VERSION, at);
  at += manifest.id.copy(body, at);
  at = body.writeUInt32BE(Math.floor(manifest.size / 2 ** 32), at);
  at = body.writeUInt32BE(manifest.size % 2 ** 32, at);
  at = body.writeUInt32BE(manifest.chunkSize, at);
  at = body.writeUInt32BE(chunks, at);
  have.bytes.copy(body, at);
  return Buffer.concat([body, sha256(body)]);
}

export type DecodedPartialState = { ok: true; have: Bitfield } | { ok: false; problem: string };

/** The chunks a state file claims for `manifest`'s download, or why it cannot be used. Never throws. */
export function decodePartialState(data: Buffer, manifest: Manifest): DecodedPartialState {
  const bad = (problem: string): DecodedPartialState => ({ ok: false, problem });
  try {
    const chunks = chunkCount(manifest);
    const bitfieldBytes = Bitfield.byteLength(chunks);
    if (data.length < HEADER_BYTES + HASH_BYTES) return bad(`too short (${data.length} bytes)`);
    if (!data.subarray(0, PARTIAL_STATE_MAGIC.length).equals(PARTIAL_STATE_MAGIC))
      return bad('not a state file');
    const body = data.subarray(0, data.length - HASH_BYTES);
    if (!sha256(body).equals(data.subarray(body.length))) return bad('checksum mismatch');
    let at = PARTIAL_STATE_MAGIC.length;
    const version = data.readUInt16BE(at);
    at += 2;
    if (version !== PARTIAL_STATE_VERSION) return bad(`version ${version}, not ${PARTIAL_STATE_VERSION}`);
    if (!data.subarray(at, at + HASH_BYTES).equals(manifest.id)) return bad('the state of another file');
    at += HASH_BYTES;
    const size = data.readUInt32BE(at) * 2 ** 32 + data.readUInt32BE(at + 4);
    const chunkSize = data.readUInt32BE(at + 8);
    const count = data.readUInt32BE(at + 12);
    at += 16;
    if (size !== manifest.size || chunkSize !== manifest.chunkSize || count !== chunks) {
      return bad(`${count} chunks of ${chunkSize} bytes for ${size} bytes do not fit the manifest`);
    }
    if (body.length - at !== bitfieldBytes)
      return bad(`${body.length - at} bitfield bytes for ${chunks} chunks`);
    const bits = body.subarray(at);
    if (!Bitfield.sparesClear(chunks, bits)) return bad('spare bits set');
    return { ok: true, have: new Bitfield(chunks, bits) };
  } catch (err) {
    return bad(errorMessage(err));
  }
}

/**
 * Runs `save` at most once per `intervalMs` after changes (the first change waits a full interval,
 * so a burst of chunks costs one save), one save at a time, and at once on flush(). Errors go to
 * `onError`; the next change tries again.
 */
export class BatchedSaver {
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly save: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Something changed: a save is due within the interval. */
  changed(): void {
    this.dirty = true;
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, this.intervalMs);
    // Never the reason a process stays up: whoever stops a download flushes first.
    this.timer.unref();
  }

  /** Saves now if anything changed since the last save (after waiting for a save under way). */
  async flush(): Promise<void> {
    this.clearTimer();
    while (this.running) await this.running;
    if (this.dirty) await this.saveNow();
  }

  /** No more saves from the timer (flush() still saves); resolves once a save under way is over. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    while (this.running) await this.running;
  }

  /** Undoes stop(): changes schedule saves again. */
  start(): void {
    this.stopped = false;
    if (this.dirty) this.changed();
  }

  private async run(): Promise<void> {
    while (this.running) await this.running;
    if (!this.dirty || this.stopped) return;
    await this.saveNow().catch(this.onError);
  }

  private async saveNow(): Promise<void> {
    this.dirty = false;
    const running = this.save();
    this.running = running.then(
      () => undefined,
      () => undefined,
    );
    try {
      await running;
    } catch (err) {
      this.dirty = true; // not saved: the next change or flush tries again
      throw err;
    } finally {
      this.running = null;
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}
