/**
 * Length-prefixed frames: u32 big-endian body length, then the body (u8 message type + payload).
 * The length is checked against the protocol's cap before a single byte is allocated for the body;
 * on accepted sockets (FrameDecoder), a large body is then allocated as its bytes arrive.
 */
import { takeBuffer } from '../buffer-pool.js';
import { ProtocolError } from './codec.js';

export const FRAME_HEADER_BYTES = 4;

export class FrameTooLargeError extends ProtocolError {
  constructor(length: number, max: number) {
    super(`frame of ${length} bytes exceeds the limit of ${max}`);
    this.name = 'FrameTooLargeError';
  }
}

/** The 4-byte length prefix for a body of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

/** A frame body length as read from the wire: refused if empty or over the cap, before any allocation. */
function checkedLength(maxFrame: number, length: number): number {
  if (length === 0) throw new ProtocolError('empty frame');
  if (length > maxFrame) throw new FrameTooLargeError(length, maxFrame);
  return length;
}

/** A whole frame (header + body) as one buffer; for small messages. */
export function encodeFrame(body: Buffer): Buffer {
  return Buffer.concat([frameHeader(body.length), body]);
}

/**
 * Bodies longer than this are allocated as their bytes arrive (the buffer doubles as it fills, up to
 * the declared length), not at once when the header announces them: a header alone costs nothing,
 * and a peer that sends part of a large frame makes us hold at most twice what it sent.
 */
export const GROWN_BODY_MIN_BYTES = 64 * 1024;

/**
 * Incremental decoder: feed it socket data, it calls onFrame with each complete body.
 * Small bodies are allocated once at their (capped) size, large ones as their bytes arrive.
 */
export class FrameDecoder {
  private header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** The body being received: its bytes so far, in a buffer of at most `bodyLength` bytes. */
  private body: Buffer | null = null;
  private bodyLength = 0;
  private bodyFill = 0;
  /** Frames decoded so far: a frame in progress is a new one whenever this has moved. */
  framesDecoded = 0;

  constructor(
    private readonly maxFrame: number,
    private readonly onFrame: (body: Buffer) => void,
  ) {}

  /** True while a frame is partly received (used to tell a clean close from a cut-off one). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  /** Bytes of the frame in progress received so far, its header included (0 between frames). */
  get partialBytes(): number {
    return this.body ? FRAME_HEADER_BYTES + this.bodyFill : this.headerFill;
  }

  push(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      if (this.body === null) {
        // Fast path: a whole small frame inside this chunk needs no copy.
        if (this.headerFill === 0 && data.length - at >= FRAME_HEADER_BYTES) {
          const length = checkedLength(this.maxFrame, data.readUInt32BE(at));
          if (data.length - at - FRAME_HEADER_BYTES >= length) {
            const start = at + FRAME_HEADER_BYTES;
            at = start + length;
            this.framesDecoded++;
            this.onFrame(data.subarray(start, at));
            continue;
          }
        }
        const needed = FRAME_HEADER_BYTES - this.headerFill;
        const taken = Math.min(needed, data.length - at);
        data.copy(this.header, this.headerFill, at, at + taken);
        this.headerFill += taken;
        at += taken;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        const length = checkedLength(this.maxFrame, this.header.readUInt32BE(0));
        this.headerFill = 0;
        this.body = Buffer.allocUnsafe(Math.min(length, GROWN_BODY_MIN_BYTES));
        this.bodyLength = length;
        this.bodyFill = 0;
      }
      const taken = Math.min(this.bodyLength - this.bodyFill, data.length - at);
      if (this.bodyFill + taken > this.body.length) this.grow(this.bodyFill + taken);
      data.copy(this.body, this.bodyFill, at, at + taken);
      this.bodyFill += taken;
      at += taken;
      if (this.bodyFill === this.bodyLength) {
        const body = this.body;
        this.body = null;
        this.framesDecoded++;
        this.onFrame(body);
      }
    }
  }

  /** Moves the body into a buffer of at least `needed` bytes: double the size, at most the length. */
  private grow(needed: number): void {
    const size = Math.min(this.bodyLength, Math.max(needed, this.body!.length * 2));
    const grown = Buffer.allocUnsafe(size);
    this.body!.copy(grown, 0, 0, this.bodyFill);
    this.body = grown;
  }
}

/**
 * Bytes of the reusable buffer that headers and small frames are read into. The read after a body
 * lands here with the next header and as much of the next body as fits, which is copied: 16 KiB
 * copies at most 6 % of a 256 KiB chunk (64 KiB cost 0.3 CPU s more per GiB), and small frames fit.
 */
export const DIRECT_SCRATCH_BYTES = 16 * 1024;

/**
 * Bodies at least this long (chunk data) come from the buffer pool (buffer-pool.ts), to be released
 * by their consumer; smaller ones are ordinary Buffers.
 */
export const POOLED_BODY_MIN_BYTES = 64 * 1024;

/**
 * Decoder for a socket that reads into buffers we choose (net.connect's `onread`): ask nextBuffer()
 * where the next read goes, then tell received() how many bytes it brought. While a body is being
 * received, the kernel writes straight into the unfilled rest of it, so chunk data is never copied
 * and no per-read Buffer is allocated; otherwise reads go into one scratch buffer, from which headers
 * are parsed and small frames copied out (it is overwritten by the next read). The length is checked
 * against the cap before the body is allocated, as in FrameDecoder.
 */
export class DirectFrameDecoder {
  private readonly scratch: Buffer;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /**
   * Bytes a read into a body may bring at most. Unbounded, one read takes whatever the kernel holds
   * (often the whole rest of a chunk); a receive limiter, which pays for each read after it, sets it
   * to keep its overshoot as small as on the stream path.
   */
  maxRead = Infinity;
  /** Frames decoded so far: a frame in progress is a new one whenever this has moved. */
  framesDecoded = 0;

  constructor(
    private readonly maxFrame: number,
    /** Called with each complete body; the body is the callee's (never written to again). */
    public onFrame: (body: Buffer) => void,
    scratchBytes = DIRECT_SCRATCH_BYTES,
  ) {
    this.scratch = Buffer.allocUnsafeSlow(scratchBytes);
  }

  /** True while a frame is partly received (used to tell a clean close from a cut-off one). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  /** Bytes of the frame in progress received so far, its header included (0 between frames). */
  get partialBytes(): number {
    return this.body ? FRAME_HEADER_BYTES + this.bodyFill : this.headerFill;
  }

  /** Where the next read must go: never empty. */
  nextBuffer(): Buffer {
    if (!this.body) return this.scratch;
    return this.body.subarray(this.bodyFill, Math.min(this.body.length, this.bodyFill + this.maxRead));
  }

  /** `bytes` were read into the buffer nextBuffer() returned last. */
  received(bytes: number): void {
    if (this.body) {
      this.bodyFill += bytes;
      if (this.bodyFill === this.body.length) this.finishBody();
      return;
    }
    const data = this.scratch;
    let at = 0;
    while (at < bytes) {
      let length: number;
      if (this.headerFill === 0 && bytes - at >= FRAME_HEADER_BYTES) {
        length = checkedLength(this.maxFrame, data.readUInt32BE(at));
        at += FRAME_HEADER_BYTES;
      } else {
        const taken = Math.min(FRAME_HEADER_BYTES - this.headerFill, bytes - at);
        data.copy(this.header, this.headerFill, at, at + taken);
        this.headerFill += taken;
        at += taken;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        this.headerFill = 0;
        length = checkedLength(this.maxFrame, this.header.readUInt32BE(0));
      }
      // The scratch buffer is overwritten by the next read: whatever is kept is copied out.
      const body = length >= POOLED_BODY_MIN_BYTES ? takeBuffer(length) : Buffer.allocUnsafe(length);
      const taken = Math.min(length, bytes - at);
      data.copy(body, 0, at, at + taken);
      at += taken;
      if (taken === length) {
        this.framesDecoded++;
        this.onFrame(body);
      } else {
        // The rest of this body is read straight into it.
        this.body = body;
        this.bodyFill = taken;
      }
    }
  }

  private finishBody(): void {
    const body = this.body!;
    this.body = null;
    this.framesDecoded++;
    this.onFrame(body);
  }
}
