/**
 * Tracker protocol, version 1: messages after the handshake on a peer's tracker session.
 * Every request carries a u32 request id that its reply repeats, so requests may overlap.
 * Layouts (after the u8 type; types are named constants below):
 *
 *   manifest     bytes32 id | str name (<=255) | u64 size | u32 chunkSize | blob hashes (<= 2 MiB)
 *
 *   REGISTER     u32 req | bytes32 peerId | str name (<=64) | u16 port
 *   ANNOUNCE     u32 req | u16 n (<=256) | manifest * n   (names of any length: refused per file)
 *   UNSHARE      u32 req | bytes32 fileId
 *   LIST         u32 req | str query (<=255, empty: all) | u16 limit (<=1000)
 *   LOCATE       u32 req | bytes32 fileId
 *   HAVE         u32 req | bytes32 fileId | u16 n (<=4096) | u32 index * n
 *   PING         u32 req | u64 uploadedBytes (chunk bytes this peer has sent to others, for dashboards)
 *   LEAVE        u32 req
 *
 *   OK           u32 req
 *   ERROR        u32 req | str code (<=64) | str message (<=1024)
 *   REGISTERED   u32 req | str observedHost | u16 port | u32 heartbeatMs | u32 expiryMs
 *   ANNOUNCED    u32 req | u16 n | (bytes32 fileId | str code (empty: accepted) | str message) * n
 *   FILES        u32 req | u32 total | u16 n | fileSummary * n
 *     fileSummary  bytes32 id | str name | u64 size | u32 chunks | u32 seeders | u32 peers
 *   LOCATION     u32 req | manifest | u16 n (<=200) | holder * n
 *     holder       bytes32 peerId | str name | str host | u16 port | blob bitfield (ceil(chunks/8))
 */
import {
  HASH_BYTES,
  MAX_ANNOUNCE_BATCH,
  MAX_ANNOUNCED_NAME_BYTES,
  MAX_CHUNKS,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_HAVE_BATCH,
  MAX_HOST_BYTES,
  MAX_LIST_RESULTS,
  MAX_LOCATE_PEERS,
  MAX_PEER_NAME_BYTES,
  MAX_QUERY_BYTES,
  PEER_ID_BYTES,
} from '../constants.js';
import type { Manifest } from '../storage/manifest.js';
import { chunkCountOf } from '../storage/manifest.js';
import { Bitfield } from '../storage/bitfield.js';
import { ProtocolError, Reader, Writer } from './codec.js';
import { readManifest, writeManifest } from './manifest-codec.js';

export const TrackerType = {
  REGISTER: 0x10,
  ANNOUNCE: 0x11,
  UNSHARE: 0x12,
  LIST: 0x13,
  LOCATE: 0x14,
  HAVE: 0x15,
  PING: 0x16,
  LEAVE: 0x17,
  OK: 0x20,
  ERROR: 0x21,
  REGISTERED: 0x22,
  ANNOUNCED: 0x23,
  FILES: 0x24,
  LOCATION: 0x25,
} as const;

export interface FileSummary {
  id: Buffer;
  name: string;
  size: number;
  chunks: number;
  /** Live peers that hold every chunk. */
  seeders: number;
  /** Live peers that hold at least one chunk. */
  peers: number;
}

export interface Holder {
  peerId: Buffer;
  name: string;
  host: string;
  port: number;
  chunks: Bitfield;
}

export interface AnnounceResult {
  fileId: Buffer;
  /** Empty when accepted, else an error code. */
  code: string;
  message: string;
}

export type TrackerRequest =
  | { type: 'register'; req: number; peerId: Buffer; name: string; port: number }
  | { type: 'announce'; req: number; manifests: Manifest[] }
  | { type: 'unshare'; req: number; fileId: Buffer }
  | { type: 'list'; req: number; query: string; limit: number }
  | { type: 'locate'; req: number; fileId: Buffer }
  | { type: 'have'; req: number; fileId: Buffer; indices: number[] }
  | { type: 'ping'; req: number; uploadedBytes: number }
  | { type: 'leave'; req: number };

export type TrackerReply =
  | { type: 'ok'; req: number }
  | { type: 'error'; req: number; code: string; message: string }
  | { type: 'registered'; req: number; host: string; port: number; heartbeatMs: number; expiryMs: number }
  | { type: 'announced'; req: number; results: AnnounceResult[] }
  | { type: 'files'; req: number; total: number; files: FileSummary[] }
  | { type: 'location'; req: number; manifest: Manifest; holders: Holder[] };

export type TrackerMessage = TrackerRequest | TrackerReply;

export function encodeTrackerMessage(msg: TrackerMessage): Buffer {
  const w = new Writer();
  switch (msg.type) {
    case 'register':
      w.u8(TrackerType.REGISTER).u32(msg.req).fixed(msg.peerId, PEER_ID_BYTES);
      w.str(msg.name, MAX_PEER_NAME_BYTES).u16(msg.port);
      break;
    case 'announce':
      if (msg.manifests.length > MAX_ANNOUNCE_BATCH) throw new RangeError('announce batch too large');
      w.u8(TrackerType.ANNOUNCE).u32(msg.req).u16(msg.manifests.length);
      for (const m of msg.manifests) writeManifest(w, m);
      break;
    case 'unshare':
      w.u8(TrackerType.UNSHARE).u32(msg.req).fixed(msg.fileId, HASH_BYTES);
      break;
    case 'list':
      w.u8(TrackerType.LIST).u32(msg.req).str(msg.query, MAX_QUERY_BYTES).u16(msg.limit);
      break;
    case 'locate':
      w.u8(TrackerType.LOCATE).u32(msg.req).fixed(msg.fileId, HASH_BYTES);
      break;
    case 'have':
      if (msg.indices.length > MAX_HAVE_BATCH) throw new RangeError('have batch too large');
      w.u8(TrackerType.HAVE).u32(msg.req).fixed(msg.fileId, HASH_BYTES).u16(msg.indices.length);
      for (const index of msg.indices) w.u32(index);
      break;
    case 'ping':
      w.u8(TrackerType.PING).u32(msg.req).u64(msg.uploadedBytes);
      break;
    case 'leave':
      w.u8(TrackerType.LEAVE).u32(msg.req);
      break;
    case 'ok':
      w.u8(TrackerType.OK).u32(msg.req);
      break;
    case 'error':
      w.u8(TrackerType.ERROR).u32(msg.req).str(msg.code, MAX_ERROR_CODE_BYTES);
      w.str(msg.message, MAX_ERROR_MESSAGE_BYTES);
      break;
    case 'registered':
      w.u8(TrackerType.REGISTERED).u32(msg.req).str(msg.host, MAX_HOST_BYTES).u16(msg.port);
      w.u32(msg.heartbeatMs).u32(msg.expiryMs);
      break;
    case 'announced':
      w.u8(TrackerType.ANNOUNCED).u32(msg.req).u16(msg.results.length);
      for (const r of msg.results) {
        w.fixed(r.fileId, HASH_BYTES)
          .str(r.code, MAX_ERROR_CODE_BYTES)
          .str(r.message, MAX_ERROR_MESSAGE_BYTES);
      }
      break;
    case 'files':
      if (msg.files.length > MAX_LIST_RESULTS) throw new RangeError('file list too long');
      w.u8(TrackerType.FILES).u32(msg.req).u32(msg.total).u16(msg.files.length);
      for (const f of msg.files) {
        w.fixed(f.id, HASH_BYTES).str(f.name, MAX_FILE_NAME_BYTES).u64(f.size).u32(f.chunks);
        w.u32(f.seeders).u32(f.peers);
      }
      break;
    case 'location':
      if (msg.holders.length > MAX_LOCATE_PEERS) throw new RangeError('too many holders');
      w.u8(TrackerType.LOCATION).u32(msg.req);
      writeManifest(w, msg.manifest);
      w.u16(msg.holders.length);
      for (const h of msg.holders) {
        w.fixed(h.peerId, PEER_ID_BYTES)
          .str(h.name, MAX_PEER_NAME_BYTES)
          .str(h.host, MAX_HOST_BYTES)
          .u16(h.port);
        w.blob(h.chunks.bytes, MAX_CHUNKS / 8);
      }
      break;
  }
  return w.finish();
}

export function decodeTrackerMessage(body: Buffer): TrackerMessage {
  const r = new Reader(body);
  const type = r.u8('type');
  const req = r.u32('request id');
  let msg: TrackerMessage;
  switch (type) {
    case TrackerType.REGISTER:
      msg = {
        type: 'register',
        req,
        peerId: r.copy(PEER_ID_BYTES, 'peer id'),
        name: r.str(MAX_PEER_NAME_BYTES, 'peer name'),
        port: r.u16('port'),
      };
      break;
    case TrackerType.ANNOUNCE: {
      const n = r.count(16, MAX_ANNOUNCE_BATCH, 'announce count');
      const manifests: Manifest[] = [];
      // Any name length: the tracker refuses a name over MAX_FILE_NAME_BYTES in that file's result.
      for (let i = 0; i < n; i++) manifests.push(readManifest(r, MAX_ANNOUNCED_NAME_BYTES));
      msg = { type: 'announce', req, manifests };
      break;
    }
    case TrackerType.UNSHARE:
      msg = { type: 'unshare', req, fileId: r.copy(HASH_BYTES, 'file id') };
      break;
    case TrackerType.LIST:
      msg = { type: 'list', req, query: r.str(MAX_QUERY_BYTES, 'query'), limit: r.u16('limit') };
      break;
    case TrackerType.LOCATE:
      msg = { type: 'locate', req, fileId: r.copy(HASH_BYTES, 'file id') };
      break;
    case TrackerType.HAVE: {
      const fileId = r.copy(HASH_BYTES, 'file id');
      const n = r.count(16, MAX_HAVE_BATCH, 'chunk count');
      const indices: number[] = [];
      for (let i = 0; i < n; i++) indices.push(r.u32('chunk index'));
      msg = { type: 'have', req, fileId, indices };
      break;
    }
    case TrackerType.PING:
      msg = { type: 'ping', req, uploadedBytes: r.u64('uploaded bytes') };
      break;
    case TrackerType.LEAVE:
      msg = { type: 'leave', req };
      break;
    case TrackerType.OK:
      msg = { type: 'ok', req };
      break;
    case TrackerType.ERROR:
      msg = {
        type: 'error',
        req,
        code: r.str(MAX_ERROR_CODE_BYTES, 'code'),
        message: r.str(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    case TrackerType.REGISTERED:
      msg = {
        type: 'registered',
        req,
        host: r.str(MAX_HOST_BYTES, 'host'),
        port: r.u16('port'),
        heartbeatMs: r.u32('heartbeat'),
        expiryMs: r.u32('expiry'),
      };
      break;
    case TrackerType.ANNOUNCED: {
      const n = r.count(16, MAX_ANNOUNCE_BATCH, 'result count');
      const results: AnnounceResult[] = [];
      for (let i = 0; i < n; i++) {
        results.push({
          fileId: r.copy(HASH_BYTES, 'file id'),
          code: r.str(MAX_ERROR_CODE_BYTES, 'code'),
          message: r.str(MAX_ERROR_MESSAGE_BYTES, 'message'),
        });
      }
      msg = { type: 'announced', req, results };
      break;
    }
    case TrackerType.FILES: {
      const total = r.u32('total');
      const n = r.count(16, MAX_LIST_RESULTS, 'file count');
      const files: FileSummary[] = [];
      for (let i = 0; i < n; i++) {
        files.push({
          id: r.copy(HASH_BYTES, 'file id'),
          name: r.str(MAX_FILE_NAME_BYTES, 'file name'),
          size: r.u64('size'),
          chunks: r.u32('chunks'),
          seeders: r.u32('seeders'),
          peers: r.u32('peers'),
        });
      }
      msg = { type: 'files', req, total, files };
      break;
    }
    case TrackerType.LOCATION: {
      const manifest = readManifest(r);
      const chunks = chunkCountOf(manifest.size, manifest.chunkSize);
      if (!Number.isFinite(chunks) || chunks > MAX_CHUNKS)
        throw new ProtocolError('manifest has too many chunks');
      const n = r.count(16, MAX_LOCATE_PEERS, 'holder count');
      const holders: Holder[] = [];
      for (let i = 0; i < n; i++) {
        const peerId = r.copy(PEER_ID_BYTES, 'peer id');
        const name = r.str(MAX_PEER_NAME_BYTES, 'peer name');
        const host = r.str(MAX_HOST_BYTES, 'host');
        const port = r.u16('port');
        const bits = r.blob(MAX_CHUNKS / 8, 'bitfield');
        if (bits.length !== Bitfield.byteLength(chunks) || !Bitfield.sparesClear(chunks, bits)) {
          throw new ProtocolError(`bitfield of ${bits.length} bytes does not fit ${chunks} chunks`);
        }
        holders.push({ peerId, name, host, port, chunks: new Bitfield(chunks, bits) });
      }
      msg = { type: 'location', req, manifest, holders };
      break;
    }
    default:
      throw new ProtocolError(`unknown tracker message type 0x${type.toString(16)}`);
  }
  r.end(msg.type);
  return msg;
}
