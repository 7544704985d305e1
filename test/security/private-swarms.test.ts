/**
 * Private swarms: nodes that share a secret (`--secret FILE` or SWARMSHARE_SECRET) talk only to each
 * other, and a node without it learns nothing but a refusal. Real CLI processes where the behaviour is
 * the command line's; real trackers, chunk servers and clients on loopback otherwise; the hostile ends
 * are written here over real TLS with the real codecs.
 *
 * Hostile cases covered:
 * - a private swarm of real processes (tracker and seeding peer with --secret FILE): `list` and `get`
 *   work with the same secret, from the file and from SWARMSHARE_SECRET;
 * - `list` and `get` without a secret, and with a wrong one (file or environment): exit 1, a clear
 *   message about the swarm secret, no file name printed, nothing downloaded;
 * - a hostile client sending HELLO and LIST in one write right after TLS, and one sending a PROOF made
 *   with the wrong key before them, to a private tracker: one REFUSE frame (ERR_SWARM_SECRET), then
 *   the close, no catalog; to a private chunk server with HELLO and REQUEST: one REFUSE, no chunk read;
 * - a node with a secret meeting an open server that ignores its PROOF and welcomes it (a WELCOME
 *   without a proof), and one sending a forged PROOF: a tracker client and a peer client both refuse
 *   it with ERR_SWARM_SECRET and send nothing past their HELLO; `list --secret` against a real open
 *   tracker fails clearly;
 * - an open tracker and an open chunk server refuse a client that offers a proof (ERR_SWARM_SECRET);
 * - a private chunk server refuses a PeerClient without a swarm key and one with another key; one with
 *   the key fetches a chunk;
 * - a secret shorter than 12 bytes, in a file and in the environment: the CLI exits 2 with a message
 *   naming the minimum (the tracker does not start);
 * - a secret file with a trailing newline (LF or CRLF) is the same secret as the passphrase in the
 *   environment.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { MIN_CHUNK_SIZE, PEER_PROTOCOL, TRACKER_PROTOCOL } from '../../src/constants.js';
import { ChunkServer, serveFileChunk } from '../../src/peer/chunk-server.js';
import { PeerClient } from '../../src/peer/peer-client.js';
import { TrackerClient } from '../../src/tracker/client.js';
import { ephemeralCredentials, type Credentials } from '../../src/transport/credentials.js';
import { SWARM_SECRET_ENV, SwarmKey, loadSwarmKey, sessionKeyOf } from '../../src/transport/swarm-secret.js';
import { encodeFrame } from '../../src/wire/framing.js';
import {
  PROOF,
  decodeHandshakeReply,
  decodeHello,
  encodeHello,
  encodeProof,
  encodeWelcome,
} from '../../src/wire/handshake.js';
import { encodePeerMessage } from '../../src/wire/peer-messages.js';
import { encodeTrackerMessage } from '../../src/wire/tracker-messages.js';
import { runCli, startCli, startTrackerProcess } from '../helpers/cli.js';
import { FrameLink, listenHostile } from '../helpers/hostile.js';
import { Hostile } from '../helpers/hostile-clients.js';
import { makeFile, sha256File, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir } from '../helpers/wait.js';
import { HOST, startTracker } from '../tracker/fixtures.js';

const T = { timeout: 90_000 };
const SECRET = 'correct horse battery staple 1f9a';
const WRONG_SECRET = 'incorrect horse battery staple';

const keys = new Map<string, Promise<SwarmKey>>();
/** The swarm key of a passphrase, derived once per test process (scrypt is slow on purpose). */
function keyOf(secret: string): Promise<SwarmKey> {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = SwarmKey.derive(Buffer.from(secret))));
  return key;
}

async function credentialsIn(secret: string | null): Promise<Credentials> {
  return ephemeralCredentials(secret === null ? null : await keyOf(secret));
}

async function writeSecret(dir: string, name: string, content: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, content, { mode: 0o600 });
  return file;
}

async function smallFile(t: TestContext, name = 'private-report.bin'): Promise<TestFile> {
  return makeFile(await tempDir(t), name, MIN_CHUNK_SIZE * 2 + 321, 23);
}

/** A chunk server of `file` on loopback as `credentials` (a private swarm if they carry a key). */
async function startChunkServer(
  t: TestContext,
  file: TestFile,
  credentials: Credentials,
): Promise<{ port: number; reads: () => number }> {
  let reads = 0;
  const server = new ChunkServer({
    credentials,
    provider: (fileId, index) => {
      reads++;
      return serveFileChunk(
        fileId.equals(file.manifest.id) ? { manifest: file.manifest, path: file.path } : undefined,
        index,
      );
    },
  });
  t.after(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  return { port, reads: () => reads };
}

// ---- The command line --------------------------------------------------------------------------

describe('a private swarm of real processes', () => {
  test('the secret opens list and get; no secret or a wrong one opens nothing', T, async (t) => {
    const secrets = await tempDir(t);
    // Written by an editor: a trailing newline, which the same passphrase in the environment lacks.
    const secretFile = await writeSecret(secrets, 'swarm.secret', `${SECRET}\n`);
    const wrongFile = await writeSecret(secrets, 'wrong.secret', `${WRONG_SECRET}\n`);
    const file = await smallFile(t);
    const name = file.manifest.name;

    const { proc: tracker, address } = await startTrackerProcess(t, ['--secret', secretFile]);
    assert.match(tracker.stdout, /private swarm/);
    const seeder = startCli(t, [
      'peer',
      '--dir',
      path.dirname(file.path),
      '--tracker',
      address,
      '--host',
      '127.0.0.1',
      '--name',
      'private-seeder',
      '--no-lan',
      '--secret',
      secretFile,
    ]);
    await seeder.waitForOutput(/connected to tracker/);

    const listed = await runCli(['list', '--tracker', address, '--secret', secretFile]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(name));
    const viaEnv = await runCli(['list', '--tracker', address], { env: { [SWARM_SECRET_ENV]: SECRET } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, new RegExp(name));

    const out = await tempDir(t);
    const got = await runCli(['get', name, '--tracker', address, '--out', out, '--secret', secretFile]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256File(path.join(out, name)), file.sha256);
    const outEnv = await tempDir(t);
    const gotEnv = await runCli(['get', name, '--tracker', address, '--out', outEnv], {
      env: { [SWARM_SECRET_ENV]: SECRET },
    });
    assert.equal(gotEnv.code, 0, gotEnv.stderr);
    assert.equal(await sha256File(path.join(outEnv, name)), file.sha256);

    const outsiders: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
      ['no secret', [], {}, /private: a swarm secret is needed \(--secret\)/],
      ['a wrong secret file', ['--secret', wrongFile], {}, /wrong swarm secret/],
      ['a wrong passphrase', [], { [SWARM_SECRET_ENV]: WRONG_SECRET }, /wrong swarm secret/],
    ];
    for (const [who, flags, env, message] of outsiders) {
      const list = await runCli(['list', '--tracker', address, ...flags], { env });
      assert.equal(list.code, 1, `list with ${who}: ${list.stderr}`);
      assert.match(list.stderr, message);
      assert.ok(
        !list.stdout.includes(name) && !list.stderr.includes(name),
        `list with ${who} showed the file`,
      );
      const dir = await tempDir(t);
      const get = await runCli(['get', name, '--tracker', address, '--out', dir, ...flags], { env });
      assert.equal(get.code, 1, `get with ${who}: ${get.stderr}`);
      assert.match(get.stderr, message);
      assert.deepEqual(
        (await fs.readdir(dir)).filter((entry) => entry !== '.swarmshare'),
        [],
        `get with ${who} wrote a file`,
      );
    }
  });

  test('a secret shorter than 12 bytes is refused with a clear message', T, async (t) => {
    const dir = await tempDir(t);
    const short = await writeSecret(dir, 'short.secret', 'hunter2\n');
    const message = /swarm secret must be at least 12 bytes \(this one has 7\)/;
    const fromFile = await runCli(['list', '--tracker', '127.0.0.1:9', '--secret', short]);
    assert.equal(fromFile.code, 2, fromFile.stderr);
    assert.match(fromFile.stderr, message);
    const fromEnv = await runCli(['list', '--tracker', '127.0.0.1:9'], {
      env: { [SWARM_SECRET_ENV]: 'hunter2' },
    });
    assert.equal(fromEnv.code, 2, fromEnv.stderr);
    assert.match(fromEnv.stderr, message);
    const tracker = await runCli(['tracker', '--host', '127.0.0.1', '--port', '0', '--secret', short], {
      timeoutMs: 30_000,
    });
    assert.equal(tracker.code, 2, tracker.stderr);
    assert.match(tracker.stderr, message);
    assert.doesNotMatch(tracker.stdout, /listening/);
  });

  test('`list --secret` against an open tracker fails clearly', T, async (t) => {
    const secret = await writeSecret(await tempDir(t), 'swarm.secret', SECRET);
    const { address } = await startTrackerProcess(t);
    const result = await runCli(['list', '--tracker', address, '--secret', secret]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /open swarm/);
  });
});

test('a secret file with a trailing newline is the passphrase in the environment', async (t) => {
  const dir = await tempDir(t);
  const sessionKey = randomBytes(32);
  const fromEnv = await loadSwarmKey(undefined, { [SWARM_SECRET_ENV]: SECRET });
  for (const ending of ['\n', '\r\n', '']) {
    const fromFile = await loadSwarmKey(
      await writeSecret(dir, `s${ending.length}`, `${SECRET}${ending}`),
      {},
    );
    assert.ok(fromFile!.proof(sessionKey, 'client').equals(fromEnv!.proof(sessionKey, 'client')));
  }
  const other = await loadSwarmKey(undefined, { [SWARM_SECRET_ENV]: `${SECRET}x` });
  assert.ok(!other!.proof(sessionKey, 'client').equals(fromEnv!.proof(sessionKey, 'client')));
});

// ---- Hostile clients of a private swarm --------------------------------------------------------

/** Frames from `hostile` once the server has closed it. */
async function framesUntilClosed(hostile: Hostile): Promise<Buffer[]> {
  await hostile.closed;
  return hostile.frames;
}

/** A PROOF made with `secret`'s key for the TLS session of `stream`. */
async function proofFor(stream: Duplex, secret: string): Promise<Buffer> {
  const key = await keyOf(secret);
  return encodeFrame(encodeProof(key.proof(sessionKeyOf(stream as TLSSocket), 'client')));
}

describe('a private server tells an outsider nothing', () => {
  test('tracker: HELLO and LIST at once, with no proof or a wrong one, get one REFUSE', T, async (t) => {
    const { port } = await startTracker(t, { credentials: await credentialsIn(SECRET) });
    const helloAndList = Buffer.concat([
      encodeFrame(encodeHello({ protocol: TRACKER_PROTOCOL, versions: [1] })),
      encodeFrame(encodeTrackerMessage({ type: 'list', req: 1, query: '', limit: 100 })),
    ]);
    for (const proof of ['none', 'wrong'] as const) {
      const hostile = await Hostile.open(t, port);
      const prefix = proof === 'wrong' ? await proofFor(hostile.stream, WRONG_SECRET) : Buffer.alloc(0);
      hostile.write(Buffer.concat([prefix, helloAndList]));
      const frames = await framesUntilClosed(hostile);
      assert.equal(frames.length, 1, `proof ${proof}: ${frames.length} frames back`);
      const reply = decodeHandshakeReply(frames[0]!);
      assert.ok('refusal' in reply);
      assert.equal(reply.refusal.code, 'ERR_SWARM_SECRET');
    }
    // A member is let in.
    const member = await TrackerClient.connect({
      host: HOST,
      port,
      credentials: await credentialsIn(SECRET),
    });
    t.after(() => member.close());
    await member.list();
  });

  test('chunk server: HELLO and REQUEST at once get one REFUSE, and no chunk is read', T, async (t) => {
    const file = await smallFile(t);
    const seeder = await startChunkServer(t, file, await credentialsIn(SECRET));
    const hostile = await Hostile.open(t, seeder.port);
    hostile.write(
      Buffer.concat([
        encodeFrame(encodeHello({ protocol: PEER_PROTOCOL, versions: [1] })),
        encodeFrame(encodePeerMessage({ type: 'request', req: 1, fileId: file.manifest.id, index: 0 })),
      ]),
    );
    const frames = await framesUntilClosed(hostile);
    assert.equal(frames.length, 1);
    const reply = decodeHandshakeReply(frames[0]!);
    assert.ok('refusal' in reply && reply.refusal.code === 'ERR_SWARM_SECRET');
    assert.equal(seeder.reads(), 0);
  });

  test('chunk server: clients without the key, or with another, cannot fetch a chunk', T, async (t) => {
    const file = await smallFile(t);
    const seeder = await startChunkServer(t, file, await credentialsIn(SECRET));
    for (const credentials of [undefined, await credentialsIn(WRONG_SECRET)]) {
      await assert.rejects(PeerClient.connect('127.0.0.1', seeder.port, credentials ? { credentials } : {}), {
        code: 'ERR_SWARM_SECRET',
      });
    }
    assert.equal(seeder.reads(), 0);
    const member = await PeerClient.connect('127.0.0.1', seeder.port, {
      credentials: await credentialsIn(SECRET),
    });
    t.after(() => member.close());
    assert.equal((await member.requestChunk(file.manifest.id, 0)).length, MIN_CHUNK_SIZE);
  });
});

// ---- Members meeting servers outside their swarm -----------------------------------------------

/**
 * A hostile server that takes any client: it skips a client's PROOF, then either welcomes it with no
 * proof of its own (an open server that ignores proofs) or sends a forged one first. Records every
 * frame a client sends after its HELLO.
 */
async function startLaxServer(
  t: TestContext,
  mode: 'no proof' | 'forged proof',
): Promise<{ port: number; afterHello: Buffer[]; hellos: () => number }> {
  const afterHello: Buffer[] = [];
  let hellos = 0;
  const { port } = await listenHostile(t, (stream) => {
    const link = new FrameLink(stream);
    void (async () => {
      let body = await link.next();
      if (body && body[0] === PROOF) body = await link.next();
      if (!body) return;
      decodeHello(body);
      hellos++;
      if (mode === 'forged proof') link.send(encodeProof(randomBytes(32)));
      link.send(encodeWelcome(1));
      for (let next = await link.next(); next; next = await link.next()) afterHello.push(next);
    })().catch(() => stream.destroy());
  });
  return { port, afterHello, hellos: () => hellos };
}

describe('a member refuses a server outside its swarm', () => {
  for (const mode of ['no proof', 'forged proof'] as const) {
    test(`a server whose WELCOME comes with ${mode}: tracker and peer clients refuse it`, T, async (t) => {
      const lax = await startLaxServer(t, mode);
      const credentials = await credentialsIn(SECRET);
      await assert.rejects(TrackerClient.connect({ host: HOST, port: lax.port, credentials }), {
        code: 'ERR_SWARM_SECRET',
      });
      await assert.rejects(
        PeerClient.connect('127.0.0.1', lax.port, { credentials, self: { name: 'member', port: 7 } }),
        {
          code: 'ERR_SWARM_SECRET',
        },
      );
      assert.equal(lax.hellos(), 2, 'both clients reached the server');
      // Neither client said anything past its HELLO (no REGISTER, no INFO with its name and port).
      assert.deepEqual(lax.afterHello, []);
    });
  }

  test('open servers refuse a client that offers a proof', T, async (t) => {
    const credentials = await credentialsIn(SECRET);
    const { port: trackerPort } = await startTracker(t);
    await assert.rejects(TrackerClient.connect({ host: HOST, port: trackerPort, credentials }), {
      code: 'ERR_SWARM_SECRET',
      message: /open swarm/,
    });
    const file = await smallFile(t);
    const seeder = await startChunkServer(t, file, await credentialsIn(null));
    await assert.rejects(PeerClient.connect('127.0.0.1', seeder.port, { credentials }), {
      code: 'ERR_SWARM_SECRET',
      message: /open swarm/,
    });
    assert.equal(seeder.reads(), 0);
  });
});
