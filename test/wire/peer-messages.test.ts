import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MAX_CHUNKS,
  MAX_CHUNK_SIZE,
  MAX_FILE_SIZE,
  MAX_OFFERS,
  MAX_PEER_CONTROL_FRAME,
  MIN_CHUNK_SIZE,
} from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { Writer } from '../../src/wire/codec.js';
import { assertGoldenBytes, codecConformance, isProtocolError } from '../helpers/codec-conformance.js';
import {
  PeerType,
  decodePeerMessage,
  encodePeerMessage,
  offerBytes,
  offersThatFit,
  type Offer,
  type PeerMessage,
} from '../../src/wire/peer-messages.js';

const hex = (byte: string, count: number): string => byte.repeat(count);
const filled = (byte: number, length = 32): Buffer => Buffer.alloc(length, byte);

function bits(size: number, ...set: number[]): Bitfield {
  const field = new Bitfield(size);
  for (const index of set) field.set(index);
  return field;
}

function offer(byte: number, name: string, chunks: number, ...set: number[]): Offer {
  const size = Math.max(0, chunks * MIN_CHUNK_SIZE - 1);
  return { fileId: filled(byte), name, size, chunkSize: MIN_CHUNK_SIZE, chunks: bits(chunks, ...set) };
}

const manifest = { id: filled(0x33), name: 'f', size: 5, chunkSize: MIN_CHUNK_SIZE, hashes: filled(0x44) };

/** One message of every type, with non-trivial contents. */
function samples(): PeerMessage[] {
  return [
    { type: 'request', req: 1, fileId: filled(1), index: 0xffffffff },
    { type: 'cancel', req: 2 },
    { type: 'info', peerId: filled(3), name: 'zoë', port: 65535 },
    { type: 'info', peerId: filled(4), name: '', port: 0 },
    { type: 'offers', offers: [offer(5, 'a.bin', 9, 0, 8), offer(6, 'b', 1, 0), offer(7, 'empty', 0)] },
    { type: 'offers', offers: [] },
    { type: 'have', fileId: filled(8), index: 4095 },
    {
      type: 'peers',
      peers: [
        { host: '10.0.0.1', port: 1 },
        { host: 'fe80::1%eth0', port: 65535 },
      ],
    },
    { type: 'peers', peers: [] },
    { type: 'get_manifest', req: 9, fileId: filled(9) },
    { type: 'choke' },
    { type: 'unchoke' },
    { type: 'piece', req: 10, index: 11, data: Buffer.from('chunk bytes') },
    { type: 'reject', req: 12, code: 'ERR_UNKNOWN_FILE', message: 'no such file' },
    { type: 'manifest', req: 13, manifest },
  ];
}

describe('peer messages', () => {
  test('golden bytes, written from the documented layouts', () => {
    const cases: [PeerMessage, string][] = [
      [
        { type: 'request', req: 1, fileId: filled(0x77), index: 3 },
        '30' + '00000001' + hex('77', 32) + '00000003',
      ],
      [{ type: 'cancel', req: 9 }, '31' + '00000009'],
      [
        { type: 'info', peerId: filled(0x11), name: 'al', port: 8080 },
        '32' + hex('11', 32) + '0002' + '616c' + '1f90',
      ],
      [
        { type: 'offers', offers: [offer(0x22, 'f', 1, 0)] },
        '33' +
          '0001' +
          hex('22', 32) +
          '0001' +
          '66' +
          '000000000003ffff' + // size: one chunk of 256 KiB less one byte
          '00040000' +
          '00000001' +
          '80',
      ],
      [
        // Nine chunks: two bitfield bytes, chunks 0 and 8 held, the seven spare bits zero.
        { type: 'offers', offers: [offer(0x44, 'ab', 9, 0, 8)] },
        '33' +
          '0001' +
          hex('44', 32) +
          '0002' +
          '6162' +
          '000000000023ffff' +
          '00040000' +
          '00000002' +
          '8080',
      ],
      [{ type: 'have', fileId: filled(0x55), index: 258 }, '34' + hex('55', 32) + '00000102'],
      [
        {
          type: 'peers',
          peers: [
            { host: '1.2.3.4', port: 9 },
            { host: '::1', port: 65535 },
          ],
        },
        '35' + '0002' + '0007' + '312e322e332e34' + '0009' + '0003' + '3a3a31' + 'ffff',
      ],
      [{ type: 'get_manifest', req: 7, fileId: filled(0x66) }, '36' + '00000007' + hex('66', 32)],
      [{ type: 'choke' }, '37'],
      [{ type: 'unchoke' }, '38'],
      [
        { type: 'piece', req: 2, index: 4, data: Buffer.from('abc') },
        '40' + '00000002' + '00000004' + '616263',
      ],
      [
        { type: 'reject', req: 3, code: 'ERR_X', message: 'no' },
        '41' + '00000003' + '0005' + '4552525f58' + '0002' + '6e6f',
      ],
      [
        { type: 'manifest', req: 5, manifest },
        '42' +
          '00000005' +
          hex('33', 32) +
          '0001' +
          '66' +
          '0000000000000005' +
          '00040000' +
          '00000020' +
          hex('44', 32),
      ],
    ];
    assertGoldenBytes({ encode: encodePeerMessage, decode: decodePeerMessage }, cases);
  });

  codecConformance({
    encode: encodePeerMessage,
    decode: decodePeerMessage,
    samples,
    typeCount: Object.keys(PeerType).length,
    // A PIECE's data is the rest of the frame: only its 9-byte header must be whole.
    fixedPart: (msg) => (msg.type === 'piece' ? 9 : undefined),
  });

  test('random bytes decode or throw ProtocolError, nothing else', () => {
    const types = Object.values(PeerType);
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
    for (let i = 0; i < 3000; i++) {
      const body = Buffer.alloc(1 + (next() % 80));
      for (let k = 0; k < body.length; k++) body[k] = next() & 0xff;
      body[0] = types[next() % types.length]!;
      try {
        decodePeerMessage(body);
      } catch (err) {
        assert.ok(isProtocolError(err), `body ${body.toString('hex')}: ${String(err)}`);
      }
    }
  });

  test('an unknown message type is refused', () => {
    assert.throws(() => decodePeerMessage(Buffer.from('3f00000001', 'hex')), isProtocolError);
  });

  test('counts and lengths over their caps are refused before anything is allocated', () => {
    // Only the count is present: refused on the count itself, not on the missing elements.
    assert.throws(
      () =>
        decodePeerMessage(
          new Writer()
            .u8(PeerType.OFFERS)
            .u16(MAX_OFFERS + 1)
            .finish(),
        ),
      (err: unknown) =>
        isProtocolError(err) && /offer count of 1001 exceeds 1000/.test((err as Error).message),
    );
    assert.throws(
      () => decodePeerMessage(new Writer().u8(PeerType.PEERS).u16(51).finish()),
      (err: unknown) => isProtocolError(err) && /peer count of 51 exceeds 50/.test((err as Error).message),
    );
    const hugeBitfield = new Writer().u8(PeerType.OFFERS).u16(1).fixed(filled(1), 32).str('f', 255);
    hugeBitfield.u64(5).u32(MIN_CHUNK_SIZE).u32(0xffffffff);
    assert.throws(() => decodePeerMessage(hugeBitfield.finish()), /bitfield of 4294967295 bytes exceeds/);
    const hugeHashes = new Writer().u8(PeerType.MANIFEST).u32(1).fixed(filled(1), 32).str('f', 255);
    hugeHashes
      .u64(5)
      .u32(MIN_CHUNK_SIZE)
      .u32(MAX_CHUNKS * 32 + 1);
    assert.throws(() => decodePeerMessage(hugeHashes.finish()), /chunk hashes of 2097153 bytes exceeds/);
    const longName = new Writer()
      .u8(PeerType.INFO)
      .fixed(filled(1), 32)
      .u16(65)
      .bytes(Buffer.alloc(65, 0x61));
    assert.throws(() => decodePeerMessage(longName.u16(1).finish()), isProtocolError);
    const longHost = new Writer().u8(PeerType.PEERS).u16(1).u16(256).bytes(Buffer.alloc(256, 0x61));
    assert.throws(() => decodePeerMessage(longHost.u16(1).finish()), isProtocolError);
  });

  test('an offer is checked as the tracker checks a location', () => {
    const one = (o: {
      name?: string;
      size?: number;
      chunkSize?: number;
      bits?: Buffer;
      id?: Buffer;
    }): Buffer => {
      const w = new Writer().u8(PeerType.OFFERS).u16(1);
      w.fixed(o.id ?? filled(1), 32)
        .str(o.name ?? 'f', 255)
        .u64(o.size ?? 5);
      w.u32(o.chunkSize ?? MIN_CHUNK_SIZE).blob(o.bits ?? Buffer.from([0x80]), 8192);
      return w.finish();
    };
    assert.equal(decodePeerMessage(one({})).type, 'offers');
    const refused: [string, Buffer][] = [
      ['a spare bit set', one({ bits: Buffer.from([0x40]) })],
      ['a bitfield too long', one({ bits: Buffer.from([0x80, 0]) })],
      ['a bitfield too short', one({ bits: Buffer.alloc(0) })],
      ['a chunk size of 0', one({ chunkSize: 0 })],
      ['a chunk size not a power of two', one({ chunkSize: MIN_CHUNK_SIZE + 1 })],
      ['a chunk size below the minimum', one({ chunkSize: MIN_CHUNK_SIZE / 2 })],
      ['a chunk size above the maximum', one({ chunkSize: MAX_CHUNK_SIZE * 2 })],
      ['a size over the maximum', one({ size: MAX_FILE_SIZE + 1, chunkSize: MAX_CHUNK_SIZE })],
      ['too many chunks', one({ size: (MAX_CHUNKS + 1) * MIN_CHUNK_SIZE, bits: Buffer.alloc(8192) })],
      ['a path for a name', one({ name: '../etc/passwd' })],
      ['an empty name', one({ name: '' })],
      ['a control character in the name', one({ name: 'a\u0007b' })],
    ];
    for (const [why, body] of refused) assert.throws(() => decodePeerMessage(body), isProtocolError, why);
    const twice = new Writer().u8(PeerType.OFFERS).u16(2);
    for (let i = 0; i < 2; i++)
      twice
        .fixed(filled(1), 32)
        .str('f', 255)
        .u64(5)
        .u32(MIN_CHUNK_SIZE)
        .blob(Buffer.from([0x80]), 1);
    assert.throws(() => decodePeerMessage(twice.finish()), /offered twice/);
  });

  test('the encoder refuses what the decoder would refuse', () => {
    const many = Array.from({ length: MAX_OFFERS + 1 }, (_, i) => offer(i & 0xff, `f${i}`, 1));
    assert.throws(() => encodePeerMessage({ type: 'offers', offers: many }), RangeError);
    const wrongBits = { ...offer(1, 'f', 3), chunks: new Bitfield(2) };
    assert.throws(() => encodePeerMessage({ type: 'offers', offers: [wrongBits] }), RangeError);
    const peers = Array.from({ length: 51 }, (_, i) => ({ host: 'h', port: i + 1 }));
    assert.throws(() => encodePeerMessage({ type: 'peers', peers }), RangeError);
    assert.throws(
      () => encodePeerMessage({ type: 'info', peerId: filled(1, 31), name: '', port: 0 }),
      RangeError,
    );
    assert.throws(
      () => encodePeerMessage({ type: 'info', peerId: filled(1), name: 'x'.repeat(65), port: 0 }),
      RangeError,
    );
  });

  test('offersThatFit keeps the longest prefix within the count and the frame', () => {
    const many = Array.from({ length: MAX_OFFERS + 200 }, (_, i) => offer(i & 0xff, `file-${i}`, 1, 0));
    const byCount = offersThatFit(many);
    assert.equal(byCount.length, MAX_OFFERS);
    assert.equal(byCount[999], many[999]);
    assert.ok(encodePeerMessage({ type: 'offers', offers: byCount }).length <= MAX_PEER_CONTROL_FRAME);

    // Offers of the largest files (8 KiB bitfields) fill a control frame long before 1000 of them.
    const big = Array.from({ length: 300 }, (_, i) => ({
      fileId: filled(i & 0xff),
      name: `big-${i}`,
      size: MAX_CHUNKS * MIN_CHUNK_SIZE,
      chunkSize: MIN_CHUNK_SIZE,
      chunks: Bitfield.full(MAX_CHUNKS),
    }));
    const fit = offersThatFit(big);
    const frame = encodePeerMessage({ type: 'offers', offers: fit });
    assert.ok(fit.length > 200 && fit.length < 300, `${fit.length} offers fit`);
    assert.ok(frame.length <= MAX_PEER_CONTROL_FRAME);
    assert.ok(frame.length + offerBytes(big[fit.length]!) > MAX_PEER_CONTROL_FRAME);
    assert.equal(frame.length, 3 + fit.reduce((sum, o) => sum + offerBytes(o), 0));
    assert.equal(offersThatFit(big, 3).length, 0);
  });
});
