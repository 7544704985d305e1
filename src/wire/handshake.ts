/**
 * The handshake that opens every connection, tracker and peer alike. Its layout never changes
 * between protocol versions, so any two builds can at least tell each other why they disagree.
 *
 *   HELLO   0x01  str protocol (<= 64) | u8 n (1..16) | u16 version * n      client -> server
 *   WELCOME 0x02  u16 version                                                 server -> client
 *   REFUSE  0x03  str code | str message | u8 n (<= 16) | u16 version * n     server -> client, then close
 *
 * The server answers with the highest version both sides support, or refuses naming its own.
 */
import { HANDSHAKE_TIMEOUT_MS, MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES } from '../constants.js';
import { RemoteError, SwarmError, isErrorCode } from '../errors.js';
import { ProtocolError, Reader, Writer } from './codec.js';
import type { FramedConnection } from './connection.js';

export const HELLO = 0x01;
export const WELCOME = 0x02;
export const REFUSE = 0x03;
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

/** Client side: offers our versions and resolves with the one the server chose. */
export async function clientHandshake(
  conn: FramedConnection,
  protocol: string,
  versions: readonly number[],
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<number> {
  const reply = firstFrame(conn, timeoutMs);
  conn.send(encodeHello({ protocol, versions: [...versions] }));
  const answer = decodeOrDestroy(conn, await reply, decodeHandshakeReply);
  if ('refusal' in answer) {
    conn.destroy();
    const { code, message } = answer.refusal;
    throw new RemoteError(isErrorCode(code) ? code : 'ERR_PROTOCOL', message);
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
 * rejects after sending a refusal (the connection then closes).
 */
export async function serverHandshake(
  conn: FramedConnection,
  protocol: string,
  versions: readonly number[],
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<number> {
  const hello = decodeOrDestroy(conn, await firstFrame(conn, timeoutMs), decodeHello);
  const supported = versions.join(', ');
  if (hello.protocol !== protocol) {
    const message = `this is a ${protocol} endpoint (versions ${supported}), not ${hello.protocol}`;
    conn.sendAndEnd(encodeRefuse({ code: 'ERR_PROTOCOL', message, versions: [...versions] }));
    throw new SwarmError('ERR_PROTOCOL', message);
  }
  const version = pickVersion(versions, hello.versions);
  if (version === undefined) {
    const message = `unsupported ${protocol} version ${hello.versions.join(', ')}; this server supports ${supported}`;
    conn.sendAndEnd(encodeRefuse({ code: 'ERR_UNSUPPORTED_VERSION', message, versions: [...versions] }));
    throw new SwarmError('ERR_UNSUPPORTED_VERSION', message);
  }
  conn.send(encodeWelcome(version));
  return version;
}
