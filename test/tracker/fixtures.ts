import { createHash } from 'node:crypto';
/**
 * Shared fixtures for the tracker suites: manifests without files behind them, trackers and
 * clients torn down with the test, and a raw session for sending frames our client never would.
 */
import type { TestContext } from 'node:test';
import {
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  TARGET_MAX_CHUNKS,
  TRACKER_PROTOCOL,
  TRACKER_VERSIONS,
} from '../../src/constants.js';
import { computeFileId, type Manifest } from '../../src/storage/manifest.js';
import { TrackerClient, type TrackerClientOptions } from '../../src/tracker/client.js';
import { MemoryTrackerStore } from '../../src/tracker/memory-store.js';
import type { FileListing } from '../../src/tracker/store.js';
import { TrackerServer, type TrackerServerOptions } from '../../src/tracker/server.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { connectAs, credentialsOfLabel, identityOfLabel } from '../helpers/secure.js';
import { clientHandshake } from '../../src/wire/handshake.js';
import {
  decodeTrackerMessage,
  encodeTrackerMessage,
  type TrackerMessage,
  type TrackerReply,
} from '../../src/wire/tracker-messages.js';

export const HOST = '127.0.0.1';

/** The peer id of a label's identity (see credentialsOfLabel: a client connected with it has this id). */
export function idOf(label: string): Buffer {
  return identityOfLabel(label).peerId;
}

/**
 * A valid manifest for made-up content: `content` seeds the chunk hashes, so equal content gives
 * an equal file id whatever the name. The last chunk is short. The chunk size is by default the one
 * chunkSizeFor() gives the size, as a tracker requires: the smallest for up to TARGET_MAX_CHUNKS
 * chunks, the largest beyond.
 */
export function fakeManifest(
  name: string,
  content: string,
  chunks = 3,
  chunkSize = chunks > TARGET_MAX_CHUNKS ? MAX_CHUNK_SIZE : MIN_CHUNK_SIZE,
): Manifest {
  const hashes = Buffer.alloc(chunks * 32);
  for (let i = 0; i < chunks; i++)
    createHash('sha256')
      .update(`${content}/${i}`)
      .digest()
      .copy(hashes, i * 32);
  const size = chunks === 0 ? 0 : (chunks - 1) * chunkSize + 1000;
  return { id: computeFileId(size, chunkSize, hashes), name, size, chunkSize, hashes };
}

/** A tracker on 127.0.0.1, on a free port; closed when the test ends. */
export async function startTracker(
  t: TestContext,
  options: TrackerServerOptions = {},
): Promise<{ server: TrackerServer; port: number }> {
  const server = new TrackerServer(options);
  t.after(() => server.close());
  const { port } = await server.listen(0, HOST);
  return { server, port };
}

/** A memory store whose listing waits until `open()` is called, so requests pile up behind a LIST. */
export function gatedListingStore(t: TestContext): { store: MemoryTrackerStore; open: () => void } {
  const store = new MemoryTrackerStore();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const listFiles = store.listFiles.bind(store);
  store.listFiles = async (query: string, limit: number): Promise<FileListing> => {
    await gate;
    return listFiles(query, limit);
  };
  t.after(() => open());
  return { store, open };
}

/** A client of the tracker at `port`; closed when the test ends. */
export async function connectClient(
  t: TestContext,
  port: number,
  options: Partial<TrackerClientOptions> = {},
): Promise<TrackerClient> {
  const client = await TrackerClient.connect({ host: HOST, port, ...options });
  t.after(() => client.close());
  return client;
}

/** A registered client with the peer id of `label`. */
export async function registeredClient(
  t: TestContext,
  port: number,
  label: string,
  servePort = 7000,
): Promise<TrackerClient> {
  const client = await connectClient(t, port, { credentials: await credentialsOfLabel(label) });
  await client.register({ name: label, port: servePort });
  return client;
}

/** The ids (hex) of every file the tracker lists for `query`. */
export async function listedIds(client: TrackerClient, query = ''): Promise<string[]> {
  const { files } = await client.list(query);
  return files.map((f) => f.id.toString('hex')).sort();
}

/**
 * A session that speaks frames directly: for requests out of order, bad frames, and requests
 * our client refuses to send. Replies are queued as they arrive.
 */
export class RawSession {
  readonly conn: FramedConnection;
  readonly closed: Promise<Error | undefined>;
  private readonly replies: TrackerReply[] = [];
  private wake: (() => void) | null = null;

  /** The peer id this session proved: the only one it may register under. */
  readonly peerId: Buffer;

  private constructor(conn: FramedConnection, peerId: Buffer) {
    this.conn = conn;
    this.peerId = peerId;
    this.closed = new Promise((resolve) => conn.once('close', resolve));
    conn.onFrame((body) => {
      this.replies.push(decodeTrackerMessage(body) as TrackerReply);
      this.wake?.();
    });
    conn.on('close', () => this.wake?.());
  }

  /** Opens a session as `label`'s identity (so it may register as idOf(label)), or a throw-away one. */
  static async open(t: TestContext, port: number, handshake = true, label?: string): Promise<RawSession> {
    const credentials = label === undefined ? undefined : await credentialsOfLabel(label);
    const { socket, credentials: own, remotePeerId } = await connectAs(HOST, port, credentials);
    const conn = new FramedConnection(socket, { maxFrame: 1 << 23, remotePeerId });
    t.after(() => conn.destroy());
    if (handshake) await clientHandshake(conn, TRACKER_PROTOCOL, TRACKER_VERSIONS);
    return new RawSession(conn, own.peerId);
  }

  send(msg: TrackerMessage): void {
    this.conn.send(encodeTrackerMessage(msg));
  }

  /** Writes bytes to the socket as they are: no framing. */
  sendBytes(bytes: Buffer): void {
    this.conn.socket.write(bytes);
  }

  /** The next reply; rejects if the connection closes first. */
  async next(): Promise<TrackerReply> {
    while (this.replies.length === 0) {
      if (this.conn.isClosed) throw new Error('the connection closed before a reply');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.replies.shift()!;
  }

  /** Sends a request and returns its reply (the session must have nothing else outstanding). */
  async call(msg: TrackerMessage): Promise<TrackerReply> {
    this.send(msg);
    const reply = await this.next();
    if (reply.req !== msg.req) throw new Error(`reply ${reply.req} to request ${msg.req}`);
    return reply;
  }
}

/** Asserts a reply is an ERROR and returns its code. */
export function errorCodeOf(reply: TrackerReply): string {
  if (reply.type !== 'error') throw new Error(`expected an error reply, got ${reply.type}`);
  return reply.code;
}
