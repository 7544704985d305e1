/**
 * A framed, message-oriented wrapper around a TCP socket, shared by every protocol.
 *
 * - One choke point for bad input: a frame that fails to decode, or a handler that throws,
 *   destroys the connection with that error (logged by the owner), never crashes the process.
 * - Named timeouts: an idle timeout (no bytes either way) closes the connection; a frame deadline
 *   closes one whose frame in progress arrives too slowly (a slow-loris, whom bytes keep from idling).
 * - destroy() is idempotent and 'close' fires exactly once with the reason.
 * - Two ways in: a socket we accepted delivers 'data' events (FrameDecoder); one we open with
 *   connectFramed() reads straight into frame bodies (DirectFrameDecoder, no per-read allocation or
 *   copy of chunk data). Pausing, held frames, the receive limiter and timeouts work alike on both.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { MAX_FRAMES_BEFORE_HANDSHAKE, MIN_FRAME_BYTES_PER_SECOND } from '../constants.js';
import { SwarmError } from '../errors.js';
import { connectSecure, type SecureConnectOptions } from '../transport/tls.js';
import { ProtocolError } from './codec.js';
import { DirectFrameDecoder, FrameDecoder, frameHeader } from './framing.js';

/**
 * Largest read on a direct connection under a receive limiter: each read is paid for after it, so
 * this is how far one read may overshoot the limit (a stream socket's reads are 64 KiB too).
 */
const LIMITED_READ_BYTES = 64 * 1024;

export interface FramedConnectionOptions {
  maxFrame: number;
  /** Close the connection after this long without traffic in either direction (0: never). */
  idleTimeoutMs?: number;
  /**
   * The frame deadline (0: none): a frame in progress is checked this often from its first byte, and
   * the connection is closed if less than MIN_FRAME_BYTES_PER_SECOND of it arrived on average (a small
   * frame must so be complete within this time). Not counted while the socket is paused by us.
   * For servers, whose clients send small frames; see FRAME_TIMEOUT_MS.
   */
  frameTimeoutMs?: number;
  /**
   * Caps the bytes received per second, shared with every connection using the same limiter: each
   * read is paid for after it is handled, and while it is not paid for the socket is paused, so TCP
   * flow control holds the sender back. Without it, reading costs nothing more.
   */
  receiveLimiter?: ReceiveLimiter;
  /** The peer id the other end proved in the TLS handshake (see transport/tls.ts). */
  remotePeerId?: Buffer | null;
}

/** What a receive limiter does (the process-wide RateLimiter of src/peer/rate-limiter.ts). */
export interface ReceiveLimiter {
  /** Takes `bytes` if it may at once (true); otherwise takes nothing (false). */
  tryTake(bytes: number): boolean;
  /** Resolves once `bytes` are paid for, in `owner`'s turn. */
  take(bytes: number, owner: object): Promise<void>;
}

export interface FramedConnectionEvents {
  close: [reason: Error | undefined];
}

export type FrameHandler = (body: Buffer) => void | Promise<void>;

export class FramedConnection extends EventEmitter<FramedConnectionEvents> {
  readonly socket: net.Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The peer id the other end proved (TLS), or null on a connection without one (tests of framing). */
  readonly remotePeerId: Buffer | null;
  private readonly decoder: FrameDecoder | DirectFrameDecoder;
  private readonly limiter: ReceiveLimiter | undefined;
  private handler: FrameHandler | null = null;
  private held: Buffer[] | null = null;
  private closed = false;
  private corked = false;
  private closeReason: Error | undefined;
  /** Reads not yet paid for to the receive limiter: the socket is paused while there are any. */
  private unpaidReads = 0;
  private throttledSince = 0;
  private throttledTotalMs = 0;
  private readonly frameTimeoutMs: number;
  /** Checks the frame in progress (see frameTimeoutMs); created at the first frame split across reads. */
  private frameTimer: NodeJS.Timeout | null = null;
  /** The frame being timed: the decoder's count of frames when it started, and when that was. */
  private timedFrame = -1;
  private timedFrameSince = 0;
  bytesReceived = 0;

  /**
   * Wraps a connected socket. `direct` is the decoder a socket opened by connectFramed() reads into
   * (its reads come through received()); without it, frames are decoded from 'data' events.
   */
  constructor(socket: net.Socket, options: FramedConnectionOptions, direct?: DirectFrameDecoder) {
    super();
    this.socket = socket;
    // Normalise IPv4-mapped IPv6 addresses so one host has one spelling.
    this.remoteAddress = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.remotePort = socket.remotePort ?? 0;
    this.remotePeerId = options.remotePeerId ?? null;
    socket.setNoDelay(true);
    const limiter = options.receiveLimiter;
    this.limiter = limiter;
    this.frameTimeoutMs = options.frameTimeoutMs ?? 0;
    if (direct) {
      direct.onFrame = (body) => this.dispatch(body);
      if (limiter) direct.maxRead = LIMITED_READ_BYTES;
      this.decoder = direct;
    } else {
      const decoder = new FrameDecoder(options.maxFrame, (body) => this.dispatch(body));
      this.decoder = decoder;
      socket.on('data', (data: Buffer) => {
        this.bytesReceived += data.length;
        try {
          decoder.push(data);
        } catch (err) {
          this.destroy(err as Error);
        }
        if (this.frameTimeoutMs > 0 && decoder.midFrame) this.timeFrame();
        if (limiter) this.payForRead(limiter, data.length);
      });
    }
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy(this.closeReason));
    socket.on('end', () => {
      // The remote half-closed: we have nothing more to say to a peer that will not listen.
      const reason = this.decoder.midFrame
        ? new SwarmError('ERR_CLOSED', 'connection closed mid-frame')
        : undefined;
      this.destroy(reason);
    });
    if (options.idleTimeoutMs) {
      socket.setTimeout(options.idleTimeoutMs, () =>
        this.destroy(new SwarmError('ERR_TIMEOUT', `idle for ${options.idleTimeoutMs} ms`)),
      );
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sets the function that receives each frame body. Frames are not queued before it is set. */
  onFrame(handler: FrameHandler): void {
    this.handler = handler;
    const held = this.held;
    this.held = null;
    if (held) {
      // Delivered before any later data: the socket stays paused until they are through.
      queueMicrotask(() => {
        for (const body of held) {
          try {
            this.dispatch(body);
          } catch (err) {
            this.destroy(err as Error);
          }
        }
        if (!this.closed && this.unpaidReads === 0) this.socket.resume();
      });
    }
  }

  /**
   * Keeps the frames that arrive from now until the next onFrame() and hands them to it, in order.
   * Between a handshake and the protocol taking over, the other side may already be talking: its
   * first messages can even share a TCP segment with the handshake's last.
   */
  holdFrames(): void {
    this.handler = null;
    this.held = [];
    this.socket.pause();
  }

  /**
   * Milliseconds this connection has spent paused by its receive limiter (so far, and now): time in
   * which the other side could not send because we held it back.
   */
  get receiveThrottledMs(): number {
    const now = this.unpaidReads > 0 ? performance.now() - this.throttledSince : 0;
    return this.throttledTotalMs + now;
  }

  /** @internal `bytes` arrived in the direct decoder's buffer (connectFramed's onread callback). */
  receivedDirect(bytes: number): void {
    this.bytesReceived += bytes;
    try {
      (this.decoder as DirectFrameDecoder).received(bytes);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (this.frameTimeoutMs > 0 && this.decoder.midFrame) this.timeFrame();
    if (this.limiter && !this.closed) this.payForRead(this.limiter, bytes);
  }

  /** A read left a frame in progress: start its clock if it is a new one. */
  private timeFrame(): void {
    if (this.closed || this.decoder.framesDecoded === this.timedFrame) return;
    this.timedFrame = this.decoder.framesDecoded;
    this.timedFrameSince = performance.now();
    if (!this.frameTimer) {
      this.frameTimer = setTimeout(() => this.checkFrame(), this.frameTimeoutMs);
      this.frameTimer.unref();
    } else {
      this.frameTimer.refresh();
    }
  }

  /** The frame deadline's check: too slow a frame closes the connection, else it is checked again. */
  private checkFrame(): void {
    const decoder = this.decoder;
    if (this.closed || !decoder.midFrame) return;
    if (this.socket.isPaused()) {
      // We are not reading (backpressure, a receive limit): not the sender's fault. Start again.
      this.timedFrameSince = performance.now();
      this.frameTimer!.refresh();
      return;
    }
    const elapsedMs = performance.now() - this.timedFrameSince;
    const received = decoder.partialBytes;
    if (received < (MIN_FRAME_BYTES_PER_SECOND * elapsedMs) / 1000) {
      this.destroy(
        new SwarmError(
          'ERR_TIMEOUT',
          `a frame arrived too slowly: ${received} bytes in ${Math.round(elapsedMs)} ms`,
        ),
      );
      return;
    }
    this.frameTimer!.refresh();
  }

  /** Pays the receive limiter for a read, pausing the socket until it is paid if it must wait. */
  private payForRead(limiter: ReceiveLimiter, bytes: number): void {
    if (this.unpaidReads === 0 && limiter.tryTake(bytes)) return;
    if (this.unpaidReads++ === 0) {
      this.socket.pause();
      this.throttledSince = performance.now();
    }
    void limiter.take(bytes, this).then(() => {
      if (--this.unpaidReads > 0) return;
      this.throttledTotalMs += performance.now() - this.throttledSince;
      // Frames held for the next handler keep the socket paused until it takes them.
      if (!this.closed && this.held === null) this.socket.resume();
    });
  }

  private dispatch(body: Buffer): void {
    if (this.closed) return;
    if (this.held) {
      if (this.held.length >= MAX_FRAMES_BEFORE_HANDSHAKE)
        throw new ProtocolError('too many frames before the handshake completed');
      this.held.push(body);
      return;
    }
    if (!this.handler) throw new SwarmError('ERR_PROTOCOL', 'frame received before a handler was set');
    const result = this.handler(body);
    if (result && typeof result.then === 'function') {
      result.then(undefined, (err: unknown) => this.destroy(err as Error));
    }
  }

  /**
   * Sends one frame made of the given parts (a header part and, say, a chunk of file data) without
   * copying them together. Returns false when the socket's buffer is full: await drain() then.
   */
  send(...parts: Buffer[]): boolean {
    if (this.closed) return false;
    return this.writeFrame(parts);
  }

  /**
   * Like send(), but resolves once the frame's last byte is with the kernel, or the connection has
   * closed: for a sender that accounts for the frame's memory until then (the chunk server).
   */
  sendFlushed(...parts: Buffer[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.off('close', finish);
        resolve();
      };
      this.once('close', finish);
      // The callback also runs, with an error, if the socket is destroyed before the write ends.
      this.writeFrame(parts, () => finish());
    });
  }

  /** Writes one frame from several parts without copying them together. */
  private writeFrame(parts: Buffer[], onLastWritten?: () => void): boolean {
    let length = 0;
    for (const part of parts) length += part.length;
    if (parts.length === 1) {
      return this.socket.write(Buffer.concat([frameHeader(length), parts[0]!]), onLastWritten);
    }
    this.socket.cork();
    this.socket.write(frameHeader(length));
    let ok = true;
    parts.forEach((part, i) => {
      ok = this.socket.write(part, i === parts.length - 1 ? onLastWritten : undefined);
    });
    this.socket.uncork();
    return ok;
  }

  /**
   * Like send(), but the frames sent in one burst (the same tick) leave in one write: the socket is
   * corked at the first and uncorked once the current run of jobs is over. Made for many small
   * messages, such as tracker requests and replies.
   */
  sendCoalesced(body: Buffer): boolean {
    if (!this.corked && !this.closed) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.send(body);
  }

  /** Resolves when the socket can take more data (or at once if it can, or when it closes). */
  drain(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.once('close', done);
    });
  }

  /** Sends a last frame, then closes once it has been flushed. */
  sendAndEnd(body: Buffer): void {
    if (this.closed) return;
    this.socket.end(Buffer.concat([frameHeader(body.length), body]));
    // A peer that never reads must not keep us waiting.
    setTimeout(() => this.destroy(), 2000).unref();
  }

  destroy(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.socket.destroy();
    this.emit('close', reason);
  }
}

/**
 * Opens a TLS connection (see transport/tls.ts) with a deadline and wraps it in a FramedConnection
 * that reads straight into frame bodies (see DirectFrameDecoder): for connections that receive bulk
 * data (a peer client). The connection's remotePeerId is the id the other end proved.
 */
export async function connectFramed(
  host: string,
  port: number,
  secure: SecureConnectOptions,
  options: FramedConnectionOptions,
): Promise<FramedConnection> {
  const decoder = new DirectFrameDecoder(options.maxFrame, () => {
    throw new SwarmError('ERR_PROTOCOL', 'frame received before the connection was set up');
  });
  let conn: FramedConnection | null = null;
  const onread = {
    // Consulted after every read (and once before the first): the rest of a body, or scratch.
    buffer: () => decoder.nextBuffer(),
    callback: (bytes: number) => {
      // TLS delivers nothing before the handshake is over, when `conn` is set at once.
      if (!conn) throw new SwarmError('ERR_PROTOCOL', 'data before the TLS handshake completed');
      conn.receivedDirect(bytes);
      return true;
    },
  };
  const { socket, remotePeerId } = await connectSecure(host, port, { ...secure, onread });
  conn = new FramedConnection(socket, { ...options, remotePeerId }, decoder);
  return conn;
}

/** Opens a TLS connection (see transport/tls.ts) and wraps it in a FramedConnection. */
export async function connectSecureFramed(
  host: string,
  port: number,
  secure: SecureConnectOptions,
  options: FramedConnectionOptions,
): Promise<FramedConnection> {
  const { socket, remotePeerId } = await connectSecure(host, port, secure);
  return new FramedConnection(socket, { ...options, remotePeerId });
}
