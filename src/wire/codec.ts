/**
 * Primitive binary encodings shared by every wire message. All integers are big-endian.
 *
 *   u8 | u16 | u32           fixed width
 *   u64                      two u32 (high, low); decoded values above 2^53 - 1 are refused
 *   bytes(n)                 n raw bytes, n fixed by the message (hashes, ids)
 *   str(max)                 u16 byte length, then UTF-8; the length is checked against max first
 *   blob(max)                u32 byte length, then the bytes; checked against max first
 *
 * The Reader never reads past its buffer: any short or oversized field throws ProtocolError,
 * which the connection turns into a closed connection at one place.
 */
import { SwarmError } from '../errors.js';

export class ProtocolError extends SwarmError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
    this.name = 'ProtocolError';
  }
}

export class Writer {
  private chunks: Buffer[] = [];
  private current: Buffer;
  private offset = 0;
  private total = 0;

  constructor(initialSize = 256) {
    this.current = Buffer.allocUnsafe(initialSize);
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.current.length) return;
    this.flushCurrent();
    this.current = Buffer.allocUnsafe(Math.max(bytes, this.current.length * 2));
  }

  private flushCurrent(): void {
    if (this.offset > 0) this.chunks.push(this.current.subarray(0, this.offset));
    this.offset = 0;
  }

  u8(value: number): this {
    this.ensure(1);
    this.current.writeUInt8(value, this.offset);
    this.offset += 1;
    this.total += 1;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.current.writeUInt16BE(value, this.offset);
    this.offset += 2;
    this.total += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.current.writeUInt32BE(value, this.offset);
    this.offset += 4;
    this.total += 4;
    return this;
  }

  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`);
    return this.u32(Math.floor(value / 2 ** 32)).u32(value % 2 ** 32);
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.length);
    this.current.set(value, this.offset);
    this.offset += value.length;
    this.total += value.length;
    return this;
  }

  /** A fixed-length field: refuses a value of any other length, so a bug cannot misalign a frame. */
  fixed(value: Uint8Array, length: number): this {
    if (value.length !== length) throw new RangeError(`expected ${length} bytes, got ${value.length}`);
    return this.bytes(value);
  }

  str(value: string, maxBytes: number): this {
    const encoded = Buffer.from(value, 'utf8');
    if (encoded.length > maxBytes || encoded.length > 0xffff) {
      throw new RangeError(`string of ${encoded.length} bytes exceeds ${maxBytes}`);
    }
    return this.u16(encoded.length).bytes(encoded);
  }

  blob(value: Uint8Array, maxBytes: number): this {
    if (value.length > maxBytes) throw new RangeError(`blob of ${value.length} bytes exceeds ${maxBytes}`);
    return this.u32(value.length).bytes(value);
  }

  get length(): number {
    return this.total;
  }

  finish(): Buffer {
    this.flushCurrent();
    const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
    this.chunks = [];
    this.total = 0;
    return out;
  }
}

export class Reader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  private take(bytes: number, what: string): number {
    if (this.offset + bytes > this.buffer.length) {
      throw new ProtocolError(`truncated ${what}: need ${bytes} bytes, ${this.remaining} left`);
    }
    const at = this.offset;
    this.offset += bytes;
    return at;
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  u8(what = 'u8'): number {
    return this.buffer.readUInt8(this.take(1, what));
  }

  u16(what = 'u16'): number {
    return this.buffer.readUInt16BE(this.take(2, what));
  }

  u32(what = 'u32'): number {
    return this.buffer.readUInt32BE(this.take(4, what));
  }

  u64(what = 'u64'): number {
    const high = this.u32(what);
    const low = this.u32(what);
    if (high > 0x1fffff) throw new ProtocolError(`${what} exceeds 2^53 - 1`);
    return high * 2 ** 32 + low;
  }

  /** A view into the frame (no copy); copy it if it must outlive the frame. */
  bytes(length: number, what = 'bytes'): Buffer {
    const at = this.take(length, what);
    return this.buffer.subarray(at, at + length);
  }

  /** Like bytes(), but copied, for values kept after the frame is gone (ids, hashes). */
  copy(length: number, what = 'bytes'): Buffer {
    return Buffer.from(this.bytes(length, what));
  }

  str(maxBytes: number, what = 'string'): string {
    const length = this.u16(what);
    if (length > maxBytes) throw new ProtocolError(`${what} of ${length} bytes exceeds ${maxBytes}`);
    const raw = this.bytes(length, what);
    const text = raw.toString('utf8');
    // Refuse invalid UTF-8 instead of silently replacing it: names must round-trip exactly.
    if (Buffer.byteLength(text, 'utf8') !== length || text.includes('\uFFFD')) {
      if (!Buffer.from(text, 'utf8').equals(raw)) throw new ProtocolError(`${what} is not valid UTF-8`);
    }
    return text;
  }

  blob(maxBytes: number, what = 'blob'): Buffer {
    const length = this.u32(what);
    if (length > maxBytes) throw new ProtocolError(`${what} of ${length} bytes exceeds ${maxBytes}`);
    return this.bytes(length, what);
  }

  /** A count that bounds a list: checked against max before any element is read. */
  count(width: 8 | 16 | 32, max: number, what = 'count'): number {
    const value = width === 8 ? this.u8(what) : width === 16 ? this.u16(what) : this.u32(what);
    if (value > max) throw new ProtocolError(`${what} of ${value} exceeds ${max}`);
    return value;
  }

  /** Every message must be consumed exactly: trailing bytes mean a malformed frame. */
  end(what = 'message'): void {
    if (this.remaining !== 0) throw new ProtocolError(`${this.remaining} trailing bytes after ${what}`);
  }
}
