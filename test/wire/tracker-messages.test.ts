import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_CHUNKS, MIN_CHUNK_SIZE } from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { Writer } from '../../src/wire/codec.js';
import { assertGoldenBytes, codecConformance, isProtocolError } from '../helpers/codec-conformance.js';
import {
  TrackerType,
  decodeTrackerMessage,
  encodeTrackerMessage,
  type TrackerMessage,
} from '../../src/wire/tracker-messages.js';

const hex = (byte: string, count: number): string => byte.repeat(count);
const filled = (byte: number, length = 32): Buffer => Buffer.alloc(length, byte);

const manifest = {
  id: filled(0x33),
  name: 'f',
  size: 5,
  chunkSize: MIN_CHUNK_SIZE,
  hashes: filled(0x44),
};

/** One message of every type, with non-trivial contents. */
function samples(): TrackerMessage[] {
  const bits = new Bitfield(3);
  bits.set(0);
  bits.set(2);
  const bigManifest = {
    id: filled(1),
    name: 'film.mkv',
    size: 3 * MIN_CHUNK_SIZE - 7,
    chunkSize: MIN_CHUNK_SIZE,
    hashes: filled(2, 96),
  };
  return [
    { type: 'register', req: 1, peerId: filled(0x11), name: 'alice', port: 8081 },
    { type: 'announce', req: 2, manifests: [manifest, bigManifest] },
    { type: 'announce', req: 3, manifests: [] },
    { type: 'unshare', req: 4, fileId: filled(5) },
    { type: 'list', req: 5, query: 'été', limit: 1000 },
    { type: 'locate', req: 6, fileId: filled(6) },
    { type: 'have', req: 7, fileId: filled(7), indices: [0, 1, 0xffffffff] },
    { type: 'ping', req: 8, uploadedBytes: 2 ** 40 + 3 },
    { type: 'leave', req: 0xffffffff },
    { type: 'ok', req: 9 },
    { type: 'error', req: 10, code: 'ERR_UNKNOWN_FILE', message: 'no such file' },
    { type: 'registered', req: 11, host: '::1', port: 65535, heartbeatMs: 10_000, expiryMs: 30_000 },
    {
      type: 'announced',
      req: 12,
      results: [
        { fileId: filled(1), code: '', message: '' },
        { fileId: filled(2), code: 'ERR_BAD_NAME', message: 'bad' },
      ],
    },
    {
      type: 'files',
      req: 13,
      total: 7,
      files: [{ id: filled(3), name: 'a.txt', size: 2 ** 40, chunks: 4096, seeders: 2, peers: 3 }],
    },
    {
      type: 'location',
      req: 14,
      manifest: bigManifest,
      holders: [
        { peerId: filled(9), name: 'bob', host: '10.0.0.2', port: 4000, chunks: bits },
        { peerId: filled(8), name: '', host: 'fe80::1', port: 1, chunks: Bitfield.full(3) },
      ],
    },
  ];
}

describe('tracker messages', () => {
  test('golden bytes, written from the documented layouts', () => {
    const cases: [TrackerMessage, string][] = [
      [{ type: 'ping', req: 7, uploadedBytes: 0x1_0000_0102 }, '16' + '00000007' + '0000000100000102'],
      [
        { type: 'register', req: 1, peerId: filled(0x11), name: 'al', port: 8080 },
        '10' + '00000001' + hex('11', 32) + '0002' + '616c' + '1f90',
      ],
      [
        { type: 'error', req: 2, code: 'ERR_X', message: 'no' },
        '21' + '00000002' + '0005' + '4552525f58' + '0002' + '6e6f',
      ],
      [
        { type: 'have', req: 3, fileId: filled(0x22), indices: [0, 258] },
        '15' + '00000003' + hex('22', 32) + '0002' + '00000000' + '00000102',
      ],
      [{ type: 'list', req: 4, query: 'ab', limit: 10 }, '13' + '00000004' + '0002' + '6162' + '000a'],
      [
        {
          type: 'location',
          req: 5,
          manifest,
          holders: [{ peerId: filled(0x55), name: 'p', host: '1.2.3.4', port: 9, chunks: Bitfield.full(1) }],
        },
        '25' +
          '00000005' +
          hex('33', 32) +
          '0001' +
          '66' +
          '0000000000000005' +
          '00040000' +
          '00000020' +
          hex('44', 32) +
          '0001' +
          hex('55', 32) +
          '0001' +
          '70' +
          '0007' +
          '312e322e332e34' +
          '0009' +
          '00000001' +
          '80',
      ],
    ];
    assertGoldenBytes({ encode: encodeTrackerMessage, decode: decodeTrackerMessage }, cases);
  });

  codecConformance({
    encode: encodeTrackerMessage,
    decode: decodeTrackerMessage,
    samples,
    typeCount: Object.keys(TrackerType).length,
  });

  test('an unknown message type is refused', () => {
    assert.throws(() => decodeTrackerMessage(Buffer.from('7f00000001', 'hex')), isProtocolError);
  });

  test('list counts over their caps are refused before any element is read', () => {
    const head = (type: number): Writer => new Writer().u8(type).u32(1);
    const overCaps = [
      head(TrackerType.ANNOUNCE).u16(257),
      head(TrackerType.HAVE).fixed(filled(0), 32).u16(4097),
      head(TrackerType.ANNOUNCED).u16(257),
      head(TrackerType.FILES).u32(0).u16(1001),
    ];
    for (const w of overCaps) assert.throws(() => decodeTrackerMessage(w.finish()), isProtocolError);
    const location = new Writer().u8(TrackerType.LOCATION).u32(1);
    location
      .fixed(manifest.id, 32)
      .str('f', 255)
      .u64(5)
      .u32(MIN_CHUNK_SIZE)
      .blob(manifest.hashes, 64)
      .u16(201);
    assert.throws(() => decodeTrackerMessage(location.finish()), isProtocolError);
  });

  test('strings and blobs over their caps are refused even when their bytes are present', () => {
    const longName = new Writer().u8(TrackerType.REGISTER).u32(1).fixed(filled(1), 32);
    longName.u16(65).bytes(Buffer.alloc(65, 0x61)).u16(80);
    assert.throws(() => decodeTrackerMessage(longName.finish()), isProtocolError);

    const longFileName = new Writer().u8(TrackerType.LOCATION).u32(1).fixed(filled(1), 32);
    longFileName.u16(256).bytes(Buffer.alloc(256, 0x61)).u64(5).u32(MIN_CHUNK_SIZE).blob(filled(2), 32);
    longFileName.u16(0);
    assert.throws(() => decodeTrackerMessage(longFileName.finish()), isProtocolError);
    // An ANNOUNCE's names are decoded whatever their length: the tracker refuses them file by file.
    const announced = new Writer().u8(TrackerType.ANNOUNCE).u32(1).u16(1).fixed(filled(1), 32);
    announced.u16(256).bytes(Buffer.alloc(256, 0x61)).u64(5).u32(MIN_CHUNK_SIZE).blob(filled(2), 32);
    const decoded = decodeTrackerMessage(announced.finish());
    assert.equal(decoded.type === 'announce' && decoded.manifests[0]!.name, 'a'.repeat(256));

    const hashBytes = MAX_CHUNKS * 32 + 32;
    const tooManyHashes = new Writer().u8(TrackerType.ANNOUNCE).u32(1).u16(1).fixed(filled(1), 32);
    tooManyHashes.str('f', 255).u64(5).u32(MIN_CHUNK_SIZE).u32(hashBytes).bytes(Buffer.alloc(hashBytes));
    assert.throws(() => decodeTrackerMessage(tooManyHashes.finish()), isProtocolError);

    const longMessage = new Writer().u8(TrackerType.ERROR).u32(1).str('ERR_X', 64);
    longMessage.u16(1025).bytes(Buffer.alloc(1025, 0x61));
    assert.throws(() => decodeTrackerMessage(longMessage.finish()), isProtocolError);
  });

  test('a holder bitfield must fit the manifest exactly, spare bits clear', () => {
    const withBits = (bits: Buffer, size = 5, chunkSize = MIN_CHUNK_SIZE): Buffer => {
      const w = new Writer().u8(TrackerType.LOCATION).u32(1);
      w.fixed(manifest.id, 32).str('f', 255).u64(size).u32(chunkSize).blob(manifest.hashes, 64).u16(1);
      w.fixed(filled(9), 32).str('p', 64).str('h', 255).u16(1).blob(bits, 8192);
      return w.finish();
    };
    assert.equal(decodeTrackerMessage(withBits(Buffer.from([0x80]))).type, 'location');
    assert.throws(() => decodeTrackerMessage(withBits(Buffer.from([0x40]))), isProtocolError); // spare bit
    assert.throws(() => decodeTrackerMessage(withBits(Buffer.from([0x80, 0]))), isProtocolError); // too long
    assert.throws(() => decodeTrackerMessage(withBits(Buffer.alloc(0))), isProtocolError); // too short
    assert.throws(() => decodeTrackerMessage(withBits(Buffer.from([0x80]), 5, 0)), isProtocolError);
    assert.throws(() => decodeTrackerMessage(withBits(Buffer.from([0x80]), 2 ** 40, 1)), isProtocolError);
  });

  test('the encoder refuses batches the decoder would refuse', () => {
    const manifests = Array.from({ length: 257 }, () => manifest);
    assert.throws(() => encodeTrackerMessage({ type: 'announce', req: 1, manifests }), RangeError);
    const indices = Array.from({ length: 4097 }, (_, i) => i);
    assert.throws(
      () => encodeTrackerMessage({ type: 'have', req: 1, fileId: filled(1), indices }),
      RangeError,
    );
    assert.throws(() => encodeTrackerMessage({ type: 'locate', req: 1, fileId: filled(1, 31) }), RangeError);
  });
});
