/**
 * Every declared count and length a decoder reads, set to its largest value (and to its cap) in an
 * otherwise tiny input: refused with a ProtocolError at once, allocating nothing beyond the input's
 * size (decodeHostile checks both). The fuzz properties reach these by chance; here each is named.
 *
 * Hostile cases: u16/u32 counts of manifests, chunk indices, results, files, holders, offers and peers
 * at 0xffff / 0xffffffff and at their caps; u16 string lengths and u32 blob lengths (hashes, bitfields)
 * at their maximum with no bytes behind them; a HELLO offering 255 versions; a LAN offer claiming
 * 2^32 - 1 files, or a datagram of 64 KiB; a state file claiming 2^32 - 1 chunks with a valid
 * checksum; a frame header of 2^32 - 1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MAX_ANNOUNCE_BATCH, MAX_CHUNKS, MIN_CHUNK_SIZE } from '../../src/constants.js';
import type { Manifest } from '../../src/storage/manifest.js';
import { PARTIAL_STATE_MAGIC, decodePartialState } from '../../src/storage/partial-state.js';
import { FrameDecoder, FrameTooLargeError } from '../../src/wire/framing.js';
import { decodeHandshakeReply, decodeHello } from '../../src/wire/handshake.js';
import { decodeLanOffer } from '../../src/wire/lan-offer.js';
import { decodePeerMessage } from '../../src/wire/peer-messages.js';
import { decodeTrackerMessage } from '../../src/wire/tracker-messages.js';
import { assertRefused, largestAllocation } from './harness.js';

const hex = (...parts: string[]): Buffer => Buffer.from(parts.join(''), 'hex');
const id = '11'.repeat(32);
const req = '00000007';
/** A manifest with an empty name, 0 bytes in chunks of 256 KiB, and a hashes blob of `hashesLength`. */
const manifest = (hashesLength: string): string =>
  id + '0000' + '0000000000000000' + '00040000' + hashesLength;

const cases: [what: string, decode: (bytes: Buffer) => unknown, bytes: Buffer][] = [
  ['HELLO offering 255 versions', decodeHello, hex('01', '0000', 'ff', '0001')],
  ['HELLO with a protocol name of 65535 bytes', decodeHello, hex('01', 'ffff', '61')],
  ['REFUSE with a code of 65535 bytes', decodeHandshakeReply, hex('03', 'ffff')],
  ['REFUSE listing 255 versions', decodeHandshakeReply, hex('03', '0000', '0000', 'ff')],
  ['REGISTER with a name of 65535 bytes', decodeTrackerMessage, hex('10', req, id, 'ffff', '61')],
  ['ANNOUNCE of 65535 manifests', decodeTrackerMessage, hex('11', req, 'ffff')],
  [
    `ANNOUNCE of ${MAX_ANNOUNCE_BATCH} (the cap) manifests, none there`,
    decodeTrackerMessage,
    hex('11', req, MAX_ANNOUNCE_BATCH.toString(16).padStart(4, '0')),
  ],
  [
    'ANNOUNCE of hashes of 2^32 - 1 bytes',
    decodeTrackerMessage,
    hex('11', req, '0001', manifest('ffffffff')),
  ],
  [
    'ANNOUNCE of hashes of exactly the cap, none there',
    decodeTrackerMessage,
    hex('11', req, '0001', manifest((MAX_CHUNKS * 32).toString(16).padStart(8, '0'))),
  ],
  ['LIST with a query of 65535 bytes', decodeTrackerMessage, hex('13', req, 'ffff')],
  ['HAVE of 65535 chunks', decodeTrackerMessage, hex('15', req, id, 'ffff', '00000001')],
  ['HAVE of 4096 (the cap) chunks, one there', decodeTrackerMessage, hex('15', req, id, '1000', '00000001')],
  ['ERROR with a message of 65535 bytes', decodeTrackerMessage, hex('21', req, '0000', 'ffff')],
  ['REGISTERED with a host of 65535 bytes', decodeTrackerMessage, hex('22', req, 'ffff')],
  ['ANNOUNCED of 65535 results', decodeTrackerMessage, hex('23', req, 'ffff')],
  ['FILES of 65535 files out of 2^32 - 1', decodeTrackerMessage, hex('24', req, 'ffffffff', 'ffff')],
  ['LOCATION of 65535 holders', decodeTrackerMessage, hex('25', req, manifest('00000000'), 'ffff')],
  [
    'LOCATION of a holder with a bitfield of 2^32 - 1 bytes',
    decodeTrackerMessage,
    hex(
      '25',
      req,
      id,
      '0000',
      '0000000000000001',
      '00040000',
      '00000020',
      '22'.repeat(32),
      '0001',
      id,
      '0000',
      '0000',
      '0001',
      'ffffffff',
    ),
  ],
  [
    'LOCATION of a manifest of 2^32 - 1 one-byte chunks',
    decodeTrackerMessage,
    hex('25', req, id, '0000', '00000000ffffffff', '00000001', '00000000', '0000'),
  ],
  ['INFO with a name of 65535 bytes', decodePeerMessage, hex('32', id, 'ffff')],
  ['OFFERS of 65535 files', decodePeerMessage, hex('33', 'ffff')],
  [
    'OFFERS of a file with a bitfield of 2^32 - 1 bytes',
    decodePeerMessage,
    hex(
      '33',
      '0001',
      id,
      '0001',
      '61',
      '0000000000000001',
      MIN_CHUNK_SIZE.toString(16).padStart(8, '0'),
      'ffffffff',
    ),
  ],
  [
    'OFFERS of a file of 2^53 - 1 bytes',
    decodePeerMessage,
    hex(
      '33',
      '0001',
      id,
      '0001',
      '61',
      '001fffffffffffff',
      MIN_CHUNK_SIZE.toString(16).padStart(8, '0'),
      '00000001',
      '00',
    ),
  ],
  ['PEERS of 65535 addresses', decodePeerMessage, hex('35', 'ffff')],
  ['REJECT with a code of 65535 bytes', decodePeerMessage, hex('41', req, 'ffff')],
  ['MANIFEST of hashes of 2^32 - 1 bytes', decodePeerMessage, hex('42', req, manifest('ffffffff'))],
  [
    'a LAN offer of 2^32 - 1 files',
    decodeLanOffer,
    hex('5357534801', id, '0000', '1ae1', '00000000', 'ffffffff', '0001'),
  ],
  [
    'a LAN offer carrying 65535 files',
    decodeLanOffer,
    hex('5357534801', id, '0000', '1ae1', '00000000', '00000005', 'ffff'),
  ],
  ['a LAN offer with a peer name of 65535 bytes', decodeLanOffer, hex('5357534801', id, 'ffff')],
  [
    'a LAN datagram of 64 KiB',
    decodeLanOffer,
    Buffer.concat([hex('5357534801'), Buffer.alloc(64 * 1024 - 5)]),
  ],
];

for (const [what, decode, bytes] of cases) {
  test(`refused without allocating: ${what}`, () => assertRefused(decode, bytes, what));
}

test('refused without allocating: a state file claiming 2^32 - 1 chunks, with a valid checksum', () => {
  const manifest: Manifest = {
    id: Buffer.alloc(32, 1),
    name: 'f',
    size: 1,
    chunkSize: MIN_CHUNK_SIZE,
    hashes: Buffer.alloc(32),
  };
  const body = Buffer.concat([
    PARTIAL_STATE_MAGIC,
    hex(
      '0001',
      '01'.repeat(32),
      '0000000000000001',
      MIN_CHUNK_SIZE.toString(16).padStart(8, '0'),
      'ffffffff',
      '80',
    ),
  ]);
  const data = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  const { value, largest } = largestAllocation(() => decodePartialState(data, manifest));
  assert.equal(value.ok, false);
  assert.ok(largest <= data.length, `allocated ${largest} bytes`);
});

test('refused without allocating: a frame of 2^32 - 1 bytes', () => {
  const decoder = new FrameDecoder(1 << 20, () => assert.fail('no frame'));
  const data = hex('ffffffff', '00');
  const { largest } = largestAllocation(() => assert.throws(() => decoder.push(data), FrameTooLargeError));
  assert.equal(largest, 0);
});
