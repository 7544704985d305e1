/**
 * Hostile clients for the limits tests: connections that say what no client of ours would, as fast
 * or as slowly as they like.
 *
 * Every hostile connection that must get past the transport (to misbehave in the protocol itself)
 * is opened by openSecure() (./hostile.ts) and used as a plain Duplex, so the tests stay valid
 * whatever the transport becomes. A connection that never says anything at all may be a raw
 * net.connect.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { encodeFrame } from '../../src/wire/framing.js';
import { decodeHandshakeReply, encodeHello } from '../../src/wire/handshake.js';
import { FrameLink, HOSTILE_HOST, openSecure, type OpenOptions } from './hostile.js';

export type HostileOptions = OpenOptions;

/**
 * Opens a bare TCP connection to `port` on 127.0.0.1: for a client that never says anything (so it
 * stays in the transport's own handshake, if there is one, or in ours).
 */
export function connectRaw(port: number, options: HostileOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: HOSTILE_HOST,
      port,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${port} timed out`));
    }, options.timeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // A server that closes on us resets the connection: that is the expected end, not an error.
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * A hostile connection with just enough protocol to misbehave in it: frames out, frames in, the
 * handshake, and how it ended.
 */
export class Hostile {
  /** Resolves when the connection has closed (whoever closed it). */
  readonly closed: Promise<void>;
  private readonly link: FrameLink;
  private isOpen = true;

  /** The peer id this connection proved (null for a raw one): the only id it may register under. */
  readonly peerId: Buffer | null;

  constructor(
    readonly stream: Duplex,
    peerId: Buffer | null = null,
  ) {
    this.peerId = peerId;
    this.link = new FrameLink(stream);
    this.closed = new Promise((resolve) =>
      stream.once('close', () => {
        this.isOpen = false;
        resolve();
      }),
    );
  }

  /** Opens one (see openSecure); destroyed when the test ends. */
  static async open(t: TestContext, port: number, options: HostileOptions = {}): Promise<Hostile> {
    const credentials = options.credentials ?? (await ephemeralCredentials());
    const hostile = new Hostile(await openSecure(port, { ...options, credentials }), credentials.peerId);
    t.after(() => hostile.destroy());
    return hostile;
  }

  /** Opens a bare TCP one (see connectRaw), for a client that never speaks; destroyed when the test ends. */
  static async openRaw(t: TestContext, port: number, options: HostileOptions = {}): Promise<Hostile> {
    const hostile = new Hostile(await connectRaw(port, options));
    t.after(() => hostile.destroy());
    return hostile;
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Frame bodies received and not yet taken. */
  get frames(): Buffer[] {
    return this.link.frames;
  }

  /** Writes bytes as they are, no framing. */
  write(bytes: Buffer): void {
    if (this.isOpen) this.stream.write(bytes);
  }

  /** Writes one frame. */
  send(body: Buffer): void {
    this.write(encodeFrame(body));
  }

  /** Says HELLO for `protocol` and waits for WELCOME. */
  async handshake(protocol: string, versions: number[] = [1]): Promise<void> {
    this.send(encodeHello({ protocol, versions }));
    const reply = decodeHandshakeReply(await this.next());
    if (!('version' in reply)) throw new Error(`refused: ${reply.refusal.code} ${reply.refusal.message}`);
  }

  /** The next frame received; rejects if the connection closes first, or after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const body = await Promise.race([this.link.next(), late]);
      if (!body) throw new Error('the connection closed before a frame arrived');
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Resolves with true if `hostile` is closed within `ms`, false if it is still open then. */
export async function closedWithin(hostile: Hostile, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([hostile.closed.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}
