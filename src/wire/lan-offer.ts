/**
 * LAN offer datagrams, format version 1: what a peer shares, announced by UDP multicast to the
 * peers on its link (see src/discovery/lan.ts). All integers are big-endian; `str` is a u16 byte
 * length then UTF-8, as in codec.ts.
 *
 *   magic     4 bytes   'SWSH' (53 57 53 48): anything else is not ours
 *   version   u8        1
 *   peerId    bytes32   the sender's peer id
 *   name      str       the sender's name, <= MAX_PEER_NAME_BYTES, no control characters
 *   port      u16       the sender's TCP serving port, 1-65535 (its host is the datagram's source)
 *   tag       u32       opaque: changes whenever the sender's catalogue changes
 *   total     u32       files in the sender's catalogue, <= MAX_SHARED_FILES
 *   n         u16       files in this datagram, <= MAX_LAN_OFFER_FILES and <= total
 *   n times:
 *     fileId  bytes32
 *     name    str       <= MAX_FILE_NAME_BYTES, a valid single file name
 *     size    u64       <= MAX_FILE_SIZE
 *
 * A datagram is at most MAX_LAN_DATAGRAM bytes (less when it is sealed for a private swarm, see
 * sealed-lan-offer.ts, which carries this whole datagram encrypted). A sender with more files than fit rotates: each
 * datagram carries the next files of its catalogue, so a receiver learns them over a few
 * announcements; `tag` and `total` tell it when what it learnt is stale.
 *
 * The decoder throws ProtocolError, and nothing else, for any malformed datagram, and allocates
 * nothing sized by a value it read (every count and length is checked against a cap first).
 */
import {
  HASH_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_FILE_SIZE,
  MAX_LAN_DATAGRAM,
  MAX_LAN_OFFER_FILES,
  MAX_PEER_NAME_BYTES,
  MAX_SHARED_FILES,
  PEER_ID_BYTES,
} from '../constants.js';
import { fileNameProblem } from '../storage/file-name.js';
import { ProtocolError, Reader, Writer } from './codec.js';

export const LAN_OFFER_MAGIC = Buffer.from('SWSH', 'latin1');
export const LAN_OFFER_VERSION = 1;

/** One shared file as a LAN offer describes it. */
export interface LanOfferFile {
  fileId: Buffer;
  name: string;
  size: number;
}

/** The sender's part of a LAN offer, the same in every datagram until its catalogue changes. */
export interface LanOfferHeader {
  peerId: Buffer;
  name: string;
  /** TCP serving port, 1-65535. */
  port: number;
  /** Opaque u32 that changes whenever the catalogue changes. */
  catalogTag: number;
}

/** A decoded LAN offer: `files` is the part of the sender's catalogue of `totalFiles` files it carried. */
export interface LanOfferMessage extends LanOfferHeader {
  totalFiles: number;
  files: LanOfferFile[];
}

/** Bytes of the fixed fields, without the sender's name and the files. */
const HEADER_FIXED_BYTES = LAN_OFFER_MAGIC.length + 1 + PEER_ID_BYTES + 2 + 2 + 4 + 4 + 2;
/** Bytes of one file entry, without its name. */
const FILE_FIXED_BYTES = HASH_BYTES + 2 + 8;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Encodes one datagram of at most `maxBytes` bytes carrying as many files of `catalogue` as fit,
 * starting at index `start` and wrapping around (never repeating one). Returns the datagram and how many files it carries:
 * advance `start` by that much for the next announcement to rotate through the catalogue.
 * Throws RangeError for values that cannot be encoded (a bug in the caller, not a remote's input).
 */
export function encodeLanOffer(
  header: LanOfferHeader,
  catalogue: readonly LanOfferFile[],
  start = 0,
  maxBytes = MAX_LAN_DATAGRAM,
): { datagram: Buffer; included: number } {
  if (!Number.isInteger(maxBytes) || maxBytes > MAX_LAN_DATAGRAM) {
    throw new RangeError(`a LAN offer budget of ${maxBytes} bytes exceeds ${MAX_LAN_DATAGRAM}`);
  }
  if (!Number.isInteger(header.port) || header.port < 1 || header.port > 0xffff) {
    throw new RangeError(`port out of range: ${header.port}`);
  }
  if (catalogue.length > MAX_SHARED_FILES) {
    throw new RangeError(`a catalogue of ${catalogue.length} files exceeds ${MAX_SHARED_FILES}`);
  }
  if (CONTROL_CHARACTER.test(header.name)) throw new RangeError('the peer name contains a control character');
  if (HEADER_FIXED_BYTES + Buffer.byteLength(header.name, 'utf8') > maxBytes) {
    throw new RangeError(`a LAN offer header does not fit in ${maxBytes} bytes`);
  }
  let used = HEADER_FIXED_BYTES + Buffer.byteLength(header.name, 'utf8');
  const chosen: LanOfferFile[] = [];
  const limit = Math.min(catalogue.length, MAX_LAN_OFFER_FILES);
  for (let i = 0; i < limit; i++) {
    const file = catalogue[(start + i) % catalogue.length]!;
    const bytes = FILE_FIXED_BYTES + Buffer.byteLength(file.name, 'utf8');
    // Stop at the first file that does not fit: it opens the next datagram, so none is skipped.
    if (used + bytes > maxBytes) break;
    used += bytes;
    chosen.push(file);
  }
  const w = new Writer(used);
  w.bytes(LAN_OFFER_MAGIC).u8(LAN_OFFER_VERSION).fixed(header.peerId, PEER_ID_BYTES);
  w.str(header.name, MAX_PEER_NAME_BYTES)
    .u16(header.port)
    .u32(header.catalogTag >>> 0);
  w.u32(catalogue.length).u16(chosen.length);
  for (const file of chosen) {
    const problem = fileNameProblem(file.name);
    if (problem) throw new RangeError(`bad file name ${JSON.stringify(file.name)}: ${problem}`);
    if (file.size > MAX_FILE_SIZE) throw new RangeError(`file size ${file.size} exceeds ${MAX_FILE_SIZE}`);
    w.fixed(file.fileId, HASH_BYTES).str(file.name, MAX_FILE_NAME_BYTES).u64(file.size);
  }
  return { datagram: w.finish(), included: chosen.length };
}

/** Decodes one datagram. Throws ProtocolError, and nothing else, unless it is a well-formed offer. */
export function decodeLanOffer(datagram: Buffer): LanOfferMessage {
  if (datagram.length > MAX_LAN_DATAGRAM) {
    throw new ProtocolError(`LAN offer of ${datagram.length} bytes exceeds ${MAX_LAN_DATAGRAM}`);
  }
  const r = new Reader(datagram);
  if (!r.bytes(LAN_OFFER_MAGIC.length, 'magic').equals(LAN_OFFER_MAGIC)) {
    throw new ProtocolError('not a swarmshare LAN offer (wrong magic)');
  }
  const version = r.u8('version');
  if (version !== LAN_OFFER_VERSION) throw new ProtocolError(`LAN offer version ${version} is not supported`);
  const peerId = r.copy(PEER_ID_BYTES, 'peer id');
  const name = r.str(MAX_PEER_NAME_BYTES, 'peer name');
  if (CONTROL_CHARACTER.test(name)) throw new ProtocolError('the peer name contains a control character');
  const port = r.u16('port');
  if (port === 0) throw new ProtocolError('a LAN offer names TCP port 0');
  const catalogTag = r.u32('catalogue tag');
  const totalFiles = r.count(32, MAX_SHARED_FILES, 'total files');
  const n = r.count(16, Math.min(MAX_LAN_OFFER_FILES, totalFiles), 'files in the offer');
  const files: LanOfferFile[] = [];
  for (let i = 0; i < n; i++) {
    const fileId = r.copy(HASH_BYTES, 'file id');
    const fileName = r.str(MAX_FILE_NAME_BYTES, 'file name');
    const problem = fileNameProblem(fileName);
    if (problem) throw new ProtocolError(`bad file name in a LAN offer: ${problem}`);
    const size = r.u64('file size');
    if (size > MAX_FILE_SIZE) throw new ProtocolError(`file size ${size} exceeds ${MAX_FILE_SIZE}`);
    files.push({ fileId, name: fileName, size });
  }
  r.end('LAN offer');
  return { peerId, name, port, catalogTag, totalFiles, files };
}
