/**
 * The zero-copy receive path: DirectFrameDecoder driven as a socket's onread would drive it, and
 * FramedConnection over a real loopback socket opened by connectFramed().
 */
import assert from 'node:assert/strict';
import { ephemeralCredentials } from '../../src/transport/credentials.js';
import { createSecureServer, type SecureConnectOptions } from '../../src/transport/tls.js';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  DIRECT_SCRATCH_BYTES,
  DirectFrameDecoder,
  FrameTooLargeError,
  encodeFrame,
  frameHeader,
} from '../../src/wire/framing.js';
import { connectFramed, type ReceiveLimiter } from '../../src/wire/connection.js';

/** Small frames mixed with bodies larger than the scratch buffer (which are read in place). */
function bodies(): Buffer[] {
  const out: Buffer[] = [];
  const sizes = [1, 5, 3 * DIRECT_SCRATCH_BYTES + 7, 2, 300, 70_000, 1, DIRECT_SCRATCH_BYTES - 4, 9];
  sizes.forEach((size, i) => {
    const body = Buffer.alloc(size);
    for (let j = 0; j < size; j++) body[j] = (i * 31 + j * 7) & 0xff;
    out.push(body);
  });
  return out;
}

/** Feeds `stream` as reads of at most `readSize(n)` bytes into whatever buffer the decoder offers. */
function feed(decoder: DirectFrameDecoder, stream: Buffer, readSize: (n: number) => number): void {
  let n = 0;
  for (let at = 0; at < stream.length; n++) {
    const target = decoder.nextBuffer();
    assert.ok(target.length > 0, 'never an empty read buffer');
    const bytes = Math.min(target.length, stream.length - at, readSize(n));
    stream.copy(target, 0, at, at + bytes);
    at += bytes;
    decoder.received(bytes);
  }
}

function collect(maxFrame: number): { decoder: DirectFrameDecoder; frames: Buffer[] } {
  const frames: Buffer[] = [];
  // No copy: every body handed out must stay intact after later reads.
  const decoder = new DirectFrameDecoder(maxFrame, (body) => frames.push(body));
  return { decoder, frames };
}

describe('DirectFrameDecoder', () => {
  test('decodes frames split at every byte boundary', () => {
    const sent = [Buffer.from('a'), Buffer.from('hello'), Buffer.alloc(40, 1), Buffer.from('xyz')];
    const stream = Buffer.concat(sent.map(encodeFrame));
    for (let split = 1; split < stream.length; split++) {
      const { decoder, frames } = collect(1 << 20);
      let first = true;
      // One read of `split` bytes, then the rest.
      feed(decoder, stream, () => (first ? ((first = false), split) : stream.length));
      assert.deepEqual(frames, sent, `split at ${split}`);
      assert.equal(decoder.midFrame, false);
    }
  });

  test('decodes frames read byte by byte (headers split too)', () => {
    const sent = bodies();
    const { decoder, frames } = collect(1 << 20);
    feed(decoder, Buffer.concat(sent.map(encodeFrame)), () => 1);
    assert.deepEqual(frames, sent);
  });

  test('decodes small frames mixed with large bodies in any read sizes', () => {
    const sent = bodies();
    const stream = Buffer.concat(sent.map(encodeFrame));
    for (const size of [2, 3, 4, 5, 4096, DIRECT_SCRATCH_BYTES, 100_000, stream.length]) {
      const { decoder, frames } = collect(1 << 20);
      feed(decoder, stream, () => size);
      assert.deepEqual(frames, sent, `reads of ${size}`);
    }
  });

  test('reads a large body straight into it: the buffer offered is the body rest', () => {
    const body = Buffer.alloc(5 * DIRECT_SCRATCH_BYTES, 0x42);
    const stream = encodeFrame(body);
    const { decoder, frames } = collect(1 << 20);
    const offered: number[] = [];
    feed(decoder, stream, (n) => {
      offered.push(decoder.nextBuffer().length);
      return n === 0 ? 1000 : Infinity;
    });
    assert.deepEqual(frames, [body]);
    // First the scratch buffer, then exactly the part of the body not yet received.
    assert.deepEqual(offered, [DIRECT_SCRATCH_BYTES, body.length - (1000 - 4)]);
  });

  test('refuses a frame over the cap before allocating it', () => {
    const { decoder } = collect(1000);
    const target = decoder.nextBuffer();
    frameHeader(0xffffffff).copy(target);
    assert.throws(() => decoder.received(4), FrameTooLargeError);
    // Nothing was allocated for it: the next read still goes to the scratch buffer.
    assert.equal(decoder.nextBuffer().length, DIRECT_SCRATCH_BYTES);
  });

  test('refuses an empty frame; midFrame tells a cut-off frame', () => {
    const { decoder } = collect(100);
    decoder.nextBuffer().fill(0, 0, 2);
    decoder.received(2);
    assert.equal(decoder.midFrame, true);
    decoder.nextBuffer().fill(0, 0, 2);
    assert.throws(() => decoder.received(2), /empty frame/);
  });
});

/** A server that writes `data` to each client in `pieces` writes, then keeps the connection open. */
async function server(t: TestContext, data: Buffer, pieces = 1): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = createSecureServer(
    { credentials: await ephemeralCredentials(), handshakeTimeoutMs: 5000 },
    (socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      const step = Math.ceil(data.length / pieces);
      for (let at = 0; at < data.length; at += step) socket.write(data.subarray(at, at + step));
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return (srv.address() as net.AddressInfo).port;
}

/** A client identity for connectFramed(), with its deadline. */
async function secure(): Promise<SecureConnectOptions> {
  return { credentials: await ephemeralCredentials(), timeoutMs: 5000 };
}

describe('FramedConnection over connectFramed', () => {
  test('delivers frames read into their bodies, counting the bytes', async (t) => {
    const sent = bodies();
    const stream = Buffer.concat(sent.map(encodeFrame));
    const port = await server(t, stream, 7);
    const conn = await connectFramed('127.0.0.1', port, await secure(), { maxFrame: 1 << 20 });
    t.after(() => conn.destroy());
    const frames: Buffer[] = [];
    await new Promise<void>((resolve) =>
      conn.onFrame((body) => {
        frames.push(body);
        if (frames.length === sent.length) resolve();
      }),
    );
    assert.deepEqual(frames, sent);
    assert.equal(conn.bytesReceived, stream.length);
  });

  test('closes with FrameTooLargeError for a frame over the cap', async (t) => {
    const port = await server(t, Buffer.concat([frameHeader(5000), Buffer.alloc(10)]));
    const conn = await connectFramed('127.0.0.1', port, await secure(), { maxFrame: 1000 });
    conn.onFrame(() => assert.fail('no frame'));
    const reason = await new Promise<Error | undefined>((resolve) => conn.once('close', resolve));
    assert.ok(reason instanceof FrameTooLargeError);
  });

  test('an end mid-frame closes with ERR_CLOSED', async (t) => {
    const srv = createSecureServer(
      { credentials: await ephemeralCredentials(), handshakeTimeoutMs: 5000 },
      (socket) => socket.end(Buffer.concat([frameHeader(100), Buffer.alloc(10)])),
    );
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    t.after(() => srv.close());
    const conn = await connectFramed('127.0.0.1', (srv.address() as net.AddressInfo).port, await secure(), {
      maxFrame: 1000,
    });
    conn.onFrame(() => assert.fail('no frame'));
    const reason = await new Promise<Error | undefined>((resolve) => conn.once('close', resolve));
    assert.equal((reason as { code?: string }).code, 'ERR_CLOSED');
  });

  test('held frames wait for the handler; the socket is paused meanwhile and resumed after', async (t) => {
    const sent = bodies();
    const port = await server(t, Buffer.concat(sent.map(encodeFrame)), 3);
    const conn = await connectFramed('127.0.0.1', port, await secure(), { maxFrame: 1 << 20 });
    t.after(() => conn.destroy());
    const frames: Buffer[] = [];
    // The first frame switches to holding, as a handshake does.
    await new Promise<void>((resolve) =>
      conn.onFrame((body) => {
        frames.push(body);
        conn.holdFrames();
        resolve();
      }),
    );
    await delay(50);
    assert.equal(frames.length, 1);
    assert.equal(conn.socket.isPaused(), true);
    await new Promise<void>((resolve) =>
      conn.onFrame((body) => {
        frames.push(body);
        if (frames.length === sent.length) resolve();
      }),
    );
    assert.deepEqual(frames, sent);
  });

  test('a receive limiter that makes it wait pauses the socket until paid', async (t) => {
    const sent = bodies();
    const port = await server(t, Buffer.concat(sent.map(encodeFrame)));
    const unpaid: (() => void)[] = [];
    const release = (): void => unpaid.shift()?.();
    let waits = 0;
    const limiter: ReceiveLimiter = {
      tryTake: () => false,
      take: () => {
        waits++;
        return new Promise<void>((resolve) => unpaid.push(resolve));
      },
    };
    const conn = await connectFramed('127.0.0.1', port, await secure(), {
      maxFrame: 1 << 20,
      receiveLimiter: limiter,
    });
    t.after(() => conn.destroy());
    const frames: Buffer[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    conn.onFrame((body) => {
      frames.push(body);
      if (frames.length === sent.length) done();
    });
    await delay(50);
    // A few reads (TLS hands over the records it had already decrypted), then nothing until paid.
    assert.ok(waits >= 1);
    const before = conn.bytesReceived;
    assert.ok(before < Buffer.concat(sent.map(encodeFrame)).length, 'not everything arrived unpaid');
    await delay(50);
    assert.equal(conn.bytesReceived, before);
    const pay = setInterval(() => release(), 1);
    t.after(() => clearInterval(pay));
    await all;
    assert.deepEqual(frames, sent);
    assert.ok(conn.receiveThrottledMs >= 50);
  });
});
