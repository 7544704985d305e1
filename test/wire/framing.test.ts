import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError } from '../../src/wire/codec.js';
import { FrameDecoder, FrameTooLargeError, encodeFrame, frameHeader } from '../../src/wire/framing.js';

function collect(maxFrame: number): { decoder: FrameDecoder; frames: Buffer[] } {
  const frames: Buffer[] = [];
  // Copy: a frame may be a view into the data that was pushed.
  const decoder = new FrameDecoder(maxFrame, (body) => frames.push(Buffer.from(body)));
  return { decoder, frames };
}

/** A small seeded generator, so a failing split can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

function bodies(): Buffer[] {
  const next = random(7);
  // Bodies over GROWN_BODY_MIN_BYTES are allocated as they arrive: one grows once, one twice.
  const grown = Buffer.alloc(150_000);
  for (let i = 0; i < grown.length; i++) grown[i] = i % 251;
  const out = [Buffer.from('a'), Buffer.from('hello'), Buffer.alloc(70_000, 0x5a), grown];
  for (let i = 0; i < 20; i++) {
    const body = Buffer.alloc(1 + Math.floor(next() * 300));
    for (let j = 0; j < body.length; j++) body[j] = Math.floor(next() * 256);
    out.push(body);
  }
  return out;
}

describe('framing', () => {
  test('a frame is a u32 big-endian length and the body', () => {
    assert.equal(encodeFrame(Buffer.from('abc')).toString('hex'), '00000003616263');
    assert.equal(frameHeader(0x01020304).toString('hex'), '01020304');
  });

  test('decodes frames fed all at once', () => {
    const sent = bodies();
    const { decoder, frames } = collect(1 << 20);
    decoder.push(Buffer.concat(sent.map(encodeFrame)));
    assert.deepEqual(frames, sent);
    assert.equal(decoder.midFrame, false);
  });

  test('decodes frames fed byte by byte', () => {
    const sent = bodies();
    const stream = Buffer.concat(sent.map(encodeFrame));
    const { decoder, frames } = collect(1 << 20);
    for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1));
    assert.deepEqual(frames, sent);
  });

  test('decodes frames fed in random splits', () => {
    const sent = bodies();
    const stream = Buffer.concat(sent.map(encodeFrame));
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const { decoder, frames } = collect(1 << 20);
      for (let at = 0; at < stream.length;) {
        const size = 1 + Math.floor(next() * (seed % 2 ? 16 : 5000));
        decoder.push(stream.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(frames, sent, `seed ${seed}`);
    }
  });

  test('midFrame tells a partial frame from a clean boundary', () => {
    const { decoder } = collect(100);
    decoder.push(Buffer.from('0000', 'hex'));
    assert.equal(decoder.midFrame, true);
    decoder.push(Buffer.from('000261', 'hex'));
    assert.equal(decoder.midFrame, true);
    decoder.push(Buffer.from('62', 'hex'));
    assert.equal(decoder.midFrame, false);
  });

  test('accepts a frame of exactly the cap', () => {
    const { decoder, frames } = collect(1000);
    decoder.push(encodeFrame(Buffer.alloc(1000, 1)));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.length, 1000);
  });

  test('refuses a frame over the cap from its header alone, before allocating its body', () => {
    for (const length of [1001, 0xffffffff]) {
      const allocations: number[] = [];
      const allocUnsafe = Buffer.allocUnsafe;
      Buffer.allocUnsafe = (size: number) => {
        allocations.push(size);
        return allocUnsafe(size);
      };
      try {
        // Fed as a lone header, and byte by byte: no body bytes ever arrive.
        assert.throws(() => collect(1000).decoder.push(frameHeader(length)), FrameTooLargeError);
        const { decoder } = collect(1000);
        const header = frameHeader(length);
        for (let i = 0; i < 3; i++) decoder.push(header.subarray(i, i + 1));
        assert.throws(
          () => decoder.push(header.subarray(3)),
          (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_PROTOCOL',
        );
      } finally {
        Buffer.allocUnsafe = allocUnsafe;
      }
      assert.deepEqual(
        allocations.filter((size) => size >= 1000),
        [],
      );
    }
  });

  test('refuses an empty frame', () => {
    assert.throws(() => collect(100).decoder.push(frameHeader(0)), ProtocolError);
  });
});
