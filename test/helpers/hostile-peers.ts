import { ephemeralCredentials, type Credentials } from '../../src/transport/credentials.js';
import { createSecureServer } from '../../src/transport/tls.js';
/**
 * Hostile peers for the security tests: chunk servers that speak the real peer protocol (the real
 * handshake and message codecs) and lie in the ways a download must survive. Each holds a real file
 * (and, to forge, a second one of the same size) and answers every REQUEST as its test tells it to.
 *
 * Like an honest server it answers the client's INFO with its INFO and an OFFERS of the whole file,
 * and GET_MANIFEST with a manifest (the true one unless told otherwise). Unlike ChunkServer it ignores
 * CANCEL (the protocol makes CANCEL best effort): every request it holds is answered in the end, so a
 * late answer to a cancelled request is always sent.
 *
 * The socket setup (TLS 1.3, as every node) lives in listenHostilePeer alone, so a change of
 * transport changes only it.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';
import { PEER_PROTOCOL, PEER_VERSIONS } from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { chunkCount, type Manifest } from '../../src/storage/manifest.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { TrackerClient } from '../../src/tracker/client.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { frameHeader } from '../../src/wire/framing.js';
import { serverHandshake } from '../../src/wire/handshake.js';
import { decodePeerMessage, encodePeerMessage, encodePieceHeader } from '../../src/wire/peer-messages.js';
import type { TestFile } from './peer-fixtures.js';

/** Clients send only small frames (HELLO, INFO, REQUEST, CANCEL, GET_MANIFEST). */
const MAX_CLIENT_FRAME = 64 * 1024;

/**
 * Listens on 127.0.0.1 (any free port) and hands each client, once it has passed the peer protocol's
 * handshake, to `onClient`; closed, with every connection, when the test ends. The one place a
 * hostile peer touches the transport.
 */
export async function listenHostilePeer(
  t: TestContext,
  credentials: Credentials,
  onClient: (conn: FramedConnection) => void,
): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const open = new Set<FramedConnection>();
  const server = createSecureServer({ credentials, handshakeTimeoutMs: 10_000 }, (socket, remotePeerId) => {
    connections++;
    const conn = new FramedConnection(socket, { maxFrame: MAX_CLIENT_FRAME, remotePeerId });
    open.add(conn);
    conn.once('close', () => open.delete(conn));
    serverHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS).then(
      () => onClient(conn),
      () => conn.destroy(),
    );
  });
  t.after(async () => {
    for (const conn of open) conn.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

/**
 * How to answer one REQUEST for chunk `index`:
 * - 'honest': the chunk asked for;
 * - 'corrupt': the chunk asked for with one byte flipped;
 * - 'forged': the chunk of the same index of the forged file;
 * - { bytesOf }: the true bytes of another chunk, labelled as the chunk asked for;
 * - { labelledAs }: the true bytes of another chunk, in a PIECE that names that other chunk;
 * - 'unrequested': a PIECE (true bytes) for a request id never sent on this connection;
 * - 'cut': half of the PIECE, then the connection is closed (a network that drops out);
 * - 'silent': no answer at all.
 */
export type Answer =
  | 'honest'
  | 'corrupt'
  | 'forged'
  | { bytesOf: number }
  | { labelledAs: number }
  | 'unrequested'
  | 'cut'
  | 'silent';

export interface ChunkRequest {
  index: number;
  /** Over all connections, from 0. */
  nth: number;
  /** Which connection it came on, from 1. */
  connection: number;
  /** True once the client has cancelled this request. */
  cancelled: () => boolean;
}

export interface HostilePeerOptions {
  file: TestFile;
  name: string;
  /** How to answer each request; it may take its time (a held answer). */
  answer: (request: ChunkRequest) => Answer | Promise<Answer>;
  /** GET_MANIFEST is answered with this; by default the true manifest. */
  manifest?: Manifest;
  /** What 'forged' answers come from: a file of the same size and chunk size. */
  forged?: TestFile;
  /** Who it is (TLS); a throw-away identity by default. Two hostile peers may share one. */
  credentials?: Credentials;
}

export interface HostilePeer {
  credentials: Credentials;
  peerId: Buffer;
  peerIdHex: string;
  name: string;
  port: number;
  /** Connections accepted so far. */
  connections: () => number;
  /** REQUESTs received, and their chunk indices in order of arrival. */
  requests: () => number;
  requestedIndices: () => number[];
  /** CANCELs received. */
  cancels: () => number;
  /** PIECEs sent (whole ones) for requests already cancelled by the client. */
  answersAfterCancel: () => number;
  manifestRequests: () => number;
  /** Registers with the tracker at `trackerPort` as `as` (default its own identity) and announces the file. */
  register: (t: TestContext, trackerPort: number, as?: Credentials) => Promise<TrackerClient>;
}

/** Starts a hostile peer on 127.0.0.1; closed when the test ends. */
export async function startHostilePeer(t: TestContext, options: HostilePeerOptions): Promise<HostilePeer> {
  const { file, name } = options;
  const manifest = file.manifest;
  const total = chunkCount(manifest);
  const credentials = options.credentials ?? (await ephemeralCredentials());
  const peerId = credentials.peerId;
  let port = 0;
  let connections = 0;
  let requests = 0;
  let cancels = 0;
  let answersAfterCancel = 0;
  let manifestRequests = 0;
  const requestedIndices: number[] = [];

  const chunkOf = (source: TestFile, index: number): Promise<Buffer> =>
    readFileChunk(source.path, source.manifest, index);

  const serve = (conn: FramedConnection): void => {
    const connection = ++connections;
    const cancelled = new Set<number>();
    let highestReq = 0;
    /** Set by a 'cut': nothing more may follow the half PIECE on this connection. */
    let cut = false;
    const sendPiece = (req: number, index: number, data: Buffer): void => {
      if (cut) return;
      if (cancelled.has(req)) answersAfterCancel++;
      conn.send(encodePieceHeader(req, index), data);
    };
    const answerRequest = async (req: number, index: number): Promise<void> => {
      const answer = await options.answer({
        index,
        nth: requests++,
        connection,
        cancelled: () => cancelled.has(req),
      });
      if (conn.isClosed || cut) return;
      if (answer === 'silent') return;
      if (answer === 'honest') return sendPiece(req, index, await chunkOf(file, index));
      if (answer === 'corrupt') {
        const data = await chunkOf(file, index);
        data[data.length >> 1]! ^= 0xff;
        return sendPiece(req, index, data);
      }
      if (answer === 'forged') return sendPiece(req, index, await chunkOf(options.forged!, index));
      if (answer === 'unrequested') {
        conn.send(encodePieceHeader(highestReq + 1000, index), await chunkOf(file, index));
        return;
      }
      if (answer === 'cut') {
        const data = await chunkOf(file, index);
        const header = encodePieceHeader(req, index);
        conn.socket.write(Buffer.concat([frameHeader(header.length + data.length), header]));
        // No other answer may slip in behind the half (the write's callback comes late over TLS).
        cut = true;
        conn.socket.write(data.subarray(0, data.length >> 1), () => conn.socket.destroy());
        return;
      }
      if ('bytesOf' in answer) return sendPiece(req, index, await chunkOf(file, answer.bytesOf));
      sendPiece(req, answer.labelledAs, await chunkOf(file, answer.labelledAs));
    };
    conn.onFrame((body) => {
      const msg = decodePeerMessage(body);
      switch (msg.type) {
        case 'info':
          conn.send(encodePeerMessage({ type: 'info', peerId, name, port }));
          conn.send(
            encodePeerMessage({
              type: 'offers',
              offers: [
                {
                  fileId: manifest.id,
                  name: manifest.name,
                  size: manifest.size,
                  chunkSize: manifest.chunkSize,
                  chunks: Bitfield.full(total),
                },
              ],
            }),
          );
          return;
        case 'get_manifest':
          manifestRequests++;
          conn.send(
            encodePeerMessage({ type: 'manifest', req: msg.req, manifest: options.manifest ?? manifest }),
          );
          return;
        case 'request':
          requestedIndices.push(msg.index);
          highestReq = Math.max(highestReq, msg.req);
          answerRequest(msg.req, msg.index).catch(() => conn.destroy());
          return;
        case 'cancel':
          cancels++;
          cancelled.add(msg.req);
          return;
        default:
          return;
      }
    });
  };

  const listening = await listenHostilePeer(t, credentials, serve);
  port = listening.port;
  return {
    credentials,
    peerId,
    peerIdHex: peerId.toString('hex'),
    name,
    port,
    connections: listening.connections,
    requests: () => requests,
    requestedIndices: () => [...requestedIndices],
    cancels: () => cancels,
    answersAfterCancel: () => answersAfterCancel,
    manifestRequests: () => manifestRequests,
    register: (t2, trackerPort, as = credentials) =>
      registerWithTracker(t2, trackerPort, { credentials: as, name, port }, manifest),
  };
}

/**
 * Registers a test peer serving at `who.port` with the tracker at `trackerPort` (heartbeats
 * included) and tells it the peer holds `manifest`'s file: whole, or only the `chunks` given (the
 * tracker must know the file already then). The session is closed when the test ends.
 */
export async function registerWithTracker(
  t: TestContext,
  trackerPort: number,
  who: { credentials: Credentials; name: string; port: number },
  manifest: Manifest,
  chunks?: number[],
): Promise<TrackerClient> {
  const client = await TrackerClient.connect({
    host: '127.0.0.1',
    port: trackerPort,
    credentials: who.credentials,
  });
  t.after(() => client.close());
  const registration = await client.register({ name: who.name, port: who.port });
  client.startHeartbeat(registration.heartbeatMs);
  if (chunks) {
    await client.have(manifest.id, chunks);
  } else {
    const [result] = await client.announce([manifest]);
    if (result?.code) throw new Error(`the tracker refused the announce: ${result.code} ${result.message}`);
  }
  return client;
}
