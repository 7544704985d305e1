/**
 * fast-check arbitraries for every message of the handshake, the tracker protocol, the peer protocol
 * and the LAN offers: valid values only (each field within its documented bounds), with the bounds
 * themselves (empty and full strings, 0 and 2^32 - 1, 0 chunks and MAX_CHUNKS) among them.
 * Lists are kept short, so that a run is cheap; the caps on list lengths are fuzzed by mutation.
 */
import fc from 'fast-check';
import type { Endpoint } from '../../src/address.js';
import {
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_FILE_SIZE,
  MAX_HOST_BYTES,
  MAX_PEER_NAME_BYTES,
  MAX_QUERY_BYTES,
  MAX_SHARED_FILES,
  MIN_CHUNK_SIZE,
} from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { fileNameProblem } from '../../src/storage/file-name.js';
import type { Manifest } from '../../src/storage/manifest.js';
import type { Hello, Refusal } from '../../src/wire/handshake.js';
import type { LanOfferFile, LanOfferMessage } from '../../src/wire/lan-offer.js';
import type { Offer, PeerMessage } from '../../src/wire/peer-messages.js';
import type { TrackerMessage } from '../../src/wire/tracker-messages.js';
import { blob, bytes, fitUtf8, record, u16, u32, u64, utf8 } from './harness.js';

const id32 = bytes(32);

// ---- Shared pieces ---------------------------------------------------------------------------------

/** A name that passes fileNameProblem(): what OFFERS and LAN offers accept. */
export const fileName: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: utf8(MAX_FILE_NAME_BYTES, 40).filter((name) => fileNameProblem(name) === null) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('a', 'film.mkv', '..a', 'c-d.txt', fitUtf8('é'.repeat(200), 255)),
  },
);

/** A bitfield of `chunks` bits, its bytes the pattern repeated, spare bits clear. */
export function bitfieldOf(chunks: number, pattern: Uint8Array): Bitfield {
  const length = Bitfield.byteLength(chunks);
  const raw = Buffer.alloc(length);
  for (let i = 0; i < length; i++) raw[i] = pattern[i % pattern.length]!;
  const spare = length * 8 - chunks;
  if (spare > 0) raw[length - 1]! &= 0xff << spare;
  return new Bitfield(chunks, raw);
}

const pattern = fc.uint8Array({ minLength: 1, maxLength: 8 });

/** Chunk counts: mostly small, sometimes around a byte boundary of MAX_CHUNKS. */
const chunkCount = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 0, max: 70 }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_CHUNKS - 9, max: MAX_CHUNKS }) },
);

/** A size that makes exactly `chunks` chunks of `chunkSize` bytes. */
function sizeOf(chunks: number, chunkSize: number, lastPart: number): number {
  return chunks === 0 ? 0 : (chunks - 1) * chunkSize + 1 + (lastPart % chunkSize);
}

/** Any structure the manifest layout carries (its consistency is checked by validateManifest, not here). */
export const wireManifest: fc.Arbitrary<Manifest> = record({
  id: id32,
  name: utf8(MAX_FILE_NAME_BYTES, 40),
  size: u64,
  chunkSize: u32,
  hashes: fc.oneof(
    { weight: 9, arbitrary: blob(32 * 4) },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(32 * 70, 0xab)) },
  ),
});

/** A manifest whose chunk count is finite and at most MAX_CHUNKS: what LOCATION requires. */
const chunkedManifest: fc.Arbitrary<{ manifest: Manifest; chunks: number }> = record({
  base: wireManifest,
  chunks: chunkCount,
  chunkSize: fc.oneof(
    fc.integer({ min: 1, max: 0xffffffff }),
    fc.constantFrom(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
  ),
  lastPart: u32,
}).map(({ base, chunks, chunkSize, lastPart }) => ({
  manifest: { ...base, chunkSize, size: sizeOf(chunks, chunkSize, lastPart) },
  chunks,
}));

// ---- Handshake -------------------------------------------------------------------------------------

const versions = (minLength: number) => fc.array(u16, { minLength, maxLength: 16 });

export const hello: fc.Arbitrary<Hello> = record({ protocol: utf8(64), versions: versions(1) });

export type HandshakeReply = { version: number } | { refusal: Refusal };

export const handshakeReply: fc.Arbitrary<HandshakeReply> = fc.oneof(
  record({ version: u16 }),
  record({
    refusal: record({
      code: utf8(MAX_ERROR_CODE_BYTES),
      message: utf8(MAX_ERROR_MESSAGE_BYTES, 80),
      versions: versions(0),
    }),
  }),
);

// ---- Tracker protocol ------------------------------------------------------------------------------

const req = u32;
const short = <T>(item: fc.Arbitrary<T>, maxLength = 4) => fc.array(item, { maxLength });

export const trackerMessage: fc.Arbitrary<TrackerMessage> = fc.oneof(
  record({
    type: fc.constant('register' as const),
    req,
    peerId: id32,
    name: utf8(MAX_PEER_NAME_BYTES),
    port: u16,
  }),
  record({ type: fc.constant('announce' as const), req, manifests: short(wireManifest, 3) }),
  record({ type: fc.constant('unshare' as const), req, fileId: id32 }),
  record({ type: fc.constant('list' as const), req, query: utf8(MAX_QUERY_BYTES), limit: u16 }),
  record({ type: fc.constant('locate' as const), req, fileId: id32 }),
  record({ type: fc.constant('have' as const), req, fileId: id32, indices: short(u32, 8) }),
  record({ type: fc.constant('ping' as const), req, uploadedBytes: u64 }),
  record({ type: fc.constant('leave' as const), req }),
  record({ type: fc.constant('ok' as const), req }),
  record({
    type: fc.constant('error' as const),
    req,
    code: utf8(MAX_ERROR_CODE_BYTES),
    message: utf8(MAX_ERROR_MESSAGE_BYTES, 80),
  }),
  record({
    type: fc.constant('registered' as const),
    req,
    host: utf8(MAX_HOST_BYTES),
    port: u16,
    heartbeatMs: u32,
    expiryMs: u32,
  }),
  record({
    type: fc.constant('announced' as const),
    req,
    results: short(
      record({ fileId: id32, code: utf8(MAX_ERROR_CODE_BYTES), message: utf8(MAX_ERROR_MESSAGE_BYTES) }),
    ),
  }),
  record({
    type: fc.constant('files' as const),
    req,
    total: u32,
    files: short(
      record({
        id: id32,
        name: utf8(MAX_FILE_NAME_BYTES),
        size: u64,
        chunks: u32,
        seeders: u32,
        peers: u32,
      }),
    ),
  }),
  record({
    req,
    located: chunkedManifest,
    holders: short(
      record({
        peerId: id32,
        name: utf8(MAX_PEER_NAME_BYTES),
        host: utf8(MAX_HOST_BYTES),
        port: u16,
        pattern,
      }),
      3,
    ),
  }).map(({ req, located, holders }) => ({
    type: 'location' as const,
    req,
    manifest: located.manifest,
    holders: holders.map(({ pattern, ...holder }) => ({
      ...holder,
      chunks: bitfieldOf(located.chunks, pattern),
    })),
  })),
);

// ---- Peer protocol ---------------------------------------------------------------------------------

/** An offer the decoder accepts: a valid name, a power-of-two chunk size, a bitfield that fits. */
export const offer: fc.Arbitrary<Offer> = record({
  fileId: id32,
  name: fileName,
  chunks: chunkCount,
  chunkSizeLog: fc.integer({ min: Math.log2(MIN_CHUNK_SIZE), max: Math.log2(MAX_CHUNK_SIZE) }),
  lastPart: u32,
  pattern,
}).map(({ fileId, name, chunks, chunkSizeLog, lastPart, pattern }) => {
  const chunkSize = 2 ** chunkSizeLog;
  return {
    fileId,
    name,
    size: sizeOf(chunks, chunkSize, lastPart),
    chunkSize,
    chunks: bitfieldOf(chunks, pattern),
  };
});

const endpoint: fc.Arbitrary<Endpoint> = record({ host: utf8(MAX_HOST_BYTES), port: u16 });

export const peerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  record({ type: fc.constant('request' as const), req, fileId: id32, index: u32 }),
  record({ type: fc.constant('cancel' as const), req }),
  record({ type: fc.constant('info' as const), peerId: id32, name: utf8(MAX_PEER_NAME_BYTES), port: u16 }),
  record({
    type: fc.constant('offers' as const),
    offers: fc.uniqueArray(offer, { maxLength: 3, selector: (o) => o.fileId.toString('hex') }),
  }),
  record({ type: fc.constant('have' as const), fileId: id32, index: u32 }),
  record({ type: fc.constant('peers' as const), peers: short(endpoint, 6) }),
  record({ type: fc.constant('get_manifest' as const), req, fileId: id32 }),
  record({ type: fc.constant('choke' as const) }),
  record({ type: fc.constant('unchoke' as const) }),
  record({ type: fc.constant('piece' as const), req, index: u32, data: blob(64) }),
  record({
    type: fc.constant('reject' as const),
    req,
    code: utf8(MAX_ERROR_CODE_BYTES),
    message: utf8(MAX_ERROR_MESSAGE_BYTES, 80),
  }),
  record({ type: fc.constant('manifest' as const), req, manifest: wireManifest }),
);

// ---- LAN offers ------------------------------------------------------------------------------------

export const lanFile: fc.Arbitrary<LanOfferFile> = record({
  fileId: id32,
  name: fileName,
  size: fc.oneof(fc.integer({ min: 0, max: MAX_FILE_SIZE }), fc.constant(MAX_FILE_SIZE)),
});

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/** A peer name without control characters (the LAN offer refuses them). */
export const lanPeerName = utf8(MAX_PEER_NAME_BYTES).map((name) => name.replace(CONTROL_CHARACTERS, '?'));

export const lanHeader = record({
  peerId: id32,
  name: lanPeerName,
  port: fc.integer({ min: 1, max: 0xffff }),
  catalogTag: u32,
});

/** A LAN offer as decoded: `files` is part of a catalogue of `totalFiles` (which may be larger). */
export const lanOffer: fc.Arbitrary<LanOfferMessage> = record({
  header: lanHeader,
  files: short(lanFile, 6),
  more: fc.oneof(fc.constant(0), u32),
}).map(({ header, files, more }) => ({
  ...header,
  totalFiles: Math.min(files.length + more, MAX_SHARED_FILES),
  files,
}));
