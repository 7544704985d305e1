/**
 * The properties every binary message codec is fuzzed with (see test/fuzz/targets.ts for the codecs):
 *
 *   random bytes        random bytes (bare, or after a valid type byte or magic) decode to a message that
 *                       re-encodes to exactly those bytes, or are refused with a ProtocolError
 *   round trip          every generated message encodes and decodes back to itself
 *   truncated           a valid encoding cut at every length is refused with a ProtocolError
 *   trailing bytes      a valid encoding followed by anything is refused (unless its last field runs
 *                       to the end of the frame, like a PIECE's data)
 *   mutated             bit flips, overwrites, insertions, deletions: decoded and re-encoded
 *                       consistently, or refused
 *   huge lengths        a u8/u16/u32 anywhere set to a huge count, length or size: refused (or still
 *                       consistent) without allocating beyond allocationBound(input)
 *
 * Every decode goes through decodeHostile(): nothing but a ProtocolError, no allocation beyond the
 * input's size, no slow decode.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  assertRefused,
  decodeHostile,
  defineProperty,
  describeBytes,
  hugeMutation,
  mutate,
  mutations,
  type FuzzProperty,
} from './harness.js';

export interface FuzzCodec<M> {
  /** The decoder's name in reports. */
  decoder: string;
  /** What to prefix property names with, when one decoder has several codecs (the handshake's). */
  label?: string;
  decode(bytes: Buffer): M;
  encode(message: M): Buffer;
  /** Valid messages of every type the codec has. */
  messages: fc.Arbitrary<M>;
  /** What random inputs may start with, to get past the first check: type bytes, a magic. */
  prefixes: Buffer[];
  /** Longest random input (default 256 bytes after the prefix). */
  maxRandomBytes?: number;
  /** For a message whose last field is the rest of the frame: the bytes that must be present. */
  fixedPart?(message: M): number | undefined;
  /**
   * Encodes a message that was decoded from hostile bytes (default: encode). A decoded message must
   * re-encode to exactly the bytes it came from: the layouts have one encoding per message.
   */
  reencode?(message: M): Buffer;
  /** Checks what any decoded message must satisfy (beyond re-encoding); throws if it does not. */
  invariants?(message: M, bytes: Buffer): void;
  /** Inputs per property in the default test suite (default 150). */
  runs?: number;
}

/** Decodes hostile bytes; a message that decodes must re-encode to the same bytes and hold its invariants. */
function checkHostile<M>(codec: FuzzCodec<M>, bytes: Buffer): void {
  const outcome = decodeHostile((b) => codec.decode(b), bytes);
  if (!outcome.ok) return;
  const again = (codec.reencode ?? codec.encode)(outcome.message);
  assert.ok(again.equals(bytes), `decoded ${describeBytes(bytes)}, re-encoded as ${describeBytes(again)}`);
  codec.invariants?.(outcome.message, bytes);
}

export function codecProperties<M>(codec: FuzzCodec<M>): FuzzProperty[] {
  const runs = codec.runs ?? 150;
  const define = <T>(name: string, scale: number, inputs: fc.Arbitrary<T>, predicate: (input: T) => void) =>
    defineProperty(
      codec.decoder,
      codec.label ? `${codec.label}: ${name}` : name,
      Math.max(10, Math.round(runs * scale)),
      inputs,
      predicate,
    );
  const randomBytes = fc
    .tuple(
      fc.constantFrom(Buffer.alloc(0), ...codec.prefixes),
      fc.uint8Array({ maxLength: codec.maxRandomBytes ?? 256 }),
    )
    .map(([prefix, rest]) => Buffer.concat([prefix, rest]));
  return [
    define('random bytes: a consistent message or a ProtocolError', 1, randomBytes, (bytes) =>
      checkHostile(codec, bytes),
    ),
    define('valid messages round-trip', 1, codec.messages, (message) => {
      const encoded = codec.encode(message);
      const decoded = decodeHostile((b) => codec.decode(b), encoded);
      assert.ok(
        decoded.ok,
        `refused its own encoding ${describeBytes(encoded)}: ${!decoded.ok && decoded.error.message}`,
      );
      assert.deepStrictEqual(decoded.message, message);
      codec.invariants?.(decoded.message, encoded);
    }),
    define('valid encodings cut at every length are refused', 0.5, codec.messages, (message) => {
      const encoded = codec.encode(message);
      const cuts = codec.fixedPart?.(message) ?? encoded.length;
      for (let cut = 0; cut < cuts; cut++) {
        assertRefused((b) => codec.decode(b), encoded.subarray(0, cut), `cut at ${cut} of ${encoded.length}`);
      }
    }),
    define(
      'trailing bytes are refused',
      0.5,
      fc.tuple(codec.messages, fc.uint8Array({ minLength: 1, maxLength: 16 })),
      ([message, extra]) => {
        if (codec.fixedPart?.(message) !== undefined) return; // the extra bytes are part of its last field
        assertRefused(
          (b) => codec.decode(b),
          Buffer.concat([codec.encode(message), extra]),
          'trailing bytes',
        );
      },
    ),
    define(
      'mutated encodings: a consistent message or a ProtocolError',
      2,
      fc.tuple(codec.messages, mutations),
      ([message, list]) => checkHostile(codec, mutate(codec.encode(message), list)),
    ),
    define(
      'huge counts, lengths and sizes: refused without allocating',
      1,
      fc.tuple(codec.messages, fc.array(hugeMutation, { minLength: 1, maxLength: 2 })),
      ([message, list]) => checkHostile(codec, mutate(codec.encode(message), list)),
    ),
  ];
}
