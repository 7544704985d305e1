import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError, Reader, Writer } from '../../src/wire/codec.js';

/** The value of a thrown ProtocolError's code, checked to be our error and nothing else. */
function isProtocolError(err: unknown): boolean {
  return err instanceof ProtocolError && err.code === 'ERR_PROTOCOL';
}

function readGolden(r: Reader): unknown[] {
  const values = [r.u8(), r.u16(), r.u32(), r.u64(), r.str(10), r.blob(4), r.bytes(2)];
  r.end();
  return values;
}

// u8 1 | u16 0x0203 | u32 0x04050607 | u64 2^40+5 | str "hé" | blob 09 09 | fixed aa bb
const GOLDEN = Buffer.from(
  '01' + '0203' + '04050607' + '0000010000000005' + '0003' + '68c3a9' + '00000002' + '0909' + 'aabb',
  'hex',
);

describe('Writer', () => {
  test('writes every primitive big-endian, as documented', () => {
    const bytes = new Writer(4)
      .u8(1)
      .u16(0x0203)
      .u32(0x04050607)
      .u64(2 ** 40 + 5)
      .str('hé', 10)
      .blob(Buffer.from([9, 9]), 4)
      .fixed(Buffer.from([0xaa, 0xbb]), 2)
      .finish();
    assert.equal(bytes.toString('hex'), GOLDEN.toString('hex'));
  });

  test('grows past its initial size without losing bytes', () => {
    const w = new Writer(8);
    for (let i = 0; i < 10_000; i++) w.u32(i);
    assert.equal(w.length, 40_000);
    const r = new Reader(w.finish());
    for (let i = 0; i < 10_000; i++) assert.equal(r.u32(), i);
    r.end();
  });

  test('refuses values that cannot be encoded', () => {
    assert.throws(() => new Writer().str('abcde', 4), RangeError);
    assert.throws(() => new Writer().blob(Buffer.alloc(5), 4), RangeError);
    assert.throws(() => new Writer().fixed(Buffer.alloc(31), 32), RangeError);
    assert.throws(() => new Writer().u64(-1), RangeError);
    assert.throws(() => new Writer().u64(2 ** 53), RangeError);
  });

  test('the largest safe integer round-trips as u64', () => {
    const r = new Reader(new Writer().u64(Number.MAX_SAFE_INTEGER).finish());
    assert.equal(r.u64(), Number.MAX_SAFE_INTEGER);
  });
});

describe('Reader', () => {
  test('reads the documented layout back', () => {
    assert.deepEqual(readGolden(new Reader(GOLDEN)), [
      1,
      0x0203,
      0x04050607,
      2 ** 40 + 5,
      'hé',
      Buffer.from([9, 9]),
      Buffer.from([0xaa, 0xbb]),
    ]);
  });

  test('input cut at any point throws ProtocolError and nothing else', () => {
    for (let cut = 0; cut < GOLDEN.length; cut++) {
      assert.throws(() => readGolden(new Reader(GOLDEN.subarray(0, cut))), isProtocolError, `cut at ${cut}`);
    }
  });

  test('refuses trailing bytes', () => {
    const extra = Buffer.concat([GOLDEN, Buffer.from([0])]);
    assert.throws(() => readGolden(new Reader(extra)), isProtocolError);
  });

  test('refuses a u64 above 2^53 - 1', () => {
    assert.equal(new Reader(Buffer.from('001fffffffffffff', 'hex')).u64(), Number.MAX_SAFE_INTEGER);
    assert.throws(() => new Reader(Buffer.from('0020000000000000', 'hex')).u64(), isProtocolError);
    assert.throws(() => new Reader(Buffer.from('ffffffffffffffff', 'hex')).u64(), isProtocolError);
  });

  test('refuses a string or blob longer than its cap even when the bytes are there', () => {
    const str = Buffer.from('0005' + '68656c6c6f', 'hex');
    assert.equal(new Reader(str).str(5), 'hello');
    assert.throws(() => new Reader(str).str(4), isProtocolError);
    const blob = Buffer.from('00000005' + '0102030405', 'hex');
    assert.equal(new Reader(blob).blob(5).length, 5);
    assert.throws(() => new Reader(blob).blob(4), isProtocolError);
  });

  test('refuses a huge declared length with ProtocolError, not a RangeError or an allocation', () => {
    const huge = Buffer.from('ffffffff', 'hex');
    assert.throws(() => new Reader(huge).blob(1024), isProtocolError);
    assert.throws(() => new Reader(huge).count(32, 1024), isProtocolError);
    assert.throws(() => new Reader(Buffer.from('ffff', 'hex')).str(255), isProtocolError);
    assert.throws(() => new Reader(huge).bytes(0xffffffff), isProtocolError);
  });

  test('counts are checked against their maximum before any element is read', () => {
    assert.equal(new Reader(Buffer.from('0010', 'hex')).count(16, 16), 16);
    assert.throws(() => new Reader(Buffer.from('0011', 'hex')).count(16, 16), isProtocolError);
    assert.throws(() => new Reader(Buffer.from('05', 'hex')).count(8, 4), isProtocolError);
  });

  test('refuses invalid UTF-8 but keeps a real U+FFFD', () => {
    assert.throws(() => new Reader(Buffer.from('0002fffe', 'hex')).str(10), isProtocolError);
    assert.throws(() => new Reader(Buffer.from('0002c0af', 'hex')).str(10), isProtocolError); // overlong '/'
    assert.throws(() => new Reader(Buffer.from('000261e2', 'hex')).str(10), isProtocolError); // truncated
    assert.throws(() => new Reader(Buffer.from('0002e282', 'hex')).str(10), isProtocolError); // cut char
    assert.equal(new Reader(Buffer.from('0003efbfbd', 'hex')).str(10), '\uFFFD');
    assert.equal(new Reader(Buffer.from('0004f09f9880', 'hex')).str(10), '\u{1F600}');
  });

  test('copy() detaches from the frame, bytes() is a view', () => {
    const frame = Buffer.from('01020304', 'hex');
    const view = new Reader(frame).bytes(2);
    const copy = new Reader(frame).copy(2);
    frame[0] = 0xff;
    assert.equal(view[0], 0xff);
    assert.equal(copy[0], 0x01);
  });
});
