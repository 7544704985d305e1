/**
 * A peer's persistent identity: an Ed25519 key pair kept in the state folder as a PKCS#8 PEM file
 * (mode 0600). The peer id is the SHA-256 of the raw 32-byte public key, so a later protocol version
 * can have a peer prove that it owns its id by signing a challenge.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SwarmError, errorCode, errorMessage } from '../errors.js';
import { writeFileAtomic } from './atomic-file.js';

export const IDENTITY_FILE_NAME = 'identity.pem';

export interface Identity {
  /** SHA-256 of the raw public key (32 bytes). */
  peerId: Buffer;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/**
 * Loads the identity from `stateDir/identity.pem`, creating it on first use. A file that exists but
 * does not hold an Ed25519 private key is an ERR_IO error naming the file: a silently replaced identity
 * would make this peer a stranger to everyone that knew it.
 */
export async function loadOrCreateIdentity(stateDir: string): Promise<Identity> {
  const file = path.join(stateDir, IDENTITY_FILE_NAME);
  const existing = await readIdentity(file);
  if (existing) return existing;

  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  // No clobber: if another process created an identity meanwhile, theirs wins and we load it.
  const created = await writeFileAtomic(file, pem, { mode: 0o600, overwrite: false });
  if (!created) {
    const winner = await readIdentity(file);
    if (winner) return winner;
  }
  return identityOf(privateKey);
}

async function readIdentity(file: string): Promise<Identity | null> {
  let pem: string;
  try {
    pem = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw new SwarmError('ERR_IO', `cannot read the peer identity ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw corrupt(file, errorMessage(err), err);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw corrupt(file, `it holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  }
  return identityOf(privateKey);
}

function corrupt(file: string, why: string, cause?: unknown): SwarmError {
  return new SwarmError(
    'ERR_IO',
    `the peer identity ${file} is unreadable (${why}); move it away to start with a new identity`,
    { cause },
  );
}

export function identityOf(privateKey: KeyObject): Identity {
  const publicKey = createPublicKey(privateKey);
  return { peerId: peerIdOf(publicKey), publicKey, privateKey };
}

/** The peer id of an Ed25519 public key: SHA-256 of its raw 32 bytes. */
export function peerIdOf(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new SwarmError('ERR_INVALID_ARGUMENT', 'not an Ed25519 public key');
  return createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest();
}
