/**
 * What a node presents on every connection: its Ed25519 identity as a self-signed X.509 certificate
 * (TLS needs one), and the key of its private swarm, if it is in one.
 *
 * There is no certificate authority in a swarm. As in Syncthing and libp2p, a certificate is only a
 * container for the node's public key: the peer id is the SHA-256 of that key, so whoever completes
 * a TLS handshake with the certificate has proved that it holds the key of that peer id (TLS 1.3's
 * CertificateVerify is a signature by the key over the whole handshake).
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { identityOf, type Identity } from '../storage/identity.js';
import type { SwarmKey } from './swarm-secret.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface Credentials {
  /** SHA-256 of the raw Ed25519 public key: what every other node calls us. */
  peerId: Buffer;
  /** PEM certificate and PKCS#8 private key, for node:tls. */
  certificate: string;
  privateKey: string;
  /** Set in a private swarm: only nodes holding the same key complete a handshake with us. */
  swarmKey: SwarmKey | null;
}

/**
 * The certificate is valid from 2000 to 2100: validity dates mean nothing without a certificate
 * authority (the key is what is checked), and a wrong clock must never cut a node off.
 */
const NOT_BEFORE = new Date('2000-01-01T00:00:00Z');
const NOT_AFTER = new Date('2100-01-01T00:00:00Z');

/** Wraps a persistent identity in a certificate (made afresh at each start: it is cheap). */
export async function credentialsFor(
  identity: Identity,
  swarmKey: SwarmKey | null = null,
): Promise<Credentials> {
  const pkcs8 = identity.privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = identity.publicKey.export({ type: 'spki', format: 'der' });
  const algorithm = { name: 'Ed25519' };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, algorithm, true, ['verify']),
  };
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: identity.peerId.subarray(0, 16).toString('hex'),
    name: `CN=${identity.peerId.toString('hex')}`,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: algorithm,
  });
  return {
    peerId: identity.peerId,
    certificate: certificate.toString('pem'),
    privateKey: identity.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    swarmKey,
  };
}

/** Credentials of a throw-away identity: for one-shot commands and nodes without a state folder. */
export function ephemeralCredentials(swarmKey: SwarmKey | null = null): Promise<Credentials> {
  return credentialsFor(identityOf(generateKeyPairSync('ed25519').privateKey), swarmKey);
}
