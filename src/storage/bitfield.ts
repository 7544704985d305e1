/**
 * A fixed-size set of chunk indices, one bit each, most significant bit first (as in BitTorrent):
 * chunk 0 is the high bit of byte 0. Spare bits in the last byte must be zero on the wire.
 */
/** Number of set bits in each byte value, so counting a bitfield costs one lookup per byte. */
const BITS_SET = Uint8Array.from({ length: 256 }, (_, byte) => {
  let count = 0;
  for (let b = byte; b; b >>= 1) count += b & 1;
  return count;
});

export class Bitfield {
  readonly bytes: Buffer;
  private count = 0;

  constructor(
    readonly size: number,
    bytes?: Buffer,
  ) {
    const length = Bitfield.byteLength(size);
    if (bytes) {
      if (bytes.length !== length) throw new RangeError(`bitfield of ${size} bits needs ${length} bytes`);
      this.bytes = Buffer.from(bytes);
      const spare = length * 8 - size;
      if (spare > 0) this.bytes[length - 1]! &= 0xff << spare;
      for (const byte of this.bytes) this.count += BITS_SET[byte]!;
    } else {
      this.bytes = Buffer.alloc(length);
    }
  }

  static byteLength(size: number): number {
    return Math.ceil(size / 8);
  }

  static full(size: number): Bitfield {
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) field.set(i);
    return field;
  }

  /** True when the spare bits after `size` are all zero. */
  static sparesClear(size: number, bytes: Buffer): boolean {
    const spare = bytes.length * 8 - size;
    if (spare <= 0 || bytes.length === 0) return true;
    return (bytes[bytes.length - 1]! & ((1 << spare) - 1)) === 0;
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.size) return false;
    return (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Sets a bit; returns true if it was not set before. */
  set(index: number): boolean {
    if (index < 0 || index >= this.size)
      throw new RangeError(`chunk ${index} out of range 0..${this.size - 1}`);
    if (this.has(index)) return false;
    this.bytes[index >> 3]! |= 0x80 >> (index & 7);
    this.count++;
    return true;
  }

  /** Clears a bit (a chunk found bad on disk); returns true if it was set before. */
  clear(index: number): boolean {
    if (!this.has(index)) return false;
    this.bytes[index >> 3]! &= ~(0x80 >> (index & 7));
    this.count--;
    return true;
  }

  get setCount(): number {
    return this.count;
  }

  get complete(): boolean {
    return this.count === this.size;
  }

  /** Indices of set bits, in order. */
  *indices(): IterableIterator<number> {
    for (let i = 0; i < this.size; i++) if (this.has(i)) yield i;
  }
}
