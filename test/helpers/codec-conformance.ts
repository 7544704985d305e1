/**
 * The checks every wire codec must pass, as one suite that each message codec runs: every type
 * round-trips; a message cut anywhere throws our ProtocolError and nothing else; trailing bytes
 * are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../src/wire/codec.js';

export const isProtocolError = (err: unknown): boolean =>
  err instanceof ProtocolError && err.code === 'ERR_PROTOCOL';

export interface CodecUnderTest<M extends { type: string }> {
  encode(message: M): Buffer;
  decode(body: Buffer): M;
  /** One or more messages of every type the codec has. */
  samples(): M[];
  /** How many message types the codec has: the samples must cover them all. */
  typeCount: number;
  /**
   * For a message whose last field is "the rest of the frame" (a PIECE's data): the bytes that
   * must be present. Cuts past them are a shorter payload, not a truncation, and trailing bytes
   * are part of it.
   */
  fixedPart?(message: M): number | undefined;
}

/** Each message encodes to exactly the bytes written by hand from the layout, and decodes back. */
export function assertGoldenBytes<M extends { type: string }>(
  codec: Pick<CodecUnderTest<M>, 'encode' | 'decode'>,
  cases: [message: M, expectedHex: string][],
): void {
  for (const [message, expected] of cases) {
    assert.equal(codec.encode(message).toString('hex'), expected, message.type);
    assert.deepEqual(codec.decode(Buffer.from(expected, 'hex')), message, message.type);
  }
}

export function codecConformance<M extends { type: string }>(codec: CodecUnderTest<M>): void {
  test('every message type round-trips', () => {
    const seen = new Set<string>();
    for (const message of codec.samples()) {
      assert.deepEqual(codec.decode(codec.encode(message)), message, message.type);
      seen.add(message.type);
    }
    assert.equal(seen.size, codec.typeCount);
  });

  test('any truncation throws ProtocolError and nothing else', () => {
    for (const message of codec.samples()) {
      const bytes = codec.encode(message);
      const cuts = codec.fixedPart?.(message) ?? bytes.length;
      for (let cut = 0; cut < cuts; cut++) {
        assert.throws(
          () => codec.decode(bytes.subarray(0, cut)),
          isProtocolError,
          `${message.type} cut at ${cut}`,
        );
      }
    }
  });

  test('trailing bytes are refused', () => {
    for (const message of codec.samples()) {
      if (codec.fixedPart?.(message) !== undefined) continue;
      const bytes = Buffer.concat([codec.encode(message), Buffer.from([0])]);
      assert.throws(() => codec.decode(bytes), isProtocolError, message.type);
    }
  });
}
