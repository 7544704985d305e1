/**
 * Hostile ends of a connection, for security tests: a tracker, a peer or a client written in the
 * test with the real wire codecs, saying what no swarmshare build would.
 *
 * The transport lives in listenHostile and connectHostile alone (TLS 1.3 on loopback). When the
 * transport changes, only these two change: they must hand over a Duplex carrying the
 * protocol's bytes exactly as swarmshare's own ends exchange them, so everything built on top
 * (FrameLink, the handshake, the messages) stays as it is.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { ephemeralCredentials, type Credentials } from '../../src/transport/credentials.js';
import { connectSecure, createSecureServer } from '../../src/transport/tls.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/framing.js';
import { decodeHandshakeReply, decodeHello, encodeHello, encodeWelcome } from '../../src/wire/handshake.js';

export const HOSTILE_HOST = '127.0.0.1';

// ---- The transport: the only part that changes with it ---------------------------------------------

/**
 * Listens on loopback (a free port) and hands each connection a client opens to `onConnection`,
 * past the TLS handshake (the transport every swarmshare node speaks). Closed, connections included,
 * when the test ends. `peerId` is the id it proves, which its INFO must carry to be believed.
 */
export async function listenHostile(
  t: TestContext,
  onConnection: (stream: Duplex) => void,
): Promise<{ host: string; port: number; peerId: Buffer }> {
  const sockets = new Set<net.Socket>();
  const credentials = await ephemeralCredentials();
  const server = createSecureServer({ credentials, handshakeTimeoutMs: 10_000 }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOSTILE_HOST, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return { host: HOSTILE_HOST, port, peerId: credentials.peerId };
}

export interface OpenOptions {
  /** The source address (any of 127.0.0.0/8 works on Linux loopback): a remote of its own. */
  localAddress?: string;
  /** How long to wait for the connection. */
  timeoutMs?: number;
  /**
   * Who to be in the TLS handshake: a throw-away identity by default (whatever the connection
   * registers or introduces itself as must be its id).
   */
  credentials?: Credentials;
}

/**
 * Opens a connection to a swarmshare server on loopback, past the TLS handshake. A server that closes
 * on it resets the connection: that is an expected end, not an error.
 */
export async function openSecure(port: number, options: OpenOptions = {}): Promise<Duplex> {
  const { socket } = await connectSecure(HOSTILE_HOST, port, {
    credentials: options.credentials ?? (await ephemeralCredentials()),
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  socket.on('error', () => undefined);
  return socket;
}

/** openSecure as `credentials`; destroyed when the test ends. */
export async function connectHostile(
  t: TestContext,
  port: number,
  credentials?: Credentials,
): Promise<Duplex> {
  const socket = await openSecure(port, credentials ? { credentials } : {});
  t.after(() => socket.destroy());
  return socket;
}

// ---- On top of any transport: frames and the handshake ---------------------------------------------

/** Frames over a Duplex, with the real framing; frames that arrive are queued until read. */
export class FrameLink {
  /** Frame bodies received and not yet taken. */
  readonly frames: Buffer[] = [];
  private wake: (() => void) | null = null;
  private ended = false;

  constructor(
    readonly stream: Duplex,
    maxFrame = 64 * 1024 * 1024,
  ) {
    const decoder = new FrameDecoder(maxFrame, (body) => {
      // The decoder may reuse pooled memory: keep a copy.
      this.frames.push(Buffer.from(body));
      this.wake?.();
    });
    stream.on('data', (data: Buffer) => {
      try {
        decoder.push(data);
      } catch {
        stream.destroy();
      }
    });
    const end = (): void => {
      this.ended = true;
      this.wake?.();
    };
    stream.on('close', end);
    stream.on('end', end);
    stream.on('error', end);
  }

  send(body: Buffer): void {
    if (!this.stream.destroyed) this.stream.write(encodeFrame(body));
  }

  /** The next frame's body, or null once the other end has closed. */
  async next(): Promise<Buffer | null> {
    while (this.frames.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return this.frames.shift()!;
  }

  close(): void {
    this.stream.end();
  }
}

/** Server side of the handshake: reads the HELLO and welcomes the highest version it offers. */
export async function acceptHandshake(link: FrameLink): Promise<string | null> {
  const body = await link.next();
  if (!body) return null;
  const hello = decodeHello(body);
  link.send(encodeWelcome(Math.max(...hello.versions)));
  return hello.protocol;
}

/** Client side of the handshake; throws if the server refuses. */
export async function openHandshake(link: FrameLink, protocol: string, versions: number[]): Promise<void> {
  link.send(encodeHello({ protocol, versions }));
  const body = await link.next();
  if (!body) throw new Error('closed during the handshake');
  const reply = decodeHandshakeReply(body);
  if ('refusal' in reply) throw new Error(`refused: ${reply.refusal.code} ${reply.refusal.message}`);
}
