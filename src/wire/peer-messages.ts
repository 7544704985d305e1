/**
 * Peer protocol, version 1: chunk transfer between peers, after the handshake.
 * A client may pipeline many REQUESTs; the server answers each with PIECE or REJECT, in any order.
 *
 *   REQUEST  0x30  u32 req | bytes32 fileId | u32 index
 *   CANCEL   0x31  u32 req                         (best effort: the PIECE may already be on its way)
 *   PIECE    0x40  u32 req | u32 index | data       data is the rest of the frame: the whole chunk
 *   REJECT   0x41  u32 req | str code (<=64) | str message (<=1024)
 *
 * A PIECE is sent as a 9-byte header and the chunk bytes as they were read from disk, not copied.
 */
import { HASH_BYTES, MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES } from '../constants.js';
import { ProtocolError, Reader, Writer } from './codec.js';

export const PeerType = {
  REQUEST: 0x30,
  CANCEL: 0x31,
  PIECE: 0x40,
  REJECT: 0x41,
} as const;

export type PeerMessage =
  | { type: 'request'; req: number; fileId: Buffer; index: number }
  | { type: 'cancel'; req: number }
  | { type: 'piece'; req: number; index: number; data: Buffer }
  | { type: 'reject'; req: number; code: string; message: string };

export const PIECE_HEADER_BYTES = 9;

/** The header of a PIECE frame; send it followed by the chunk bytes as one frame. */
export function encodePieceHeader(req: number, index: number): Buffer {
  const header = Buffer.allocUnsafe(PIECE_HEADER_BYTES);
  header.writeUInt8(PeerType.PIECE, 0);
  header.writeUInt32BE(req, 1);
  header.writeUInt32BE(index, 5);
  return header;
}

export function encodePeerMessage(msg: PeerMessage): Buffer {
  const w = new Writer(64);
  switch (msg.type) {
    case 'request':
      w.u8(PeerType.REQUEST).u32(msg.req).fixed(msg.fileId, HASH_BYTES).u32(msg.index);
      break;
    case 'cancel':
      w.u8(PeerType.CANCEL).u32(msg.req);
      break;
    case 'piece':
      return Buffer.concat([encodePieceHeader(msg.req, msg.index), msg.data]);
    case 'reject':
      w.u8(PeerType.REJECT).u32(msg.req).str(msg.code, MAX_ERROR_CODE_BYTES);
      w.str(msg.message, MAX_ERROR_MESSAGE_BYTES);
      break;
  }
  return w.finish();
}

/** Decodes one frame body. PIECE data is a view into the body: no copy. */
export function decodePeerMessage(body: Buffer): PeerMessage {
  const r = new Reader(body);
  const type = r.u8('type');
  const req = r.u32('request id');
  let msg: PeerMessage;
  switch (type) {
    case PeerType.REQUEST:
      msg = { type: 'request', req, fileId: r.copy(HASH_BYTES, 'file id'), index: r.u32('chunk index') };
      break;
    case PeerType.CANCEL:
      msg = { type: 'cancel', req };
      break;
    case PeerType.PIECE: {
      const index = r.u32('chunk index');
      msg = { type: 'piece', req, index, data: r.bytes(r.remaining, 'chunk data') };
      break;
    }
    case PeerType.REJECT:
      msg = {
        type: 'reject',
        req,
        code: r.str(MAX_ERROR_CODE_BYTES, 'code'),
        message: r.str(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    default:
      throw new ProtocolError(`unknown peer message type 0x${type.toString(16)}`);
  }
  r.end(msg.type);
  return msg;
}
