/**
 * The machinery shared by the fuzz properties (test/fuzz/targets.ts), the default-run suite
 * (test/fuzz/decoders.test.ts) and the long run (`npm run fuzz`, test/fuzz/run.ts):
 *
 *   - decodeHostile(): decodes untrusted bytes, and fails the property if the decoder throws anything
 *     but our ProtocolError (code ERR_PROTOCOL), allocates a Buffer larger than the input could
 *     justify, or takes longer than a decode ever should;
 *   - mutations: bit flips, byte overwrites, insertions, deletions, truncations, appends, and u8/u16/u32
 *     fields overwritten with huge values, applied to valid encodings;
 *   - UTF-8 string arbitraries bounded in bytes (as the wire bounds them), with no lone surrogates;
 *   - FuzzProperty: one named property of one decoder, runnable by node:test or by the long run.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../src/wire/codec.js';

// ---- Properties ------------------------------------------------------------------------------------

export interface CheckOutcome {
  failed: boolean;
  /** Inputs tried (up to and including the first failure). */
  numRuns: number;
  seed: number;
  /** fast-check's report of a failure: the seed, the path and the counterexample. */
  report: string | undefined;
}

/** One property of one decoder. */
export interface FuzzProperty {
  decoder: string;
  name: string;
  /** Inputs tried by the default test suite: small, so that `npm test` stays fast. */
  runs: number;
  /** Throws fast-check's report (with the seed to replay it) on failure. */
  assert(params: { numRuns: number; seed?: number }): void;
  check(params: { numRuns: number; seed?: number }): CheckOutcome;
}

export function defineProperty<T>(
  decoder: string,
  name: string,
  runs: number,
  inputs: fc.Arbitrary<T>,
  predicate: (input: T) => void,
): FuzzProperty {
  const property = fc.property(inputs, (input) => {
    predicate(input);
  });
  return {
    decoder,
    name,
    runs,
    assert: (params) => fc.assert(property, params),
    check: (params) => {
      const details = fc.check(property, params);
      return {
        failed: details.failed,
        numRuns: details.numRuns,
        seed: details.seed,
        report: details.failed ? fc.defaultReportMessage(details) : undefined,
      };
    },
  };
}

// ---- Decoding hostile bytes ------------------------------------------------------------------------

export const isProtocolError = (err: unknown): boolean =>
  err instanceof ProtocolError && err.code === 'ERR_PROTOCOL';

/**
 * The largest Buffer a decoder may allocate for an input of `inputBytes`: copies of parts of the input,
 * and the UTF-8 re-encoding of a string read from it (at most 3 bytes per input byte, for U+FFFD).
 */
export function allocationBound(inputBytes: number): number {
  return 3 * inputBytes + 256;
}

/** A decode slower than this on input this small is a hang in the making (generous: loaded CI). */
export const MAX_DECODE_MS = 1_000;

type BufferFactory = 'alloc' | 'allocUnsafe' | 'allocUnsafeSlow' | 'from' | 'concat';
const FACTORIES: BufferFactory[] = ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from', 'concat'];

/**
 * Runs `fn` with Buffer's factories watched, returning the size of the largest Buffer it made.
 * (SharedArrayBuffer-backed Buffers are made with Buffer.from and are seen too.)
 */
export function largestAllocation<T>(fn: () => T): { value: T; largest: number } {
  const factories = Buffer as unknown as Record<BufferFactory, (...args: unknown[]) => Buffer>;
  const originals = new Map(FACTORIES.map((name) => [name, factories[name]] as const));
  let largest = 0;
  for (const [name, original] of originals) {
    factories[name] = function watched(...args: unknown[]): Buffer {
      const made = original.apply(Buffer, args);
      if (made.length > largest) largest = made.length;
      return made;
    };
  }
  try {
    return { value: fn(), largest };
  } finally {
    for (const [name, original] of originals) factories[name] = original;
  }
}

export type Decoded<M> = { ok: true; message: M } | { ok: false; error: ProtocolError };

/**
 * Decodes untrusted bytes. Fails (throws an AssertionError) unless the decoder returned or threw a
 * ProtocolError, within MAX_DECODE_MS, having allocated no Buffer beyond allocationBound().
 */
export function decodeHostile<M>(decode: (bytes: Buffer) => M, bytes: Buffer): Decoded<M> {
  const started = performance.now();
  const { value: outcome, largest } = largestAllocation((): Decoded<M> | { thrown: unknown } => {
    try {
      return { ok: true, message: decode(bytes) };
    } catch (err) {
      if (isProtocolError(err)) return { ok: false, error: err as ProtocolError };
      return { thrown: err };
    }
  });
  const elapsed = performance.now() - started;
  if ('thrown' in outcome) {
    const err = outcome.thrown;
    assert.fail(
      `the decoder threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} ` +
        `(not a ProtocolError) for ${describeBytes(bytes)}`,
    );
  }
  assert.ok(
    largest <= allocationBound(bytes.length),
    `the decoder allocated ${largest} bytes for an input of ${bytes.length}: ${describeBytes(bytes)}`,
  );
  assert.ok(elapsed <= MAX_DECODE_MS, `decoding took ${elapsed.toFixed(0)} ms: ${describeBytes(bytes)}`);
  return outcome;
}

/** Asserts that decoding `bytes` is refused with a ProtocolError (and nothing else). */
export function assertRefused<M>(decode: (bytes: Buffer) => M, bytes: Buffer, what: string): void {
  const outcome = decodeHostile(decode, bytes);
  assert.ok(!outcome.ok, `${what}: decoded ${describeBytes(bytes)} instead of refusing it`);
}

export function describeBytes(bytes: Buffer): string {
  const hex = bytes.subarray(0, 96).toString('hex');
  return `${bytes.length} bytes ${hex}${bytes.length > 96 ? '...' : ''}`;
}

// ---- Mutations -------------------------------------------------------------------------------------

/** Values that length, count and size fields are set to: the largest, and the just-too-large. */
const HUGE: Record<1 | 2 | 4, number[]> = {
  1: [0xff, 0x80, 0x7f, 0x11, 0x41],
  2: [0xffff, 0x8000, 0x7fff, 0x1001, 0x0401, 0x0100, 0x0033],
  4: [0xffffffff, 0x80000000, 0x7fffffff, 0x01000000, 0x00200001, 0x00400001, 0x00010001, 0x00001001],
};

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'huge'; at: number; width: 1 | 2 | 4; pick: number };

const position = fc.nat({ max: 0xffff });

export const hugeMutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constant('huge' as const),
  at: position,
  width: fc.constantFrom(1 as const, 2 as const, 4 as const),
  pick: fc.nat({ max: 7 }),
});

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat(7) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('set' as const), at: position, value: fc.nat(255) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: position,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      at: position,
      length: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 3, arbitrary: hugeMutation },
);

export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

/** `bytes` with `mutations` applied in order (positions wrap around the current length). */
export function mutate(bytes: Buffer, list: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of list) {
    switch (m.kind) {
      case 'flip':
        if (out.length > 0) out[m.at % out.length]! ^= 1 << m.bit;
        break;
      case 'set':
        if (out.length > 0) out[m.at % out.length] = m.value;
        break;
      case 'insert': {
        const at = m.at % (out.length + 1);
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = out.length > 0 ? m.at % out.length : 0;
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      }
      case 'truncate':
        out = out.subarray(0, m.at % (out.length + 1));
        break;
      case 'append':
        out = Buffer.concat([out, m.bytes]);
        break;
      case 'huge': {
        if (out.length < m.width) break;
        const values = HUGE[m.width];
        const value = values[m.pick % values.length]!;
        const at = m.at % (out.length - m.width + 1);
        if (m.width === 1) out.writeUInt8(value, at);
        else if (m.width === 2) out.writeUInt16BE(value, at);
        else out.writeUInt32BE(value, at);
        break;
      }
    }
  }
  return out;
}

// ---- Values ----------------------------------------------------------------------------------------

export const u8 = fc.nat({ max: 0xff });
export const u16 = fc.nat({ max: 0xffff });
export const u32 = fc.nat({ max: 0xffffffff });
export const u64 = fc.maxSafeNat();

export function bytes(length: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ minLength: length, maxLength: length }).map((b) => Buffer.from(b));
}

export function blob(maxLength: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
}

/** The longest prefix of `text`, in whole code points, that fits `maxBytes` of UTF-8. */
export function fitUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let used = 0;
  let out = '';
  for (const codePoint of text) {
    const size = Buffer.byteLength(codePoint, 'utf8');
    if (used + size > maxBytes) break;
    used += size;
    out += codePoint;
  }
  return out;
}

/**
 * Strings of at most `maxBytes` of UTF-8: ASCII, any code point (controls, U+FFFD, astral planes), and
 * graphemes; now and then one filling the limit exactly.
 */
export function utf8(maxBytes: number, maxChars = Math.min(maxBytes, 48)): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: maxChars }) },
      { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: maxChars }) },
      { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: maxChars }) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('x', 'é', '€', '😀')
          .map((unit) => fitUtf8(unit.repeat(maxBytes), maxBytes)),
      },
    )
    .map((text) => fitUtf8(text, maxBytes));
}

/** fc.record, with plain objects (as decoders make them), so that deepStrictEqual compares them. */
export function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}
