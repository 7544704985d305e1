/**
 * Private swarms. Nodes that share a swarm secret prove it to each other inside every TLS session,
 * before anything else is said: a node without it learns nothing but a refusal.
 *
 * The secret (a file's bytes, or a passphrase from the environment) is stretched with scrypt into a
 * 32-byte swarm key, once at start-up: a proof is seen by the other end of a connection, which may be
 * hostile, so guessing a passphrase from it must be slow. Proofs are HMACs of the TLS session's
 * exported keying material (RFC 8446 section 7.5), so a proof is worth nothing outside the session
 * it was made in, and the two ends' proofs differ by role, so one cannot be reflected back.
 */
import { createHmac, scrypt, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { SwarmError, errorMessage } from '../errors.js';

/** The environment variable that may hold a swarm passphrase instead of --secret FILE. */
export const SWARM_SECRET_ENV = 'SWARMSHARE_SECRET';
/** A secret shorter than this is refused: it would be guessed. */
export const MIN_SWARM_SECRET_BYTES = 12;
/** Larger files are not secrets someone meant to give us. */
export const MAX_SWARM_SECRET_BYTES = 64 * 1024;
/** scrypt cost: about 50-100 ms on one core here, once per process. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const SCRYPT_SALT = 'swarmshare swarm secret v1';
const EXPORTER_LABEL = 'EXPORTER-swarmshare-swarm-proof';
export const SWARM_PROOF_BYTES = 32;

export type Role = 'client' | 'server';

/** A key derived from the swarm secret. */
export class SwarmKey {
  private constructor(private readonly key: Buffer) {}

  static async derive(secret: Buffer): Promise<SwarmKey> {
    if (secret.length < MIN_SWARM_SECRET_BYTES) {
      throw new SwarmError(
        'ERR_INVALID_ARGUMENT',
        `a swarm secret must be at least ${MIN_SWARM_SECRET_BYTES} bytes (this one has ${secret.length})`,
      );
    }
    const key = await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, SCRYPT_SALT, 32, SCRYPT, (err, derived) => (err ? reject(err) : resolve(derived))),
    );
    return new SwarmKey(key);
  }

  /** Derives a key for another purpose (e.g. sealing LAN offers), never equal to the proof key. */
  subkey(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`swarmshare ${purpose}`).digest();
  }

  /** This end's proof for a session whose exported keying material is `sessionKey`. */
  proof(sessionKey: Buffer, role: Role): Buffer {
    return createHmac('sha256', this.key).update(role).update(sessionKey).digest();
  }

  /** Checks the other end's proof, in constant time. */
  verify(sessionKey: Buffer, role: Role, proof: Buffer): boolean {
    const expected = this.proof(sessionKey, role);
    return proof.length === expected.length && timingSafeEqual(proof, expected);
  }
}

/** The keying material a TLS session exports for swarm proofs: equal at both ends, unique to the session. */
export function sessionKeyOf(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0));
}

/**
 * Reads the swarm secret from `file` (its bytes, less trailing white space), or else from the
 * environment variable; null when neither is given (an open swarm).
 */
export async function loadSwarmKey(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SwarmKey | null> {
  if (file !== undefined) {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      throw new SwarmError('ERR_IO', `cannot read the swarm secret ${file}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    try {
      const { size } = await handle.stat();
      if (size > MAX_SWARM_SECRET_BYTES) {
        throw new SwarmError(
          'ERR_INVALID_ARGUMENT',
          `the swarm secret ${file} is over ${MAX_SWARM_SECRET_BYTES} bytes`,
        );
      }
      const bytes = await handle.readFile();
      return await SwarmKey.derive(trimEnd(bytes));
    } finally {
      await handle.close();
    }
  }
  const passphrase = env[SWARM_SECRET_ENV];
  if (passphrase === undefined || passphrase === '') return null;
  return SwarmKey.derive(Buffer.from(passphrase, 'utf8'));
}

/** A secret file written by an editor ends with a newline that the same secret typed elsewhere lacks. */
function trimEnd(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (
    end > 0 &&
    (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)
  )
    end--;
  return bytes.subarray(0, end);
}
