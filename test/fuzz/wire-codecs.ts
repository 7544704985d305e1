/**
 * The binary message codecs under fuzz, each with its arbitraries and what a decoded message must
 * satisfy: the handshake (HELLO; WELCOME/REFUSE), every tracker message, every peer message, the
 * manifest layout on its own, the LAN offer datagram, open and sealed. Their properties are in
 * codec-properties.ts.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_FILE_SIZE,
  MAX_LAN_DATAGRAM,
  MAX_LAN_OFFER_FILES,
  MAX_SHARED_FILES,
  MIN_CHUNK_SIZE,
} from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { fileNameProblem } from '../../src/storage/file-name.js';
import { chunkCountOf, type Manifest } from '../../src/storage/manifest.js';
import { ProtocolError, Reader, Writer } from '../../src/wire/codec.js';
import {
  HELLO,
  PROOF,
  REFUSE,
  WELCOME,
  decodeHandshakeReply,
  decodeHello,
  decodeProof,
  encodeHello,
  encodeProof,
  encodeRefuse,
  encodeWelcome,
} from '../../src/wire/handshake.js';
import {
  LAN_OFFER_MAGIC,
  LAN_OFFER_VERSION,
  decodeLanOffer,
  encodeLanOffer,
  type LanOfferMessage,
} from '../../src/wire/lan-offer.js';
import { readManifest, writeManifest } from '../../src/wire/manifest-codec.js';
import {
  MAX_SEALED_LAN_OFFER_PLAINTEXT,
  SEALED_LAN_OFFER_MAGIC,
  SEALED_LAN_OFFER_NONCE_BYTES,
  SEALED_LAN_OFFER_VERSION,
  sealLanOffer,
  unsealLanOffer,
} from '../../src/wire/sealed-lan-offer.js';
import { PeerType, decodePeerMessage, encodePeerMessage } from '../../src/wire/peer-messages.js';
import { TrackerType, decodeTrackerMessage, encodeTrackerMessage } from '../../src/wire/tracker-messages.js';
import {
  handshakeReply,
  hello,
  lanFile,
  lanHeader,
  lanOffer,
  peerMessage,
  trackerMessage,
  wireManifest,
  type HandshakeReply,
} from './arbitraries.js';
import { codecProperties, type FuzzCodec } from './codec-properties.js';
import { bytes as fixedBytes, decodeHostile, defineProperty, record, type FuzzProperty } from './harness.js';

const typeBytes = (types: Record<string, number>): Buffer[] =>
  Object.values(types).map((t) => Buffer.from([t]));

function assertBitfieldFits(chunks: number, bits: Bitfield, what: string): void {
  assert.equal(bits.size, chunks, `${what}: a bitfield of ${bits.size} bits for ${chunks} chunks`);
  assert.ok(Bitfield.sparesClear(chunks, bits.bytes), `${what}: spare bits set`);
}

export const helloCodec: FuzzCodec<ReturnType<typeof decodeHello>> = {
  decoder: 'handshake',
  label: 'HELLO',
  decode: decodeHello,
  encode: encodeHello,
  messages: hello,
  prefixes: [Buffer.from([HELLO])],
  invariants: (message) => assert.ok(message.versions.length >= 1 && message.versions.length <= 16),
};

export const handshakeReplyCodec: FuzzCodec<HandshakeReply> = {
  decoder: 'handshake',
  label: 'WELCOME/REFUSE',
  decode: decodeHandshakeReply,
  encode: (reply) => ('version' in reply ? encodeWelcome(reply.version) : encodeRefuse(reply.refusal)),
  messages: handshakeReply,
  prefixes: [Buffer.from([WELCOME]), Buffer.from([REFUSE])],
};

/** A private swarm's PROOF (32 bytes, nothing else); any other frame is not one. */
export const proofCodec: FuzzCodec<Buffer> = {
  decoder: 'handshake',
  label: 'PROOF',
  decode: (bytes) => {
    const proof = decodeProof(bytes);
    if (!proof) throw new ProtocolError('not a PROOF');
    return proof;
  },
  encode: encodeProof,
  messages: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
  prefixes: [Buffer.from([PROOF])],
};

export const trackerCodec: FuzzCodec<ReturnType<typeof decodeTrackerMessage>> = {
  decoder: 'tracker messages',
  decode: decodeTrackerMessage,
  encode: encodeTrackerMessage,
  messages: trackerMessage,
  prefixes: typeBytes(TrackerType),
  invariants: (message) => {
    if (message.type !== 'location') return;
    const chunks = chunkCountOf(message.manifest.size, message.manifest.chunkSize);
    assert.ok(Number.isFinite(chunks) && chunks <= MAX_CHUNKS, `LOCATION of ${chunks} chunks`);
    for (const holder of message.holders) assertBitfieldFits(chunks, holder.chunks, 'LOCATION');
  },
};

export const peerCodec: FuzzCodec<ReturnType<typeof decodePeerMessage>> = {
  decoder: 'peer messages',
  decode: decodePeerMessage,
  encode: encodePeerMessage,
  messages: peerMessage,
  prefixes: typeBytes(PeerType),
  fixedPart: (message) => (message.type === 'piece' ? 9 : undefined),
  invariants: (message) => {
    if (message.type !== 'offers') return;
    const ids = new Set(message.offers.map((o) => o.fileId.toString('hex')));
    assert.equal(ids.size, message.offers.length, 'a file offered twice');
    for (const offer of message.offers) {
      assert.equal(fileNameProblem(offer.name), null, `offer of a bad name ${JSON.stringify(offer.name)}`);
      assert.ok(offer.size <= MAX_FILE_SIZE, `offer of ${offer.size} bytes`);
      assert.ok(
        offer.chunkSize >= MIN_CHUNK_SIZE &&
          offer.chunkSize <= MAX_CHUNK_SIZE &&
          Number.isInteger(Math.log2(offer.chunkSize)),
        `offer with a chunk size of ${offer.chunkSize}`,
      );
      assertBitfieldFits(chunkCountOf(offer.size, offer.chunkSize), offer.chunks, 'OFFERS');
    }
  },
};

export const manifestCodec: FuzzCodec<Manifest> = {
  decoder: 'manifest codec',
  decode: (bytes) => {
    const r = new Reader(bytes);
    const manifest = readManifest(r);
    r.end('manifest');
    return manifest;
  },
  encode: (manifest) => {
    const w = new Writer();
    writeManifest(w, manifest);
    return w.finish();
  },
  messages: wireManifest,
  prefixes: [],
};

/** The LAN offer layout written from its documentation (the product's encoder picks `totalFiles` itself). */
export function writeLanOffer(message: LanOfferMessage): Buffer {
  const w = new Writer();
  w.bytes(LAN_OFFER_MAGIC).u8(LAN_OFFER_VERSION).fixed(message.peerId, 32).str(message.name, 0xffff);
  w.u16(message.port).u32(message.catalogTag).u32(message.totalFiles).u16(message.files.length);
  for (const file of message.files) w.fixed(file.fileId, 32).str(file.name, 0xffff).u64(file.size);
  return w.finish();
}

export const lanOfferCodec: FuzzCodec<LanOfferMessage> = {
  decoder: 'LAN offers',
  decode: decodeLanOffer,
  encode: writeLanOffer,
  messages: lanOffer.filter((message) => writeLanOffer(message).length <= MAX_LAN_DATAGRAM),
  prefixes: [LAN_OFFER_MAGIC, Buffer.concat([LAN_OFFER_MAGIC, Buffer.from([LAN_OFFER_VERSION])])],
  // Past the datagram limit too: those are refused before being read.
  maxRandomBytes: MAX_LAN_DATAGRAM + 100,
  invariants: (message, bytes) => {
    assert.ok(bytes.length <= MAX_LAN_DATAGRAM);
    assert.ok(message.port >= 1, 'port 0');
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u001f\u007f]/.test(message.name), 'a control character in the peer name');
    assert.ok(message.totalFiles <= MAX_SHARED_FILES);
    assert.ok(message.files.length <= Math.min(MAX_LAN_OFFER_FILES, message.totalFiles));
    for (const file of message.files) {
      assert.equal(fileNameProblem(file.name), null);
      assert.ok(file.size <= MAX_FILE_SIZE);
    }
  },
};

/** A sealed LAN offer as the fuzzer sees it: the nonce is part of it, so that it encodes to fixed bytes. */
interface SealedLanOfferMessage {
  nonce: Buffer;
  sentAt: number;
  offer: LanOfferMessage;
}

/** The fuzzed swarm's key: hostile bytes almost never authenticate, mutated valid ones never. */
const SEALED_FUZZ_KEY = Buffer.alloc(32, 0x42);

function decodeSealedLanOffer(bytes: Buffer): SealedLanOfferMessage {
  const { nonce, sentAt, offer } = unsealLanOffer(SEALED_FUZZ_KEY, bytes);
  return { nonce, sentAt, offer: decodeLanOffer(offer) };
}

export const sealedLanOfferCodec: FuzzCodec<SealedLanOfferMessage> = {
  decoder: 'sealed LAN offers',
  decode: decodeSealedLanOffer,
  encode: (message) =>
    sealLanOffer(SEALED_FUZZ_KEY, writeLanOffer(message.offer), message.sentAt, message.nonce),
  messages: record({
    nonce: fixedBytes(SEALED_LAN_OFFER_NONCE_BYTES),
    sentAt: fc.maxSafeNat(),
    offer: lanOffer.filter((message) => writeLanOffer(message).length <= MAX_SEALED_LAN_OFFER_PLAINTEXT),
  }),
  prefixes: [
    SEALED_LAN_OFFER_MAGIC,
    Buffer.concat([SEALED_LAN_OFFER_MAGIC, Buffer.from([SEALED_LAN_OFFER_VERSION])]),
  ],
  maxRandomBytes: MAX_LAN_DATAGRAM + 100,
  invariants: (message, bytes) => {
    assert.ok(bytes.length <= MAX_LAN_DATAGRAM);
    lanOfferCodec.invariants!(message.offer, writeLanOffer(message.offer));
  },
};

/** The product's LAN encoder: a catalogue rotated from `start`, as many files as fit, decodes back. */
function lanEncoderProperty(): FuzzProperty {
  const inputs = record({
    header: lanHeader,
    catalogue: fc.uniqueArray(lanFile, { maxLength: 40, selector: (f) => f.fileId.toString('hex') }),
    start: fc.nat(100),
  });
  return defineProperty(
    'LAN offers',
    'the encoder rotates a catalogue into datagrams that decode',
    60,
    inputs,
    (input) => {
      const { header, catalogue, start } = input;
      const { datagram, included } = encodeLanOffer(header, catalogue, start);
      assert.ok(datagram.length <= MAX_LAN_DATAGRAM, `a datagram of ${datagram.length} bytes`);
      if (catalogue.length > 0) assert.ok(included >= 1, 'no file fits');
      const decoded = decodeHostile(decodeLanOffer, datagram);
      assert.ok(decoded.ok, `refused its own datagram: ${!decoded.ok && decoded.error.message}`);
      const expected = Array.from({ length: included }, (_, i) => catalogue[(start + i) % catalogue.length]!);
      assert.deepStrictEqual(decoded.message, { ...header, totalFiles: catalogue.length, files: expected });
    },
  );
}

/** The same under a private swarm's budget: sealed, every datagram fits and opens to what was encoded. */
function sealedLanEncoderProperty(): FuzzProperty {
  const inputs = record({
    header: lanHeader,
    catalogue: fc.uniqueArray(lanFile, { maxLength: 40, selector: (f) => f.fileId.toString('hex') }),
    start: fc.nat(100),
  });
  return defineProperty(
    'sealed LAN offers',
    'the encoder fills the sealed budget with datagrams that seal, fit and open',
    60,
    inputs,
    (input) => {
      const { header, catalogue, start } = input;
      const { datagram, included } = encodeLanOffer(header, catalogue, start, MAX_SEALED_LAN_OFFER_PLAINTEXT);
      if (catalogue.length > 0) assert.ok(included >= 1, 'no file fits');
      const sealed = sealLanOffer(SEALED_FUZZ_KEY, datagram, Date.now());
      assert.ok(sealed.length <= MAX_LAN_DATAGRAM, `a sealed datagram of ${sealed.length} bytes`);
      const decoded = decodeHostile(decodeSealedLanOffer, sealed);
      assert.ok(decoded.ok, `refused its own datagram: ${!decoded.ok && decoded.error.message}`);
      const expected = Array.from({ length: included }, (_, i) => catalogue[(start + i) % catalogue.length]!);
      assert.deepStrictEqual(decoded.message.offer, {
        ...header,
        totalFiles: catalogue.length,
        files: expected,
      });
    },
  );
}

export function wireCodecProperties(): FuzzProperty[] {
  return [
    ...codecProperties(helloCodec),
    ...codecProperties(handshakeReplyCodec),
    ...codecProperties(proofCodec),
    ...codecProperties(trackerCodec),
    ...codecProperties(peerCodec),
    ...codecProperties(manifestCodec),
    ...codecProperties(lanOfferCodec),
    lanEncoderProperty(),
    ...codecProperties(sealedLanOfferCodec),
    sealedLanEncoderProperty(),
  ];
}
