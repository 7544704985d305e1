/**
 * The handshake that opens every connection, tracker and peer alike. Its layout never changes
 * between protocol versions, so any two builds can at least tell each other why they disagree.
 *
 *   HELLO   0x01  str protocol (<= 64) | u8 n (1..16) | u16 version * n      client -> server
 *   WELCOME 0x02  u16 version                                                 server -> client
 *   REFUSE  0x03  str code | str message | u8 n (<= 16) | u16 version * n     server -> client, then close
 *   PROOF   0x04  bytes32 proof                                               both, private swarms only
 *
 * The server answers with the highest version both sides support, or refuses naming its own.
 *
 * In a private swarm (see transport/swarm-secret.ts) the client's PROOF comes before its HELLO, and the
 * server's after checking it, before its WELCOME: a node without the secret is refused before it
 * learns anything, and a client never takes a server without the secret for a member.
 */
import { TLSSocket } from 'node:tls';
import { HANDSHAKE_TIMEOUT_MS, MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES } from '../constants.js';
import { RemoteError, SwarmError, isErrorCode } from '../errors.js';
import { ProtocolError, Reader, Writer } from './codec.js';
import { SWARM_PROOF_BYTES, sessionKeyOf, type Role, type SwarmKey } from '../transport/swarm-secret.js';
import type { FramedConnection } from './connection.js';

export const HELLO = 0x01;
export const WELCOME = 0x02;
export const REFUSE = 0x03;
export const PROOF = 0x04;
const MAX_PROTOCOL_NAME_BYTES = 64;
const MAX_VERSIONS = 16;

export interface Hello {
  protocol: string;
  versions: number[];
}

export interface Refusal {
  code: string;
  message: string;
  versions: number[];
}

function writeVersions(writer: Writer, versions: readonly number[]): void {
  writer.u8(versions.length);
  for (const version of versions) writer.u16(version);
}

function readVersions(reader: Reader, min: number): number[] {
  const count = reader.count(8, MAX_VERSIONS, 'version count');
  if (count < min) throw new ProtocolError('no versions offered');
  const versions: number[] = [];
  for (let i = 0; i < count; i++) versions.push(reader.u16('version'));
  return versions;
}

export function encodeHello(hello: Hello): Buffer {
  const writer = new Writer().u8(HELLO).str(hello.protocol, MAX_PROTOCOL_NAME_BYTES);
  writeVersions(writer, hello.versions);
  return writer.finish();
}

export function decodeHello(body: Buffer): Hello {
  const reader = new Reader(body);
  if (reader.u8('type') !== HELLO) throw new ProtocolError('expected a HELLO to open the connection');
  const protocol = reader.str(MAX_PROTOCOL_NAME_BYTES, 'protocol name');
  const versions = readVersions(reader, 1);
  reader.end('HELLO');
  return { protocol, versions };
}

export function encodeWelcome(version: number): Buffer {
  return new Writer(3).u8(WELCOME).u16(version).finish();
}

export function encodeRefuse(refusal: Refusal): Buffer {
  const writer = new Writer()
    .u8(REFUSE)
    .str(refusal.code, MAX_ERROR_CODE_BYTES)
    .str(refusal.message, MAX_ERROR_MESSAGE_BYTES);
  writeVersions(writer, refusal.versions);
  return writer.finish();
}

export function encodeProof(proof: Buffer): Buffer {
  return new Writer(1 + SWARM_PROOF_BYTES).u8(PROOF).fixed(proof, SWARM_PROOF_BYTES).finish();
}

/** The proof in a PROOF frame, or null if the frame is something else. */
export function decodeProof(body: Buffer): Buffer | null {
  const reader = new Reader(body);
  if (reader.u8('type') !== PROOF) return null;
  const proof = reader.copy(SWARM_PROOF_BYTES, 'proof');
  reader.end('PROOF');
  return proof;
}

/** Decodes the server's answer: a version number, or the refusal it sent. */
export function decodeHandshakeReply(body: Buffer): { version: number } | { refusal: Refusal } {
  const reader = new Reader(body);
  const type = reader.u8('type');
  if (type === WELCOME) {
    const version = reader.u16('version');
    reader.end('WELCOME');
    return { version };
  }
  if (type === REFUSE) {
    const code = reader.str(MAX_ERROR_CODE_BYTES, 'code');
    const message = reader.str(MAX_ERROR_MESSAGE_BYTES, 'message');
    const versions = readVersions(reader, 0);
    reader.end('REFUSE');
    return { refusal: { code, message, versions } };
  }
  throw new ProtocolError(`expected WELCOME or REFUSE, got message type ${type}`);
}

/** The highest version in both lists, or undefined. */
export function pickVersion(ours: readonly number[], theirs: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const version of theirs) {
    if (ours.includes(version) && (best === undefined || version > best)) best = version;
  }
  return best;
}

/** Waits for the first frame on a connection, with the handshake deadline. */
function firstFrame(conn: FramedConnection, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new SwarmError('ERR_HANDSHAKE_TIMEOUT', `no handshake within ${timeoutMs} ms`);
      conn.destroy(err);
      reject(err);
    }, timeoutMs);
    timer.unref();
    const onClose = (reason: Error | undefined): void => {
      clearTimeout(timer);
      reject(reason ?? new SwarmError('ERR_CLOSED', 'connection closed during the handshake'));
    };
    conn.once('close', onClose);
    conn.onFrame((body) => {
      clearTimeout(timer);
      conn.off('close', onClose);
      // Whatever follows belongs to the protocol, which takes over once the handshake resolves.
      conn.holdFrames();
      resolve(body);
    });
  });
}

/**
 * Decodes a handshake frame, closing the connection if it is malformed: the first frame is read
 * outside the connection's own frame handler, so its choke point does not cover this one.
 */
function decodeOrDestroy<T>(conn: FramedConnection, body: Buffer, decode: (body: Buffer) => T): T {
  try {
    return decode(body);
  } catch (err) {
    conn.destroy(err as Error);
    throw err;
  }
}

/** What a private swarm's handshake needs: the swarm key and the TLS session's exported key. */
function swarmProofs(
  conn: FramedConnection,
  key: SwarmKey,
): { ours(role: Role): Buffer; check(role: Role, proof: Buffer): boolean } {
  const socket = conn.socket;
  if (!(socket instanceof TLSSocket)) {
    throw new SwarmError('ERR_SWARM_SECRET', 'a private swarm needs an encrypted connection');
  }
  const sessionKey = sessionKeyOf(socket);
  return {
    ours: (role) => key.proof(sessionKey, role),
    check: (role, proof) => key.verify(sessionKey, role, proof),
  };
}

/**
 * Client side: offers our versions and resolves with the one the server chose. With a swarm key,
 * proves it first and requires the server's proof before its WELCOME.
 */
export async function clientHandshake(
  conn: FramedConnection,
  protocol: string,
  versions: readonly number[],
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
  swarmKey: SwarmKey | null = null,
): Promise<number> {
  const proofs = swarmKey ? swarmProofs(conn, swarmKey) : null;
  let reply = firstFrame(conn, timeoutMs);
  if (proofs) conn.send(encodeProof(proofs.ours('client')));
  conn.send(encodeHello({ protocol, versions: [...versions] }));
  let body = await reply;
  const proof = decodeOrDestroy(conn, body, decodeProof);
  if (proof) {
    if (!proofs || !proofs.check('server', proof)) {
      const message = proofs
        ? 'the other node proved a different swarm secret'
        : 'the other node is in a private swarm: a swarm secret is needed (--secret)';
      const err = new SwarmError('ERR_SWARM_SECRET', message);
      conn.destroy(err);
      throw err;
    }
    reply = firstFrame(conn, timeoutMs);
    body = await reply;
  }
  const answer = decodeOrDestroy(conn, body, decodeHandshakeReply);
  if ('refusal' in answer) {
    conn.destroy();
    const { code, message } = answer.refusal;
    throw new RemoteError(isErrorCode(code) ? code : 'ERR_PROTOCOL', message);
  }
  if (proofs && !proof) {
    const err = new SwarmError(
      'ERR_SWARM_SECRET',
      'the other node is not in our private swarm (it proved no secret)',
    );
    conn.destroy(err);
    throw err;
  }
  if (!versions.includes(answer.version)) {
    const err = new ProtocolError(`server chose version ${answer.version}, which we did not offer`);
    conn.destroy(err);
    throw err;
  }
  return answer.version;
}

/**
 * Server side: reads the client's HELLO and answers it. Resolves with the agreed version, or
 * rejects after sending a refusal (the connection then closes). With a swarm key, the client must
 * prove it before its HELLO is even read.
 */
export async function serverHandshake(
  conn: FramedConnection,
  protocol: string,
  versions: readonly number[],
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
  swarmKey: SwarmKey | null = null,
): Promise<number> {
  const refuse = (
    code: 'ERR_PROTOCOL' | 'ERR_UNSUPPORTED_VERSION' | 'ERR_SWARM_SECRET',
    message: string,
  ): never => {
    conn.sendAndEnd(encodeRefuse({ code, message, versions: [...versions] }));
    throw new SwarmError(code, message);
  };
  const proofs = swarmKey ? swarmProofs(conn, swarmKey) : null;
  let body = await firstFrame(conn, timeoutMs);
  const proof = decodeOrDestroy(conn, body, decodeProof);
  if (proof) {
    if (!proofs) refuse('ERR_SWARM_SECRET', 'this node is in an open swarm: connect without a swarm secret');
    if (!proofs!.check('client', proof)) refuse('ERR_SWARM_SECRET', 'wrong swarm secret');
    body = await firstFrame(conn, timeoutMs);
  } else if (proofs) {
    refuse('ERR_SWARM_SECRET', 'this swarm is private: a swarm secret is needed (--secret)');
  }
  const hello = decodeOrDestroy(conn, body, decodeHello);
  const supported = versions.join(', ');
  if (hello.protocol !== protocol) {
    refuse('ERR_PROTOCOL', `this is a ${protocol} endpoint (versions ${supported}), not ${hello.protocol}`);
  }
  const version = pickVersion(versions, hello.versions);
  if (version === undefined) {
    refuse(
      'ERR_UNSUPPORTED_VERSION',
      `unsupported ${protocol} version ${hello.versions.join(', ')}; this server supports ${supported}`,
    );
  }
  if (proofs) conn.send(encodeProof(proofs.ours('server')));
  conn.send(encodeWelcome(version!));
  return version!;
}
