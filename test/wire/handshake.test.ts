import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { RemoteError, SwarmError } from '../../src/errors.js';
import { ProtocolError } from '../../src/wire/codec.js';
import { FramedConnection } from '../../src/wire/connection.js';
import {
  clientHandshake,
  decodeHandshakeReply,
  decodeHello,
  encodeHello,
  encodeRefuse,
  encodeWelcome,
  pickVersion,
  serverHandshake,
} from '../../src/wire/handshake.js';
import { waitFor } from '../helpers/wait.js';

const isProtocolError = (err: unknown): boolean =>
  err instanceof ProtocolError && err.code === 'ERR_PROTOCOL';

/** A connected pair of framed connections over real TCP on 127.0.0.1; both closed at test end. */
async function connectedPair(
  t: TestContext,
): Promise<{ client: FramedConnection; server: FramedConnection }> {
  const listener = net.createServer();
  const conns: FramedConnection[] = [];
  t.after(() => {
    for (const conn of conns) conn.destroy();
    listener.close();
  });
  const accepted = new Promise<FramedConnection>((resolve) =>
    listener.once('connection', (socket) => resolve(new FramedConnection(socket, { maxFrame: 1 << 16 }))),
  );
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const client = new FramedConnection(socket, { maxFrame: 1 << 16 });
  conns.push(client);
  const server = await accepted;
  conns.push(server);
  return { client, server };
}

function closed(conn: FramedConnection): Promise<Error | undefined> {
  if (conn.isClosed) return Promise.resolve(undefined);
  return new Promise((resolve) => conn.once('close', resolve));
}

describe('handshake messages', () => {
  test('HELLO, WELCOME and REFUSE have the documented layout', () => {
    assert.equal(
      encodeHello({ protocol: 'ab', versions: [1, 2] }).toString('hex'),
      '01' + '0002' + '6162' + '02' + '0001' + '0002',
    );
    assert.equal(encodeWelcome(3).toString('hex'), '02' + '0003');
    assert.equal(
      encodeRefuse({ code: 'E', message: 'no', versions: [1] }).toString('hex'),
      '03' + '0001' + '45' + '0002' + '6e6f' + '01' + '0001',
    );
  });

  test('decodes what it encodes', () => {
    assert.deepEqual(decodeHello(encodeHello({ protocol: 'x', versions: [1, 7] })), {
      protocol: 'x',
      versions: [1, 7],
    });
    assert.deepEqual(decodeHandshakeReply(encodeWelcome(2)), { version: 2 });
    const refusal = { code: 'ERR_UNSUPPORTED_VERSION', message: 'm', versions: [1, 2] };
    assert.deepEqual(decodeHandshakeReply(encodeRefuse(refusal)), { refusal });
  });

  test('truncated or padded handshake frames throw ProtocolError', () => {
    const hello = encodeHello({ protocol: 'proto', versions: [1, 2, 3] });
    for (let cut = 0; cut < hello.length; cut++) {
      assert.throws(() => decodeHello(hello.subarray(0, cut)), isProtocolError, `cut at ${cut}`);
    }
    assert.throws(() => decodeHello(Buffer.concat([hello, Buffer.from([0])])), isProtocolError);
    const refuse = encodeRefuse({ code: 'C', message: 'msg', versions: [1] });
    for (let cut = 0; cut < refuse.length; cut++) {
      assert.throws(() => decodeHandshakeReply(refuse.subarray(0, cut)), isProtocolError, `cut at ${cut}`);
    }
    assert.throws(() => decodeHandshakeReply(Buffer.from('020001ff', 'hex')), isProtocolError);
  });

  test('refuses a HELLO with no versions, too many versions, or another type', () => {
    assert.throws(() => decodeHello(Buffer.from('01' + '0001' + '61' + '00', 'hex')), isProtocolError);
    assert.throws(
      () => decodeHello(Buffer.from('01' + '0001' + '61' + '11' + '0001'.repeat(17), 'hex')),
      isProtocolError,
    );
    assert.throws(() => decodeHello(encodeWelcome(1)), isProtocolError);
    assert.throws(() => decodeHandshakeReply(encodeHello({ protocol: 'a', versions: [1] })), isProtocolError);
  });

  test('pickVersion picks the highest common version', () => {
    assert.equal(pickVersion([1, 2, 3], [4, 2, 3]), 3);
    assert.equal(pickVersion([1], [2, 3]), undefined);
  });
});

describe('handshake over TCP', { timeout: 10_000 }, () => {
  test('agrees on the highest version both sides speak', async (t) => {
    const { client, server } = await connectedPair(t);
    const [ours, theirs] = await Promise.all([
      clientHandshake(client, 'proto', [2, 3, 4]),
      serverHandshake(server, 'proto', [1, 2, 3]),
    ]);
    assert.equal(ours, 3);
    assert.equal(theirs, 3);
  });

  test('a wrong protocol is refused and the connection closes', async (t) => {
    const { client, server } = await connectedPair(t);
    const serverSide = assert.rejects(serverHandshake(server, 'proto', [1]), { code: 'ERR_PROTOCOL' });
    await assert.rejects(
      clientHandshake(client, 'other', [1]),
      (err: unknown) => err instanceof RemoteError && err.code === 'ERR_PROTOCOL',
    );
    await serverSide;
    await closed(client);
    await closed(server);
  });

  test('an unsupported version is refused with the versions the server speaks', async (t) => {
    const { client, server } = await connectedPair(t);
    const serverSide = assert.rejects(serverHandshake(server, 'proto', [1, 2]), {
      code: 'ERR_UNSUPPORTED_VERSION',
    });
    const reply = new Promise<Buffer>((resolve) => client.onFrame((body) => resolve(Buffer.from(body))));
    client.send(encodeHello({ protocol: 'proto', versions: [9] }));
    const answer = decodeHandshakeReply(await reply);
    assert.ok('refusal' in answer);
    assert.equal(answer.refusal.code, 'ERR_UNSUPPORTED_VERSION');
    assert.deepEqual(answer.refusal.versions, [1, 2]);
    await serverSide;
    await closed(client);
  });

  test('the client surfaces a version refusal as a RemoteError with its code', async (t) => {
    const { client, server } = await connectedPair(t);
    void serverHandshake(server, 'proto', [1]).catch(() => {});
    await assert.rejects(
      clientHandshake(client, 'proto', [2]),
      (err: unknown) => err instanceof RemoteError && err.code === 'ERR_UNSUPPORTED_VERSION',
    );
    assert.equal(client.isClosed, true);
  });

  test('a client that says nothing is cut off at the handshake deadline', async (t) => {
    const { client, server } = await connectedPair(t);
    await assert.rejects(serverHandshake(server, 'proto', [1], 100), { code: 'ERR_HANDSHAKE_TIMEOUT' });
    await closed(client);
    assert.equal(server.isClosed, true);
  });

  test('a malformed first frame closes the connection', async (t) => {
    const { client, server } = await connectedPair(t);
    const serverSide = serverHandshake(server, 'proto', [1]);
    client.send(Buffer.from('7f7f7f', 'hex'));
    await assert.rejects(serverSide, isProtocolError);
    await closed(client);
    assert.equal(server.isClosed, true);
  });

  test('a malformed answer closes the client connection', async (t) => {
    const { client, server } = await connectedPair(t);
    server.onFrame(() => void server.send(Buffer.from('02', 'hex')));
    await assert.rejects(clientHandshake(client, 'proto', [1]), isProtocolError);
    assert.equal(client.isClosed, true);
  });

  test('a server choosing a version we did not offer is a protocol error', async (t) => {
    const { client, server } = await connectedPair(t);
    server.onFrame(() => void server.send(encodeWelcome(5)));
    await assert.rejects(
      clientHandshake(client, 'proto', [1]),
      (err: unknown) => err instanceof SwarmError && err.code === 'ERR_PROTOCOL',
    );
    assert.equal(client.isClosed, true);
  });
});

describe('frames right after the handshake', () => {
  test('messages that share a TCP segment with WELCOME reach the protocol, in order', async (t) => {
    const { client, server } = await connectedPair(t);
    server.onFrame(() => {
      // WELCOME and two protocol messages leave in one write, as a fast server may send them.
      const frame = (body: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
      server.socket.write(
        Buffer.concat([
          frame(encodeWelcome(1)),
          frame(Buffer.from([0x77, 1])),
          frame(Buffer.from([0x77, 2])),
        ]),
      );
    });
    const version = await clientHandshake(client, 'p', [1]);
    assert.equal(version, 1);
    const received: number[] = [];
    client.onFrame((body) => void received.push(body[1]!));
    await waitFor(() => received.length === 2, 'both frames after WELCOME', 5000);
    assert.deepEqual(received, [1, 2]);
    assert.equal(client.isClosed, false);
  });

  test('a request that shares a TCP segment with HELLO is answered by the server', async (t) => {
    const { client, server } = await connectedPair(t);
    const served: number[] = [];
    void serverHandshake(server, 'p', [1]).then(() => server.onFrame((body) => void served.push(body[1]!)));
    client.onFrame(() => {}); // the WELCOME: this raw client does not read it
    const frame = (body: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
    client.socket.write(
      Buffer.concat([frame(encodeHello({ protocol: 'p', versions: [1] })), frame(Buffer.from([0x66, 9]))]),
    );
    await waitFor(() => served.length === 1, 'the pipelined request', 5000);
    assert.deepEqual(served, [9]);
    assert.equal(server.isClosed, false);
  });
});
