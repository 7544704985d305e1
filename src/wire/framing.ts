/**
 * Length-prefixed frames: u32 big-endian body length, then the body (u8 message type + payload).
 * The length is checked against the protocol's cap before a single byte is allocated for the body.
 */
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

/** A whole frame (header + body) as one buffer; for small messages. */
export function encodeFrame(body: Buffer): Buffer {
  return Buffer.concat([frameHeader(body.length), body]);
}

/**
 * Incremental decoder: feed it socket data, it calls onFrame with each complete body.
 * Large bodies are assembled into one buffer allocated once at their (capped) size.
 */
export class FrameDecoder {
  private header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;

  constructor(
    private readonly maxFrame: number,
    private readonly onFrame: (body: Buffer) => void,
  ) {}

  /** True while a frame is partly received (used to tell a clean close from a cut-off one). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  push(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      if (this.body === null) {
        // Fast path: a whole small frame inside this chunk needs no copy.
        if (this.headerFill === 0 && data.length - at >= FRAME_HEADER_BYTES) {
          const length = this.checkedLength(data.readUInt32BE(at));
          if (data.length - at - FRAME_HEADER_BYTES >= length) {
            const start = at + FRAME_HEADER_BYTES;
            at = start + length;
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
        const length = this.checkedLength(this.header.readUInt32BE(0));
        this.headerFill = 0;
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
      const taken = Math.min(this.body.length - this.bodyFill, data.length - at);
      data.copy(this.body, this.bodyFill, at, at + taken);
      this.bodyFill += taken;
      at += taken;
      if (this.bodyFill === this.body.length) {
        const body = this.body;
        this.body = null;
        this.onFrame(body);
      }
    }
  }

  private checkedLength(length: number): number {
    if (length === 0) throw new ProtocolError('empty frame');
    if (length > this.maxFrame) throw new FrameTooLargeError(length, this.maxFrame);
    return length;
  }
}
