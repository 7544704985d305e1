/**
 * Test clients that speak the transport every node speaks (TLS 1.3 with a certificate, see
 * src/transport/tls.ts), for tests that talk to a tracker or chunk server frame by frame.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import type tls from 'node:tls';
import { identityOf, type Identity } from '../../src/storage/identity.js';
import { credentialsFor, ephemeralCredentials, type Credentials } from '../../src/transport/credentials.js';
import { connectSecure } from '../../src/transport/tls.js';

export interface TestConnection {
  socket: tls.TLSSocket;
  /** Who we proved to be: a test's INFO or REGISTER must carry credentials.peerId. */
  credentials: Credentials;
  /** Who the server proved to be. */
  remotePeerId: Buffer;
}

/** Connects as a fresh throw-away identity (or `credentials`), with the TLS handshake done. */
export async function connectAs(
  host: string,
  port: number,
  credentials?: Credentials,
  timeoutMs = 5000,
): Promise<TestConnection> {
  const own = credentials ?? (await ephemeralCredentials());
  const { socket, remotePeerId } = await connectSecure(host, port, { credentials: own, timeoutMs });
  return { socket, credentials: own, remotePeerId };
}

/** The TLS socket of connectAs(), for tests that do not care who they are. */
export async function connectTls(host: string, port: number, timeoutMs = 5000): Promise<tls.TLSSocket> {
  return (await connectAs(host, port, undefined, timeoutMs)).socket;
}

/** PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The identity whose key is derived from `label`: the same label, the same peer id, in any process. */
export function identityOfLabel(label: string): Identity {
  const seed = createHash('sha256').update(`test identity ${label}`).digest();
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
  return identityOf(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
}

const labelled = new Map<string, Promise<Credentials>>();

/** Credentials of identityOfLabel(label), made once per label and process. */
export function credentialsOfLabel(label: string): Promise<Credentials> {
  let credentials = labelled.get(label);
  if (!credentials) {
    credentials = credentialsFor(identityOfLabel(label));
    labelled.set(label, credentials);
  }
  return credentials;
}
