/**
 * Sealed LAN offers, format version 1: in a private swarm, a LAN offer (lan-offer.ts) travels
 * encrypted and authenticated with AES-256-GCM under a key derived from the swarm secret, so that
 * a host on the link without the secret can neither read one (no peer id, name, port or file) nor
 * forge one. The clear header only says what the datagram is, so that an open node ignores it.
 *
 *   magic      4 bytes   'SWSS' (53 57 53 53): a sealed offer (an open offer starts 'SWSH')
 *   version    u8        1
 *   nonce      bytes12   random, fresh for every datagram
 *   sealed     ...       AES-256-GCM of the plaintext below, the 5 header bytes as associated data
 *   tag        bytes16   the GCM authentication tag
 *
 *   plaintext: sentAt   u64   the sender's clock (ms since 1970) when it sealed the datagram
 *              offer    ...   a whole open LAN offer datagram, magic included
 *
 * The whole datagram is at most MAX_LAN_DATAGRAM bytes, so the open offer inside has
 * SEALED_LAN_OFFER_OVERHEAD bytes less. `sentAt` is inside the seal so that the receiver can refuse
 * a recorded offer replayed later (src/discovery/lan.ts decides how old is too old).
 *
 * Random 96-bit nonces are safe for about 2^32 datagrams under one key (NIST SP 800-38D); a peer
 * announcing every few seconds on a few interfaces sends that many in centuries.
 *
 * unsealLanOffer throws ProtocolError, and nothing else, for any datagram it cannot open; a
 * datagram that is well framed but fails authentication (another swarm's, forged or corrupted)
 * throws its subclass UnauthenticLanOfferError.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { MAX_LAN_DATAGRAM } from '../constants.js';
import { ProtocolError, Reader, Writer } from './codec.js';

export const SEALED_LAN_OFFER_MAGIC = Buffer.from('SWSS', 'latin1');
export const SEALED_LAN_OFFER_VERSION = 1;
/** What the swarm key's subkey for sealing LAN offers is derived for (SwarmKey.subkey). */
export const SEALED_LAN_OFFER_PURPOSE = 'lan offers';
export const SEALED_LAN_OFFER_KEY_BYTES = 32;
export const SEALED_LAN_OFFER_NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = SEALED_LAN_OFFER_MAGIC.length + 1;
const SENT_AT_BYTES = 8;
/** Bytes a sealed datagram adds to the open offer it carries: header, nonce, timestamp, tag. */
export const SEALED_LAN_OFFER_OVERHEAD =
  HEADER_BYTES + SEALED_LAN_OFFER_NONCE_BYTES + SENT_AT_BYTES + TAG_BYTES;
/** The largest open offer a sealed datagram can carry (the budget to encode it with). */
export const MAX_SEALED_LAN_OFFER_PLAINTEXT = MAX_LAN_DATAGRAM - SEALED_LAN_OFFER_OVERHEAD;

const HEADER = Buffer.concat([SEALED_LAN_OFFER_MAGIC, Buffer.from([SEALED_LAN_OFFER_VERSION])]);
const CIPHER = 'aes-256-gcm';

/** What a sealed datagram carried. */
export interface UnsealedLanOffer {
  nonce: Buffer;
  /** The sender's clock when it sealed the datagram (ms since 1970). */
  sentAt: number;
  /** The open LAN offer datagram, for decodeLanOffer. */
  offer: Buffer;
}

/** A sealed offer that does not authenticate under our key: another swarm's, forged or corrupted. */
export class UnauthenticLanOfferError extends ProtocolError {
  constructor() {
    super('a sealed LAN offer fails authentication (another swarm, or forged or corrupted)');
    this.name = 'UnauthenticLanOfferError';
  }
}

/** True if `datagram` claims to be a sealed offer (its magic), whether or not it opens. */
export function isSealedLanOffer(datagram: Buffer): boolean {
  return (
    datagram.length >= SEALED_LAN_OFFER_MAGIC.length &&
    datagram.subarray(0, SEALED_LAN_OFFER_MAGIC.length).equals(SEALED_LAN_OFFER_MAGIC)
  );
}

/**
 * Seals an open offer datagram (at most MAX_SEALED_LAN_OFFER_PLAINTEXT bytes) under `key`, stamped
 * `sentAt`. The nonce is random unless given (tests and fuzzing give one to get fixed bytes).
 * Throws RangeError for values that cannot be sealed (a bug in the caller).
 */
export function sealLanOffer(
  key: Buffer,
  offer: Buffer,
  sentAt: number,
  nonce: Buffer = randomBytes(SEALED_LAN_OFFER_NONCE_BYTES),
): Buffer {
  checkKey(key);
  if (nonce.length !== SEALED_LAN_OFFER_NONCE_BYTES) throw new RangeError(`a nonce is 12 bytes`);
  if (offer.length > MAX_SEALED_LAN_OFFER_PLAINTEXT) {
    throw new RangeError(`an offer of ${offer.length} bytes exceeds ${MAX_SEALED_LAN_OFFER_PLAINTEXT}`);
  }
  const plaintext = new Writer(SENT_AT_BYTES + offer.length).u64(sentAt).bytes(offer).finish();
  const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(HEADER);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([HEADER, nonce, sealed, cipher.getAuthTag()]);
}

/** Opens a sealed datagram. Throws ProtocolError (UnauthenticLanOfferError if it does not authenticate). */
export function unsealLanOffer(key: Buffer, datagram: Buffer): UnsealedLanOffer {
  checkKey(key);
  if (datagram.length > MAX_LAN_DATAGRAM) {
    throw new ProtocolError(`sealed LAN offer of ${datagram.length} bytes exceeds ${MAX_LAN_DATAGRAM}`);
  }
  if (!isSealedLanOffer(datagram)) throw new ProtocolError('not a sealed LAN offer (wrong magic)');
  if (datagram.length < SEALED_LAN_OFFER_OVERHEAD) {
    throw new ProtocolError(`truncated sealed LAN offer: ${datagram.length} bytes`);
  }
  const version = datagram[SEALED_LAN_OFFER_MAGIC.length]!;
  if (version !== SEALED_LAN_OFFER_VERSION) {
    throw new ProtocolError(`sealed LAN offer version ${version} is not supported`);
  }
  const nonce = Buffer.from(datagram.subarray(HEADER_BYTES, HEADER_BYTES + SEALED_LAN_OFFER_NONCE_BYTES));
  const sealed = datagram.subarray(HEADER_BYTES + SEALED_LAN_OFFER_NONCE_BYTES, datagram.length - TAG_BYTES);
  const tag = datagram.subarray(datagram.length - TAG_BYTES);
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(HEADER);
    decipher.setAuthTag(tag);
    plaintext = Buffer.concat([decipher.update(sealed), decipher.final()]);
  } catch {
    throw new UnauthenticLanOfferError();
  }
  const r = new Reader(plaintext);
  const sentAt = r.u64('sealed offer timestamp');
  return { nonce, sentAt, offer: r.copy(r.remaining, 'sealed offer') };
}

function checkKey(key: Buffer): void {
  if (key.length !== SEALED_LAN_OFFER_KEY_BYTES) {
    throw new RangeError(`a LAN offer key is ${SEALED_LAN_OFFER_KEY_BYTES} bytes`);
  }
}
