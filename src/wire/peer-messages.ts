/**
 * Peer protocol, version 1: messages between peers, after the handshake.
 * A client may pipeline many REQUESTs; the server answers each with PIECE or REJECT, in any order.
 * Layouts (after the u8 type; the manifest is the tracker protocol's, see tracker-messages.ts):
 *
 *   REQUEST       0x30  u32 req | bytes32 fileId | u32 index
 *   CANCEL        0x31  u32 req                    (best effort: the PIECE may already be on its way)
 *   INFO          0x32  bytes32 peerId | str name (<=64) | u16 listenPort (0: does not serve)
 *   OFFERS        0x33  u16 n (<=1000) | offer * n      (server -> client; replaces the previous set)
 *     offer             bytes32 fileId | str name (<=255) | u64 size | u32 chunkSize
 *                       | blob bitfield (ceil(chunks/8) bytes, spare bits zero)
 *   HAVE          0x34  bytes32 fileId | u32 index      (server -> client: a chunk it now holds)
 *   PEERS         0x35  u16 n (<=50) | (str host (<=255) | u16 port) * n     (server -> client)
 *   GET_MANIFEST  0x36  u32 req | bytes32 fileId
 *   CHOKE         0x37  (no body)     (server -> client: no upload slot; REQUESTs get REJECT ERR_CHOKED)
 *   UNCHOKE       0x38  (no body)     (server -> client: an upload slot again)
 *
 *   PIECE         0x40  u32 req | u32 index | data  data is the rest of the frame: the whole chunk
 *   REJECT        0x41  u32 req | str code (<=64) | str message (<=1024)
 *   MANIFEST      0x42  u32 req | manifest
 *     manifest          bytes32 id | str name (<=255) | u64 size | u32 chunkSize | blob hashes (<= 2 MiB)
 *
 * After the handshake the client sends INFO; the server answers with its INFO, OFFERS and PEERS
 * (each if it has them), then OFFERS again whenever what it holds changes, HAVE for each chunk it
 * verifies, and PEERS every PEX_INTERVAL_MS; CHOKE and UNCHOKE as its upload slots change hands (a
 * client that has heard neither is unchoked: see src/peer/choker.ts). A PIECE is sent as a 9-byte
 * header and the chunk bytes as they were read from disk, not copied.
 */
import type { Endpoint } from '../address.js';
import {
  HASH_BYTES,
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_FILE_SIZE,
  MAX_HOST_BYTES,
  MAX_OFFERS,
  MAX_PEER_CONTROL_FRAME,
  MAX_PEER_NAME_BYTES,
  MAX_PEX_PEERS,
  MIN_CHUNK_SIZE,
  PEER_ID_BYTES,
} from '../constants.js';
import { Bitfield } from '../storage/bitfield.js';
import { fileNameProblem } from '../storage/file-name.js';
import { chunkCountOf, type Manifest } from '../storage/manifest.js';
import { ProtocolError, Reader, Writer } from './codec.js';
import { readManifest, writeManifest } from './manifest-codec.js';

export const PeerType = {
  REQUEST: 0x30,
  CANCEL: 0x31,
  INFO: 0x32,
  OFFERS: 0x33,
  HAVE: 0x34,
  PEERS: 0x35,
  GET_MANIFEST: 0x36,
  CHOKE: 0x37,
  UNCHOKE: 0x38,
  PIECE: 0x40,
  REJECT: 0x41,
  MANIFEST: 0x42,
} as const;

/** A file a peer holds, whole or in part: what OFFERS lists. */
export interface Offer {
  fileId: Buffer;
  name: string;
  size: number;
  chunkSize: number;
  /** The chunks it holds: one bit per chunk of the file. */
  chunks: Bitfield;
}

/** Who is at the other end of a peer connection (INFO). */
export interface PeerInfo {
  peerId: Buffer;
  name: string;
  /** Where it serves chunks; 0 when it does not serve (a one-shot client). */
  port: number;
}

export type PeerMessage =
  | { type: 'request'; req: number; fileId: Buffer; index: number }
  | { type: 'cancel'; req: number }
  | ({ type: 'info' } & PeerInfo)
  | { type: 'offers'; offers: Offer[] }
  | { type: 'have'; fileId: Buffer; index: number }
  | { type: 'peers'; peers: Endpoint[] }
  | { type: 'get_manifest'; req: number; fileId: Buffer }
  | { type: 'choke' }
  | { type: 'unchoke' }
  | { type: 'piece'; req: number; index: number; data: Buffer }
  | { type: 'reject'; req: number; code: string; message: string }
  | { type: 'manifest'; req: number; manifest: Manifest };

export const PIECE_HEADER_BYTES = 9;

const MAX_BITFIELD_BYTES = MAX_CHUNKS / 8;
/** u8 type | u16 n. */
const OFFERS_HEADER_BYTES = 3;

/** The header of a PIECE frame; send it followed by the chunk bytes as one frame. */
export function encodePieceHeader(req: number, index: number): Buffer {
  const header = Buffer.allocUnsafe(PIECE_HEADER_BYTES);
  header.writeUInt8(PeerType.PIECE, 0);
  header.writeUInt32BE(req, 1);
  header.writeUInt32BE(index, 5);
  return header;
}

/** Bytes one offer takes in an OFFERS frame. */
export function offerBytes(offer: Offer): number {
  return HASH_BYTES + 2 + Buffer.byteLength(offer.name, 'utf8') + 8 + 4 + 4 + offer.chunks.bytes.length;
}

/**
 * The longest prefix of `offers` that one OFFERS frame can carry: at most MAX_OFFERS of them, in at
 * most `maxFrameBytes` (default MAX_PEER_CONTROL_FRAME, which every client accepts).
 */
export function offersThatFit(offers: readonly Offer[], maxFrameBytes = MAX_PEER_CONTROL_FRAME): Offer[] {
  let bytes = OFFERS_HEADER_BYTES;
  let count = 0;
  for (const offer of offers) {
    if (count === MAX_OFFERS) break;
    bytes += offerBytes(offer);
    if (bytes > maxFrameBytes) break;
    count++;
  }
  return offers.slice(0, count);
}

/** Encodes one message. Throws RangeError for a value the layout cannot carry (a bug of ours). */
export function encodePeerMessage(msg: PeerMessage): Buffer {
  const w = new Writer(64);
  switch (msg.type) {
    case 'request':
      w.u8(PeerType.REQUEST).u32(msg.req).fixed(msg.fileId, HASH_BYTES).u32(msg.index);
      break;
    case 'cancel':
      w.u8(PeerType.CANCEL).u32(msg.req);
      break;
    case 'info':
      w.u8(PeerType.INFO).fixed(msg.peerId, PEER_ID_BYTES).str(msg.name, MAX_PEER_NAME_BYTES).u16(msg.port);
      break;
    case 'offers':
      if (msg.offers.length > MAX_OFFERS)
        throw new RangeError(`${msg.offers.length} offers exceed ${MAX_OFFERS}`);
      w.u8(PeerType.OFFERS).u16(msg.offers.length);
      for (const offer of msg.offers) writeOffer(w, offer);
      break;
    case 'have':
      w.u8(PeerType.HAVE).fixed(msg.fileId, HASH_BYTES).u32(msg.index);
      break;
    case 'peers':
      if (msg.peers.length > MAX_PEX_PEERS)
        throw new RangeError(`${msg.peers.length} peers exceed ${MAX_PEX_PEERS}`);
      w.u8(PeerType.PEERS).u16(msg.peers.length);
      for (const peer of msg.peers) w.str(peer.host, MAX_HOST_BYTES).u16(peer.port);
      break;
    case 'get_manifest':
      w.u8(PeerType.GET_MANIFEST).u32(msg.req).fixed(msg.fileId, HASH_BYTES);
      break;
    case 'choke':
      w.u8(PeerType.CHOKE);
      break;
    case 'unchoke':
      w.u8(PeerType.UNCHOKE);
      break;
    case 'piece':
      return Buffer.concat([encodePieceHeader(msg.req, msg.index), msg.data]);
    case 'reject':
      w.u8(PeerType.REJECT).u32(msg.req).str(msg.code, MAX_ERROR_CODE_BYTES);
      w.str(msg.message, MAX_ERROR_MESSAGE_BYTES);
      break;
    case 'manifest':
      w.u8(PeerType.MANIFEST).u32(msg.req);
      writeManifest(w, msg.manifest);
      break;
  }
  return w.finish();
}

/** Decodes one frame body. PIECE data is a view into the body: no copy. */
export function decodePeerMessage(body: Buffer): PeerMessage {
  const r = new Reader(body);
  const type = r.u8('type');
  let msg: PeerMessage;
  switch (type) {
    case PeerType.REQUEST:
      msg = {
        type: 'request',
        req: r.u32('request id'),
        fileId: r.copy(HASH_BYTES, 'file id'),
        index: r.u32('chunk index'),
      };
      break;
    case PeerType.CANCEL:
      msg = { type: 'cancel', req: r.u32('request id') };
      break;
    case PeerType.INFO:
      msg = {
        type: 'info',
        peerId: r.copy(PEER_ID_BYTES, 'peer id'),
        name: r.str(MAX_PEER_NAME_BYTES, 'peer name'),
        port: r.u16('port'),
      };
      break;
    case PeerType.OFFERS:
      msg = { type: 'offers', offers: readOffers(r) };
      break;
    case PeerType.HAVE:
      msg = { type: 'have', fileId: r.copy(HASH_BYTES, 'file id'), index: r.u32('chunk index') };
      break;
    case PeerType.PEERS: {
      const n = r.count(16, MAX_PEX_PEERS, 'peer count');
      const peers: Endpoint[] = [];
      for (let i = 0; i < n; i++) peers.push({ host: r.str(MAX_HOST_BYTES, 'host'), port: r.u16('port') });
      msg = { type: 'peers', peers };
      break;
    }
    case PeerType.GET_MANIFEST:
      msg = { type: 'get_manifest', req: r.u32('request id'), fileId: r.copy(HASH_BYTES, 'file id') };
      break;
    case PeerType.CHOKE:
      msg = { type: 'choke' };
      break;
    case PeerType.UNCHOKE:
      msg = { type: 'unchoke' };
      break;
    case PeerType.PIECE: {
      const req = r.u32('request id');
      const index = r.u32('chunk index');
      msg = { type: 'piece', req, index, data: r.bytes(r.remaining, 'chunk data') };
      break;
    }
    case PeerType.REJECT:
      msg = {
        type: 'reject',
        req: r.u32('request id'),
        code: r.str(MAX_ERROR_CODE_BYTES, 'code'),
        message: r.str(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    case PeerType.MANIFEST:
      msg = { type: 'manifest', req: r.u32('request id'), manifest: readManifest(r) };
      break;
    default:
      throw new ProtocolError(`unknown peer message type 0x${type.toString(16)}`);
  }
  r.end(msg.type);
  return msg;
}

function writeOffer(w: Writer, offer: Offer): void {
  const chunks = chunkCountOf(offer.size, offer.chunkSize);
  if (offer.chunks.size !== chunks) {
    throw new RangeError(`offer of ${chunks} chunks carries a bitfield of ${offer.chunks.size}`);
  }
  w.fixed(offer.fileId, HASH_BYTES).str(offer.name, MAX_FILE_NAME_BYTES).u64(offer.size).u32(offer.chunkSize);
  w.blob(offer.chunks.bytes, MAX_BITFIELD_BYTES);
}

/**
 * Reads the offers of an OFFERS frame, checking each as the tracker checks a LOCATION: a safe file
 * name, a sane size and chunk size, at most MAX_CHUNKS chunks, a bitfield of exactly the right length
 * with its spare bits clear, and no file listed twice.
 */
function readOffers(r: Reader): Offer[] {
  const n = r.count(16, MAX_OFFERS, 'offer count');
  const offers: Offer[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const fileId = r.copy(HASH_BYTES, 'file id');
    const name = r.str(MAX_FILE_NAME_BYTES, 'file name');
    const size = r.u64('size');
    const chunkSize = r.u32('chunk size');
    const bits = r.blob(MAX_BITFIELD_BYTES, 'bitfield');
    const problem = fileNameProblem(name);
    if (problem) throw new ProtocolError(`offer of a bad file name: ${problem}`);
    if (size > MAX_FILE_SIZE) throw new ProtocolError(`offer of ${size} bytes exceeds ${MAX_FILE_SIZE}`);
    if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new ProtocolError(`offer with a chunk size of ${chunkSize}`);
    }
    const chunks = chunkCountOf(size, chunkSize);
    if (chunks > MAX_CHUNKS) throw new ProtocolError(`offer of ${chunks} chunks exceeds ${MAX_CHUNKS}`);
    if (bits.length !== Bitfield.byteLength(chunks) || !Bitfield.sparesClear(chunks, bits)) {
      throw new ProtocolError(`bitfield of ${bits.length} bytes does not fit ${chunks} chunks`);
    }
    const key = fileId.toString('hex');
    if (seen.has(key)) throw new ProtocolError(`file ${key.slice(0, 12)} offered twice`);
    seen.add(key);
    offers.push({ fileId, name, size, chunkSize, chunks: new Bitfield(chunks, bits) });
  }
  return offers;
}
