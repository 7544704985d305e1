/**
 * Fuzz properties of the frame decoders (src/wire/framing.ts), checked against a reference model of
 * the framing (a u32 length, 1..cap, then the body), on byte streams fed in arbitrary splits:
 *
 *   - valid frames, split anywhere and cut anywhere: exactly the bodies sent, midFrame true iff the
 *     cut is inside a frame;
 *   - hostile streams (valid frames mixed with random headers, empty frames, noise): the bodies before
 *     the first bad header, then a ProtocolError thrown by the push that brings that header's 4th byte
 *     (FrameTooLargeError when it is over the cap), nothing else ever thrown;
 *   - an over-cap length, up to 2^32 - 1: refused as soon as its 4 header bytes are in, whatever
 *     follows;
 *   - in all of them, no Buffer larger than the cap is ever allocated.
 *
 * FrameDecoder is push-fed; DirectFrameDecoder (when the build has it) is fed as a socket feeds it:
 * each read goes into nextBuffer() and is reported with received(), with a small scratch buffer so that
 * headers and bodies straddle reads. Its bodies are kept until the end, which also checks that none is
 * a view into the scratch buffer (the next read would overwrite it).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as framing from '../../src/wire/framing.js';
import { FrameDecoder, FrameTooLargeError } from '../../src/wire/framing.js';
import {
  defineProperty,
  isProtocolError,
  largestAllocation,
  record,
  u32,
  type FuzzProperty,
} from './harness.js';

// ---- The reference model -----------------------------------------------------------------------------

interface Expected {
  frames: Buffer[];
  /** Offset of the 4th byte of the first bad header, if any. */
  errorAt: number | undefined;
  tooLarge: boolean;
  midFrame: boolean;
}

function model(stream: Buffer, cap: number): Expected {
  const frames: Buffer[] = [];
  let at = 0;
  while (at + 4 <= stream.length) {
    const length = stream.readUInt32BE(at);
    if (length === 0 || length > cap)
      return { frames, errorAt: at + 3, tooLarge: length > cap, midFrame: true };
    if (at + 4 + length > stream.length) break;
    frames.push(stream.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return { frames, errorAt: undefined, tooLarge: false, midFrame: at < stream.length };
}

// ---- Decoders under test -----------------------------------------------------------------------------

interface Fed {
  frames: Buffer[];
  /** What the decoder threw, and the stream offsets of the bytes handed to it in that call. */
  error: { err: unknown; from: number; to: number } | undefined;
  midFrame: boolean;
  /** The largest Buffer allocated while feeding. */
  largest: number;
}

interface FrameDecoderUnderTest {
  name: string;
  feed(stream: Buffer, cap: number, splits: readonly number[], scratch: number): Fed;
}

function chunksOf(stream: Buffer, splits: readonly number[]): [from: number, to: number][] {
  const chunks: [number, number][] = [];
  for (let at = 0, i = 0; at < stream.length; i++) {
    const size = splits.length > 0 ? splits[i % splits.length]! : stream.length;
    chunks.push([at, Math.min(stream.length, at + size)]);
    at += size;
  }
  return chunks;
}

const pushed: FrameDecoderUnderTest = {
  name: 'frame decoder',
  feed(stream, cap, splits) {
    const frames: Buffer[] = [];
    // Bodies may be views into the pushed data: the stream is never written to, so they stay valid.
    const decoder = new FrameDecoder(cap, (body) => frames.push(body));
    let error: Fed['error'];
    const { largest } = largestAllocation(() => {
      for (const [from, to] of chunksOf(stream, splits)) {
        try {
          decoder.push(stream.subarray(from, to));
        } catch (err) {
          error = { err, from, to };
          return;
        }
      }
    });
    return { frames, error, midFrame: decoder.midFrame, largest };
  },
};

interface DirectDecoder {
  readonly midFrame: boolean;
  nextBuffer(): Buffer;
  received(bytes: number): void;
}
type DirectDecoderClass = new (
  maxFrame: number,
  onFrame: (body: Buffer) => void,
  scratchBytes?: number,
) => DirectDecoder;

/** The socket-fed decoder, if this build has it (it is looked up, so that this file builds without it). */
const DirectFrameDecoder = (framing as unknown as Record<string, unknown>)['DirectFrameDecoder'] as
  DirectDecoderClass | undefined;

function direct(Decoder: DirectDecoderClass): FrameDecoderUnderTest {
  return {
    name: 'direct frame decoder',
    feed(stream, cap, splits, scratch) {
      const frames: Buffer[] = [];
      const decoder = new Decoder(cap, (body) => frames.push(body), scratch);
      let error: Fed['error'];
      const { largest } = largestAllocation(() => {
        for (const [from, to] of chunksOf(stream, splits)) {
          // One socket read may bring less than the chunk: at most what nextBuffer() has room for.
          for (let at = from; at < to;) {
            const target = decoder.nextBuffer();
            assert.ok(target.length > 0, 'nextBuffer() returned an empty buffer');
            const bytes = Math.min(target.length, to - at);
            stream.copy(target, 0, at, at + bytes);
            try {
              decoder.received(bytes);
            } catch (err) {
              error = { err, from: at, to: at + bytes };
              return;
            }
            at += bytes;
          }
        }
      });
      return { frames, error, midFrame: decoder.midFrame, largest };
    },
  };
}

export const frameDecodersUnderTest: FrameDecoderUnderTest[] = [
  pushed,
  ...(DirectFrameDecoder ? [direct(DirectFrameDecoder)] : []),
];

// ---- Streams -----------------------------------------------------------------------------------------

type Segment =
  | { kind: 'frame'; body: Uint8Array }
  | { kind: 'header'; length: number; tail: Uint8Array }
  | { kind: 'noise'; bytes: Uint8Array };

const frameSegment = record({
  kind: fc.constant('frame' as const),
  body: fc.oneof(
    { weight: 20, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(70_000).fill(0x5a)) },
  ),
});

const hostileSegment: fc.Arbitrary<Segment> = fc.oneof(
  { weight: 6, arbitrary: frameSegment },
  {
    weight: 2,
    arbitrary: record({
      kind: fc.constant('header' as const),
      length: fc.oneof(u32, fc.integer({ min: 0, max: 400 }), fc.constantFrom(0, 0xffffffff, 0x80000000)),
      tail: fc.uint8Array({ maxLength: 24 }),
    }),
  },
  {
    weight: 1,
    arbitrary: record({
      kind: fc.constant('noise' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }),
    }),
  },
);

/** Caps: tiny ones (every random length is over them), and one that fits every body generated. */
const cap = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constant(1 << 20));

function streamOf(segments: Segment[], maxFrame: number): Buffer {
  const parts: Buffer[] = [];
  for (const segment of segments) {
    if (segment.kind === 'frame') {
      const body = Buffer.from(segment.body.subarray(0, maxFrame));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(body.length);
      parts.push(header, body);
    } else if (segment.kind === 'header') {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(segment.length);
      parts.push(header, Buffer.from(segment.tail));
    } else {
      parts.push(Buffer.from(segment.bytes));
    }
  }
  return Buffer.concat(parts);
}

/** Read sizes: single bytes, a few bytes (headers straddle reads), larger reads, or all at once. */
const splits: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 8 }),
  fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 8 }),
  fc.constant<number[]>([1]),
  fc.constant<number[]>([]),
);

/** Scratch buffers of the direct decoder: smaller than a header, than a small frame, or its default. */
const scratch = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(64 * 1024));

function assertMatchesModel(
  decoder: FrameDecoderUnderTest,
  stream: Buffer,
  maxFrame: number,
  fed: Fed,
): void {
  const expected = model(stream, maxFrame);
  assert.ok(
    fed.largest <= maxFrame,
    `${decoder.name} allocated ${fed.largest} bytes with a cap of ${maxFrame}`,
  );
  if (fed.error && !isProtocolError(fed.error.err)) {
    const err = fed.error.err;
    assert.fail(
      `${decoder.name} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
    );
  }
  assert.deepStrictEqual(fed.frames.length, expected.frames.length, 'frames decoded');
  fed.frames.forEach((frame, i) => assert.ok(frame.equals(expected.frames[i]!), `frame ${i} differs`));
  if (expected.errorAt === undefined) {
    assert.equal(fed.error, undefined, 'refused a valid stream');
    assert.equal(fed.midFrame, expected.midFrame, 'midFrame');
  } else {
    assert.ok(fed.error, `accepted a bad header ending at ${expected.errorAt}`);
    const { from, to, err } = fed.error;
    assert.ok(
      from <= expected.errorAt && expected.errorAt < to,
      `refused bytes ${from}..${to}, the bad header ends at ${expected.errorAt}`,
    );
    assert.equal(err instanceof FrameTooLargeError, expected.tooLarge, 'FrameTooLargeError iff over the cap');
  }
}

export function frameProperties(): FuzzProperty[] {
  return frameDecodersUnderTest.flatMap((decoder) => [
    defineProperty(
      decoder.name,
      'valid frames split and cut anywhere decode to the bodies sent',
      100,
      record({
        cap,
        segments: fc.array(frameSegment, { maxLength: 8 }),
        cut: fc.option(fc.nat(), { nil: undefined }),
        splits,
        scratch,
      }),
      (input) => {
        let stream = streamOf(input.segments, input.cap);
        if (input.cut !== undefined) stream = stream.subarray(0, input.cut % (stream.length + 1));
        const fed = decoder.feed(stream, input.cap, input.splits, input.scratch);
        assertMatchesModel(decoder, stream, input.cap, fed);
      },
    ),
    defineProperty(
      decoder.name,
      'hostile streams: frames within the cap, or a ProtocolError at the bad header',
      150,
      record({ cap, segments: fc.array(hostileSegment, { maxLength: 8 }), splits, scratch }),
      (input) => {
        const stream = streamOf(input.segments, input.cap);
        assertMatchesModel(
          decoder,
          stream,
          input.cap,
          decoder.feed(stream, input.cap, input.splits, input.scratch),
        );
      },
    ),
    defineProperty(
      decoder.name,
      'an over-cap length is refused at its 4th header byte, before allocating',
      100,
      record({
        cap: fc.integer({ min: 1, max: 1 << 20 }),
        before: fc.array(frameSegment, { maxLength: 3 }),
        excess: fc.oneof(u32, fc.constant(1)),
        tail: fc.uint8Array({ maxLength: 64 }),
        splits,
        scratch,
      }),
      (input) => {
        const length = Math.min(0xffffffff, input.cap + Math.max(1, input.excess));
        const stream = streamOf([...input.before, { kind: 'header', length, tail: input.tail }], input.cap);
        const fed = decoder.feed(stream, input.cap, input.splits, input.scratch);
        assertMatchesModel(decoder, stream, input.cap, fed);
        assert.ok(fed.error?.err instanceof FrameTooLargeError, 'not refused as too large');
        assert.ok(fed.largest <= input.cap);
      },
    ),
  ]);
}
