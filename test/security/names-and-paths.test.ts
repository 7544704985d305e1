import { ephemeralCredentials } from '../../src/transport/credentials.js';
/**
 * Names and paths: file names from the network and from people, where downloads may write, and
 * what reaches a terminal. Real parts throughout: the real CLI in child processes, a real tracker
 * process, real peers on loopback, real files and symlinks in temp folders. The hostile ends (a
 * tracker, a peer, a client) are written here with the real wire codecs over test/helpers/hostile.ts.
 *
 * Hostile cases covered:
 * - names refused for publishing and typing: empty, ".", "..", dots and spaces only, "/", "\",
 *   drive prefixes, NUL/ESC/CR/DEL, C1 controls, bidi overrides and isolates, 256+ bytes;
 * - names accepted: dots inside, "..hidden", multi-byte up to 255 bytes, emoji sequences, and
 *   non-portable ones (CON, "a:b", "notes.") which only downloads rewrite;
 * - sanitising: traversal, absolute paths, backslashes, drive prefixes, controls, bidi, Windows
 *   device names, trailing dots and spaces, forbidden characters, over-long names cut on a code point
 *   boundary keeping the extension, names that leave nothing; any string at all (property);
 * - terminal escaping: ESC, CSI, OSC, BEL, CR, BS, DEL, C1, bidi, line separators; JSON escaping
 *   keeps the value; ordinary text in any script untouched (properties);
 * - LAN offers and mesh OFFERS naming a file with a bidi override or a C1 control are refused;
 * - a hostile client's ANNOUNCE to the real tracker process: ESC, C1, bidi, "../", a drive prefix,
 *   dots only, names of 256 bytes and of 65535 bytes, each refused per file with ERR_BAD_NAME in
 *   one batch, the good file beside them accepted, the session kept; the tracker's log on stderr
 *   carries none of those characters raw;
 * - a hostile tracker listing and locating a file under a name made of "C:", "../", "\", OSC, ESC,
 *   BEL, C1 CSI and a bidi override, holders named with ESC: `list` (table and --json) and `get`
 *   (by id prefix) print no raw control character; the file is downloaded, verified, and saved
 *   inside --out under the sanitised name; nothing appears outside --out;
 * - the same hostile tracker answering with an ERROR whose message carries OSC 52 and ESC: printed
 *   escaped;
 * - `get` of a name the user typed with "../" or an ESC: ERR_BAD_NAME, escaped, nothing downloaded;
 * - never overwrite: a file already at the name (other content) keeps its bytes; symlinks planted
 *   at the next free names (one to a file outside, one dangling to a path outside) are not followed;
 *   the download takes the next free name;
 * - the peer shell against the hostile tracker: list, search, get, peers, status, a typed bad name:
 *   nothing raw on stdout or stderr;
 * - a hostile peer (no tracker) whose MANIFEST names the file "../../" with ESC and bidi, and whose
 *   INFO names itself with ESC: `get --peer` saves under the sanitised name inside --out;
 * - a symlink planted at the partial download's temp name, at its state name, and the partial
 *   folder itself being a symlink: never followed, the files they point at untouched;
 * - a 255-byte name finished across filesystems (state folder on another one): placed whole;
 * - the peer dashboard's "start download by name" with "../x", an ESC or a bidi override:
 *   400 ERR_BAD_NAME.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import {
  MAX_FILE_NAME_BYTES,
  MAX_PEER_FRAME,
  MAX_TRACKER_FRAME,
  TRACKER_PROTOCOL,
  TRACKER_VERSIONS,
} from '../../src/constants.js';
import { startPeerDashboard } from '../../src/http/peer-dashboard.js';
import { PeerNode } from '../../src/peer/peer-node.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { fileNameProblem, safeFileName } from '../../src/storage/file-name.js';
import { chunkCount, computeFileId, fileIdHex, type Manifest } from '../../src/storage/manifest.js';
import { PARTIAL_DIR_NAME, PartialFile } from '../../src/storage/partial-file.js';
import { readFileChunk } from '../../src/storage/shared-folder.js';
import { escapeForTerminal, escapeJsonForTerminal } from '../../src/terminal-text.js';
import { ProtocolError, Writer } from '../../src/wire/codec.js';
import { decodeLanOffer, encodeLanOffer } from '../../src/wire/lan-offer.js';
import { PeerType, decodePeerMessage, encodePeerMessage } from '../../src/wire/peer-messages.js';
import {
  TrackerType,
  decodeTrackerMessage,
  encodeTrackerMessage,
  type FileSummary,
  type Holder,
  type TrackerReply,
} from '../../src/wire/tracker-messages.js';
import { runCli, startCli, startTrackerProcess, type CliResult } from '../helpers/cli.js';
import {
  FrameLink,
  acceptHandshake,
  connectHostile,
  listenHostile,
  openHandshake,
} from '../helpers/hostile.js';
import { makeFile, sha256File, type TestFile } from '../helpers/peer-fixtures.js';
import { tempDir, waitFor } from '../helpers/wait.js';
import { errorCodeOf, request } from '../http/fixtures.js';

/** Nothing here is timed; deadlines are for a loaded 2-core machine. */
const LONG = 120_000;
const T = { timeout: LONG };

/**
 * What must never reach a terminal raw: C0 controls but the newline, DEL, C1 controls, bidi marks,
 * embeddings, overrides and isolates, line and paragraph separators.
 */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/** A traversal, a drive, both separators, an OSC title, BEL, ESC colours, a C1 CSI, a bidi override. */
const HOSTILE_NAME = 'C:../..\\\x1b]0;owned\x07\x1b[31mreport\u202efdp.exe\x9b2J';
/** What a download saves it as. */
const SAFE_NAME = '.._..__]0;owned__[31mreport_fdp.exe_2J';
const HOSTILE_PEER_NAME = '\x1b[2J\x1b[Hpeer\u202e';
/** OSC 52 asks a terminal to put text on the clipboard. */
const HOSTILE_MESSAGE = 'nope \x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\u202eegassem';

function assertNothingRaw(output: string, what: string): void {
  const found = RAW_CONTROL.exec(output);
  assert.equal(
    found,
    null,
    `${what} printed U+${found?.[0].codePointAt(0)?.toString(16).padStart(4, '0')} raw: ${JSON.stringify(output.slice(0, 2000))}`,
  );
}

function assertCliClean(result: Pick<CliResult, 'stdout' | 'stderr'>, what: string): void {
  assertNothingRaw(result.stdout, `${what} (stdout)`);
  assertNothingRaw(result.stderr, `${what} (stderr)`);
}

// ---- The pure rules ------------------------------------------------------------------------------

test('fileNameProblem: what may never be published or typed, and what may', () => {
  const refused = [
    '',
    '.',
    '..',
    '...',
    ' ',
    '. .',
    'a/b',
    '/etc/passwd',
    '../x',
    'a\\b',
    'C:x',
    'c:',
    'nul\0',
    'esc\x1b[2J',
    'cr\rhere',
    'del\x7f',
    'csi\x9b2J',
    'c1\x85',
    'photo\u202egpj.exe',
    'lre\u202a',
    'isolate\u2066x\u2069',
    'x'.repeat(256),
    'é'.repeat(128),
  ];
  for (const name of refused) assert.notEqual(fileNameProblem(name), null, JSON.stringify(name));
  const accepted = [
    'a',
    '..hidden',
    '.bashrc',
    'a b.c',
    'x'.repeat(255),
    'é'.repeat(127) + 'a',
    '日本語.txt',
    '👨‍👩‍👧 family.jpg',
    'שלום.txt',
    // Not portable, but ordinary where they are shared from: downloads rewrite them.
    'CON',
    'aux.c',
    '12:30 notes',
    'notes.',
    'what?.pdf',
  ];
  for (const name of accepted) assert.equal(fileNameProblem(name), null, JSON.stringify(name));
});

test('safeFileName: the name a file from the network is saved under', () => {
  const fallback = 'f'.repeat(64);
  const cases: [string, string][] = [
    ['movie.mkv', 'movie.mkv'],
    ['../../etc/passwd', '.._.._etc_passwd'],
    ['/etc/passwd', '_etc_passwd'],
    ['C:\\Windows\\evil.dll', '_Windows_evil.dll'],
    ['c:D:x', 'D_x'],
    ['red\x1b[31m.txt', 'red_[31m.txt'],
    ['photo\u202egpj.exe', 'photo_gpj.exe'],
    ['csi\x9b2J', 'csi_2J'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['Com1.tar.gz', '_Com1.tar.gz'],
    ['lpt¹', '_lpt¹'],
    ['con .txt', '_con .txt'],
    ['CON' + ' '.repeat(300), '_CON'],
    ['CONFIG.SYS', 'CONFIG.SYS'],
    ['notes.txt. . ', 'notes.txt'],
    ['ab:c?d*"<|>.txt', 'ab_c_d_____.txt'],
    [HOSTILE_NAME, SAFE_NAME],
    ['', fallback],
    ['.', fallback],
    ['..', fallback],
    ['...', fallback],
    [' . ', fallback],
    ['C:', fallback],
  ];
  for (const [name, expected] of cases) {
    assert.equal(safeFileName(name, fallback), expected, JSON.stringify(name));
  }
  // Over 255 bytes: cut on a code point boundary, the extension kept.
  const long = safeFileName(`${'x'.repeat(300)}.pdf`, fallback);
  assert.equal(long, `${'x'.repeat(251)}.pdf`);
  const cjk = safeFileName('日'.repeat(100), fallback);
  assert.equal(cjk, '日'.repeat(85));
  const emoji = safeFileName(`${'😀'.repeat(70)}.png`, fallback);
  assert.equal(emoji, `${'😀'.repeat(62)}.png`);
  assert.ok(Buffer.byteLength(emoji) <= MAX_FILE_NAME_BYTES);
  // A long "extension" is just the end of a long name.
  assert.equal(safeFileName(`a.${'y'.repeat(300)}`, fallback), `a.${'y'.repeat(253)}`);
});

test('safeFileName of any string is safe, portable, at most 255 bytes, and stable (property)', () => {
  const awkward = fc.constantFrom(
    '.',
    ' ',
    '/',
    '\\',
    ':',
    'C:',
    '\x00',
    '\x1b',
    '\x7f',
    '\x9b',
    '\u202e',
    '\u2066',
    'CON',
    'nul',
    'COM1',
    '😀',
    'é',
    '?',
    '*',
  );
  const names = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.array(fc.oneof(awkward, fc.string({ maxLength: 4 })), { maxLength: 120 }).map((p) => p.join('')),
  );
  fc.assert(
    fc.property(names, (name) => {
      const safe = safeFileName(name, 'fallback');
      assert.equal(fileNameProblem(safe), null, JSON.stringify(safe));
      assert.ok(Buffer.byteLength(safe) <= MAX_FILE_NAME_BYTES);
      assert.ok(!/[<>:"|?*]|[. ]$/.test(safe), JSON.stringify(safe));
      assert.ok(!/^(con|prn|aux|nul|com\d|lpt\d) *(\.|$)/i.test(safe), JSON.stringify(safe));
      assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(safe));
      assert.equal(safeFileName(safe, 'fallback'), safe, 'applied twice');
    }),
    { numRuns: 2000 },
  );
  // A name that is safe and portable already (no device name either) is kept as it is.
  const plain = fc
    .string({ minLength: 1, maxLength: 60 })
    .filter((s) => /^[\w\-()[\]' ,é日😀]*\w$/u.test(s) && !/^(con|prn|aux|nul|com\d|lpt\d) *$/i.test(s));
  fc.assert(
    fc.property(plain, (name) => assert.equal(safeFileName(name, 'fallback'), name)),
    { numRuns: 2000 },
  );
  for (const device of ['con', 'NUL', 'Com7', 'lpt1 ']) {
    assert.notEqual(safeFileName(device, 'fallback'), device.trim());
  }
});

test('escapeForTerminal shows what could act on a terminal, and nothing else (properties)', () => {
  const cases: [string, string][] = [
    ['\x1b]0;owned\x07', '\\x1b]0;owned\\x07'],
    ['\x1b[2J\r\b\x7f', '\\x1b[2J\\x0d\\x08\\x7f'],
    ['\x9b31m\x85', '\\x9b31m\\x85'],
    ['evil\u202egpj.exe', 'evil\\u202egpj.exe'],
    ['\u2066\u2069\u200f\u2028\u061c', '\\u2066\\u2069\\u200f\\u2028\\u061c'],
    ['tab\there\nline', 'tab\\x09here\\x0aline'],
    ['日本語 שלום 👨‍👩‍👧 é', '日本語 שלום 👨‍👩‍👧 é'],
  ];
  for (const [text, shown] of cases) assert.equal(escapeForTerminal(text), shown, JSON.stringify(text));
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
      const shown = escapeForTerminal(text);
      assertNothingRaw(shown.replace(/\n/g, ''), 'escapeForTerminal');
      assert.ok(!shown.includes('\n'));
      assert.equal(escapeForTerminal(shown), shown, 'applied twice');
      const json = escapeJsonForTerminal(JSON.stringify({ text }));
      assertNothingRaw(json, 'escapeJsonForTerminal');
      assert.deepEqual(JSON.parse(json), { text }, 'the JSON value is unchanged');
    }),
    { numRuns: 2000 },
  );
});

test('LAN offers and mesh OFFERS naming a file with a bidi override or a C1 control are refused', () => {
  const header = { peerId: Buffer.alloc(32, 1), name: 'lan', port: 7000, catalogTag: 1 };
  for (const name of ['photo\u202egpj.exe', 'csi\x9b2J', '...']) {
    // The encoder refuses such a name: encode one of the same length, then put the name's bytes in
    // its place, as a hostile sender would.
    const standIn = 'x'.repeat(Buffer.byteLength(name));
    const { datagram } = encodeLanOffer(header, [{ fileId: Buffer.alloc(32, 2), name: standIn, size: 10 }]);
    Buffer.from(name).copy(datagram, datagram.indexOf(standIn));
    assert.throws(() => decodeLanOffer(datagram), ProtocolError, JSON.stringify(name));

    const offers = new Writer().u8(PeerType.OFFERS).u16(1).fixed(Buffer.alloc(32, 3), 32).str(name, 255);
    offers
      .u64(10)
      .u32(256 * 1024)
      .blob(Buffer.from([0x80]), 8192);
    assert.throws(() => decodePeerMessage(offers.finish()), ProtocolError, JSON.stringify(name));
  }
});

// ---- A hostile client at the real tracker --------------------------------------------------------

/** A valid manifest of made-up content (the tracker never sees the bytes). */
function madeUpManifest(seed: number, name: string): Manifest {
  const hashes = Buffer.alloc(32, seed);
  const size = 1000;
  const chunkSize = 256 * 1024;
  return { id: computeFileId(size, chunkSize, hashes), name, size, chunkSize, hashes };
}

/** An ANNOUNCE with any names at all, written field by field as the wire layout has it. */
function rawAnnounce(req: number, manifests: Manifest[]): Buffer {
  const w = new Writer().u8(TrackerType.ANNOUNCE).u32(req).u16(manifests.length);
  for (const m of manifests) {
    w.fixed(m.id, 32)
      .str(m.name, 0xffff)
      .u64(m.size)
      .u32(m.chunkSize)
      .blob(m.hashes, 1 << 21);
  }
  return w.finish();
}

async function trackerCall(link: FrameLink, body: Buffer): Promise<TrackerReply> {
  link.send(body);
  const reply = await link.next();
  if (!reply) throw new Error('the tracker closed the session');
  return decodeTrackerMessage(reply) as TrackerReply;
}

test(
  'the tracker process refuses each bad name of a hostile ANNOUNCE with ERR_BAD_NAME, and logs none raw',
  T,
  async (t) => {
    const { proc, address } = await startTrackerProcess(t);
    const port = Number(address.split(':').pop());
    const credentials = await ephemeralCredentials();
    const link = new FrameLink(await connectHostile(t, port, credentials), MAX_TRACKER_FRAME);
    await openHandshake(link, TRACKER_PROTOCOL, [...TRACKER_VERSIONS]);
    const registered = await trackerCall(
      link,
      encodeTrackerMessage({
        type: 'register',
        req: 1,
        peerId: credentials.peerId,
        name: 'hostile',
        port: 7001,
      }),
    );
    assert.equal(registered.type, 'registered');
    const bad = [
      'esc\x1b]0;owned\x07',
      'csi\x9b2J',
      'photo\u202egpj.exe',
      '../escape',
      'C:evil',
      '. .',
      'x'.repeat(256),
      'y'.repeat(0xffff),
    ];
    const good = madeUpManifest(1, 'good.bin');
    const manifests = [good, ...bad.map((name, i) => madeUpManifest(i + 2, name))];
    const announced = await trackerCall(link, rawAnnounce(2, manifests));
    assert.equal(announced.type, 'announced');
    assert.deepEqual(announced.type === 'announced' ? announced.results.map((r) => r.code) : [], [
      '',
      ...bad.map(() => 'ERR_BAD_NAME'),
    ]);
    // The session goes on, and only the good file is listed.
    const files = await trackerCall(
      link,
      encodeTrackerMessage({ type: 'list', req: 3, query: '', limit: 100 }),
    );
    assert.deepEqual(files.type === 'files' ? files.files.map((f) => f.name) : [], ['good.bin']);
    const lines = await waitFor(() => {
      const done = proc.stderr.split('\n').filter((line) => line.includes('announce refused'));
      return done.length === bad.length ? done : null;
    }, 'the refusals in the log');
    for (const line of lines) JSON.parse(line);
    assertNothingRaw(proc.stderr, 'the tracker log');
    assertNothingRaw(proc.stdout, 'the tracker');
    link.close();
  },
);

// ---- A hostile tracker, a real seeder, the real CLI ----------------------------------------------

interface HostileTracker {
  address: string;
}

/**
 * A tracker that lists and locates one real file under HOSTILE_NAME, with holders named
 * HOSTILE_PEER_NAME, answers a LIST for "boom" with an ERROR carrying HOSTILE_MESSAGE, and
 * accepts everything else.
 */
async function startHostileTracker(
  t: TestContext,
  manifest: Manifest,
  holders: Holder[],
): Promise<HostileTracker> {
  const listed: FileSummary = {
    id: manifest.id,
    name: HOSTILE_NAME,
    size: manifest.size,
    chunks: chunkCount(manifest),
    seeders: holders.length,
    peers: holders.length,
  };
  const serve = async (stream: Duplex): Promise<void> => {
    const link = new FrameLink(stream, MAX_TRACKER_FRAME);
    if (!(await acceptHandshake(link))) return;
    for (let body = await link.next(); body; body = await link.next()) {
      const request = decodeTrackerMessage(body);
      const req = request.req;
      let reply: TrackerReply;
      switch (request.type) {
        case 'register':
          reply = {
            type: 'registered',
            req,
            host: '127.0.0.1',
            port: request.port,
            heartbeatMs: 10_000,
            expiryMs: 30_000,
          };
          break;
        case 'announce':
          reply = {
            type: 'announced',
            req,
            results: request.manifests.map((m) => ({ fileId: m.id, code: '', message: '' })),
          };
          break;
        case 'list':
          reply =
            request.query === 'boom'
              ? { type: 'error', req, code: 'ERR_LIMIT', message: HOSTILE_MESSAGE }
              : { type: 'files', req, total: 1, files: [listed] };
          break;
        case 'locate':
          reply = request.fileId.equals(manifest.id)
            ? { type: 'location', req, manifest: { ...manifest, name: HOSTILE_NAME }, holders }
            : { type: 'error', req, code: 'ERR_UNKNOWN_FILE', message: HOSTILE_MESSAGE };
          break;
        default:
          reply = { type: 'ok', req };
      }
      link.send(encodeTrackerMessage(reply));
      if (request.type === 'leave') link.close();
    }
  };
  const { host, port } = await listenHostile(t, (stream) => void serve(stream).catch(() => stream.destroy()));
  return { address: `${host}:${port}` };
}

interface Swarm {
  tracker: HostileTracker;
  file: TestFile;
  idHex: string;
}

/** A real peer seeding one file (no tracker), and the hostile tracker pointing at it. */
async function hostileSwarm(t: TestContext): Promise<Swarm> {
  const seedDir = await tempDir(t);
  const file = await makeFile(seedDir, 'payload.bin', 700_000, 31);
  const seeder = await PeerNode.start({
    dir: seedDir,
    host: '127.0.0.1',
    lan: false,
    ephemeralIdentity: true,
  });
  t.after(() => seeder.close());
  const holder: Holder = {
    peerId: seeder.peerId,
    name: HOSTILE_PEER_NAME,
    host: '127.0.0.1',
    port: seeder.address.port,
    chunks: Bitfield.full(chunkCount(file.manifest)),
  };
  const tracker = await startHostileTracker(t, file.manifest, [holder]);
  return { tracker, file, idHex: fileIdHex(file.manifest.id) };
}

/** Every file and link under `dir`, relative to it. */
async function tree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

test(
  'a hostile tracker: list and get print nothing raw; the file lands inside --out, sanitised',
  T,
  async (t) => {
    const { tracker, file, idHex } = await hostileSwarm(t);
    const base = await tempDir(t);
    const out = path.join(base, 'out');

    const table = await runCli(['list', '--tracker', tracker.address]);
    assert.equal(table.code, 0, table.stderr);
    assertCliClean(table, 'list');
    assert.ok(table.stdout.includes(escapeForTerminal(HOSTILE_NAME)), table.stdout);

    const json = await runCli(['list', '--tracker', tracker.address, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assertCliClean(json, 'list --json');
    // Escaped for the terminal, yet the same value for a program.
    const listed = (JSON.parse(json.stdout) as { files: { id: string; name: string }[] }).files;
    assert.deepEqual(
      listed.map((f) => [f.id, f.name]),
      [[idHex, HOSTILE_NAME]],
    );

    const failed = await runCli(['list', 'boom', '--tracker', tracker.address]);
    assert.equal(failed.code, 1);
    assertCliClean(failed, 'list with a remote error');
    assert.ok(failed.stderr.includes(escapeForTerminal(HOSTILE_MESSAGE)), failed.stderr);

    const got = await runCli(
      [
        'get',
        idHex.slice(0, 12),
        '--tracker',
        tracker.address,
        '--out',
        out,
        '--host',
        '127.0.0.1',
        '--json',
      ],
      { timeoutMs: LONG },
    );
    assert.equal(got.code, 0, got.stderr);
    assertCliClean(got, 'get');
    const summary = JSON.parse(got.stdout.trim().split('\n').pop()!) as {
      name: string;
      path: string;
      sources: { name: string }[];
    };
    const realOut = await fs.realpath(out);
    assert.equal(summary.name, SAFE_NAME);
    assert.equal(summary.path, path.join(realOut, SAFE_NAME));
    assert.deepEqual(
      summary.sources.map((s) => s.name),
      [HOSTILE_PEER_NAME],
    );
    assert.equal(await sha256File(summary.path), file.sha256);
    // Nothing outside --out, and inside it only the file (the state folder `get` made is gone).
    assert.deepEqual(await fs.readdir(base), ['out']);
    assert.deepEqual(await tree(out), [SAFE_NAME]);
  },
);

test(
  'get of a name the user typed with "../" or an ESC: ERR_BAD_NAME, escaped, nothing downloaded',
  T,
  async (t) => {
    const { tracker } = await hostileSwarm(t);
    const out = await tempDir(t);
    for (const typed of ['../payload.bin', 'evil\x1b]0;owned\x07', 'photo\u202egpj.exe']) {
      const result = await runCli([
        'get',
        typed,
        '--tracker',
        tracker.address,
        '--out',
        out,
        '--host',
        '127.0.0.1',
      ]);
      assert.equal(result.code, 1, result.stderr);
      assertCliClean(result, `get ${JSON.stringify(typed)}`);
      assert.match(result.stderr, /cannot get .*give its id/);
      assert.deepEqual(await fs.readdir(out), []);
    }
  },
);

test('never overwrite: an existing file keeps its bytes; planted symlinks are not followed', T, async (t) => {
  const { tracker, file, idHex } = await hostileSwarm(t);
  const base = await tempDir(t);
  const out = path.join(base, 'out');
  const outside = path.join(base, 'outside');
  await fs.mkdir(out);
  await fs.mkdir(outside);
  const victim = path.join(outside, 'victim.txt');
  await fs.writeFile(victim, 'victim');
  await fs.writeFile(path.join(out, SAFE_NAME), 'precious');
  const stem = SAFE_NAME.slice(0, SAFE_NAME.lastIndexOf('.'));
  const ext = SAFE_NAME.slice(SAFE_NAME.lastIndexOf('.'));
  await fs.symlink(victim, path.join(out, `${stem} (1)${ext}`));
  await fs.symlink(path.join(outside, 'created.txt'), path.join(out, `${stem} (2)${ext}`));

  const got = await runCli(
    ['get', idHex, '--tracker', tracker.address, '--out', out, '--host', '127.0.0.1', '--json'],
    { timeoutMs: LONG },
  );
  assert.equal(got.code, 0, got.stderr);
  assertCliClean(got, 'get');
  const summary = JSON.parse(got.stdout.trim().split('\n').pop()!) as { name: string; path: string };
  assert.equal(summary.name, `${stem} (3)${ext}`);
  assert.equal(await sha256File(path.join(out, summary.name)), file.sha256);
  assert.equal(await fs.readFile(path.join(out, SAFE_NAME), 'utf8'), 'precious');
  assert.equal(await fs.readFile(victim, 'utf8'), 'victim');
  assert.equal(await fs.readlink(path.join(out, `${stem} (1)${ext}`)), victim);
  assert.deepEqual(await fs.readdir(outside), ['victim.txt']);
});

test('the peer shell against a hostile tracker prints nothing raw', T, async (t) => {
  const { tracker, file, idHex } = await hostileSwarm(t);
  const dir = await tempDir(t);
  const peer = startCli(t, [
    'peer',
    '--dir',
    dir,
    '--tracker',
    tracker.address,
    '--host',
    '127.0.0.1',
    '--name',
    'shell',
    '--no-lan',
  ]);
  await peer.waitForOutput(/connected to tracker/);
  peer.send('list');
  peer.send('search report');
  await peer.waitForOutput(/report[\s\S]*report/);
  peer.send(`get ${idHex}`);
  await peer.waitForOutput(/got .* -> /, LONG);
  peer.send('peers');
  peer.send('status');
  peer.send('get ../x');
  peer.send('search boom');
  peer.send('exit');
  const { code } = await peer.exited;
  assert.equal(code, 1, peer.stderr);
  assertCliClean(peer, 'the shell');
  assert.ok(peer.stdout.includes(escapeForTerminal(HOSTILE_NAME)), peer.stdout);
  assert.ok(peer.stdout.includes(escapeForTerminal(HOSTILE_PEER_NAME)), peer.stdout);
  assert.match(peer.stdout, /error: cannot get "\.\.\/x"/);
  assert.equal(await sha256File(path.join(dir, SAFE_NAME)), file.sha256);
});

// ---- A hostile peer ------------------------------------------------------------------------------

/**
 * A peer that offers one real file under an innocent name, then answers GET_MANIFEST with a
 * manifest named `manifestName` and serves its chunks; its INFO names it HOSTILE_PEER_NAME.
 */
async function startHostilePeer(t: TestContext, file: TestFile, manifestName: string): Promise<string> {
  const { manifest } = file;
  let port = 0;
  let selfId: Buffer = Buffer.alloc(0);
  const serve = async (stream: Duplex): Promise<void> => {
    const link = new FrameLink(stream, MAX_PEER_FRAME);
    if (!(await acceptHandshake(link))) return;
    for (let body = await link.next(); body; body = await link.next()) {
      const message = decodePeerMessage(body);
      if (message.type === 'info') {
        link.send(encodePeerMessage({ type: 'info', peerId: selfId, name: HOSTILE_PEER_NAME, port }));
        const offer = {
          fileId: manifest.id,
          name: 'innocent.bin',
          size: manifest.size,
          chunkSize: manifest.chunkSize,
          chunks: Bitfield.full(chunkCount(manifest)),
        };
        link.send(encodePeerMessage({ type: 'offers', offers: [offer] }));
      } else if (message.type === 'get_manifest') {
        link.send(
          encodePeerMessage({
            type: 'manifest',
            req: message.req,
            manifest: { ...manifest, name: manifestName },
          }),
        );
      } else if (message.type === 'request') {
        const data = await readFileChunk(file.path, manifest, message.index);
        link.send(encodePeerMessage({ type: 'piece', req: message.req, index: message.index, data }));
      }
    }
  };
  const listening = await listenHostile(t, (stream) => void serve(stream).catch(() => stream.destroy()));
  port = listening.port;
  selfId = listening.peerId;
  return `${listening.host}:${port}`;
}

test(
  'a hostile peer naming the file "../../" with ESC and bidi: saved inside --out, sanitised',
  T,
  async (t) => {
    const file = await makeFile(await tempDir(t), 'payload.bin', 600_000, 41);
    const name = '../../\x1b[1mtrust\u202eme\x9b';
    const peer = await startHostilePeer(t, file, name);
    const base = await tempDir(t);
    const out = path.join(base, 'out');
    const idHex = fileIdHex(file.manifest.id);
    const got = await runCli(['get', idHex, '--peer', peer, '--out', out, '--host', '127.0.0.1', '--json'], {
      timeoutMs: LONG,
    });
    assert.equal(got.code, 0, got.stderr);
    assertCliClean(got, 'get --peer');
    const expected = safeFileName(name, idHex);
    assert.equal(expected, '.._..__[1mtrust_me_');
    assert.equal(await sha256File(path.join(out, expected)), file.sha256);
    assert.deepEqual(await fs.readdir(base), ['out']);
    assert.deepEqual(await tree(out), [expected]);
  },
);

// ---- Symlinks at the partial download's names --------------------------------------------------

async function partialSetup(
  t: TestContext,
): Promise<{ source: TestFile; dest: string; stateDir: string; victim: string }> {
  const source = await makeFile(await tempDir(t), 'movie.mkv', 600_000, 12);
  const dest = await tempDir(t);
  const outside = await tempDir(t);
  const victim = path.join(outside, 'victim.txt');
  await fs.writeFile(victim, 'victim');
  return { source, dest, stateDir: path.join(dest, '.swarmshare'), victim };
}

test(
  'a symlink at the temp name, at the state name, or as the partial folder is never followed',
  T,
  async (t) => {
    const { source, dest, stateDir, victim } = await partialSetup(t);
    const partialDir = path.join(stateDir, PARTIAL_DIR_NAME);
    const idHex = fileIdHex(source.manifest.id);
    await fs.mkdir(partialDir, { recursive: true });

    // The temp name: opening it would truncate and write the file it points at.
    await fs.symlink(victim, path.join(partialDir, `${idHex}.part`));
    await assert.rejects(PartialFile.create(stateDir, source.manifest), { code: 'ERR_OUTSIDE_DIR' });
    assert.equal(await fs.readFile(victim, 'utf8'), 'victim');
    await fs.rm(path.join(partialDir, `${idHex}.part`));

    // The state name: read as no state, then replaced by a real file; what it pointed at is untouched.
    await fs.symlink(victim, path.join(partialDir, `${idHex}.state`));
    await fs.writeFile(path.join(partialDir, `${idHex}.part`), '');
    const partial = await PartialFile.create(stateDir, source.manifest);
    await partial.write(0, await readFileChunk(source.path, source.manifest, 0));
    await partial.saveNow();
    await partial.close();
    assert.equal(await fs.readFile(victim, 'utf8'), 'victim');
    assert.ok((await fs.lstat(path.join(partialDir, `${idHex}.state`))).isFile());

    // The partial folder itself.
    await fs.rm(partialDir, { recursive: true });
    const elsewhere = await tempDir(t);
    await fs.symlink(elsewhere, partialDir);
    await assert.rejects(PartialFile.create(stateDir, source.manifest), { code: 'ERR_OUTSIDE_DIR' });
    assert.deepEqual(await fs.readdir(elsewhere), []);
    assert.deepEqual(await fs.readdir(dest), ['.swarmshare']);
  },
);

test('a 255-byte name finished across filesystems is placed whole', T, async (t) => {
  const shm = '/dev/shm';
  const [shmStat, tmpStat] = await Promise.all([fs.stat(shm).catch(() => null), fs.stat(os.tmpdir())]);
  if (!shmStat || shmStat.dev === tmpStat.dev) {
    t.skip('no second filesystem at /dev/shm');
    return;
  }
  const source = await makeFile(await tempDir(t), 'movie.mkv', 600_000, 13);
  const stateDir = await fs.mkdtemp(path.join(shm, 'swarmshare-test-'));
  t.after(() => fs.rm(stateDir, { recursive: true, force: true }));
  const dest = await tempDir(t);
  const name = `${'n'.repeat(251)}.mkv`;
  const partial = await PartialFile.create(stateDir, source.manifest);
  for (let i = 0; i < chunkCount(source.manifest); i++) {
    await partial.write(i, await readFileChunk(source.path, source.manifest, i));
  }
  assert.equal(await partial.finalize(dest, name), path.join(dest, name));
  assert.equal(await sha256File(path.join(dest, name)), source.sha256);
  assert.deepEqual(await fs.readdir(dest), [name]);
});

// ---- The peer dashboard ----------------------------------------------------------------------------

test(
  'the dashboard refuses to start a download by a name no file may have: 400 ERR_BAD_NAME',
  T,
  async (t) => {
    const node = await PeerNode.start({
      dir: await tempDir(t),
      host: '127.0.0.1',
      lan: false,
      ephemeralIdentity: true,
    });
    t.after(() => node.close());
    const { dashboard, address } = await startPeerDashboard(node, { host: '127.0.0.1' });
    t.after(() => dashboard.close());
    for (const file of ['../x', 'evil\x1b[2J', 'photo\u202egpj.exe', '...']) {
      const response = await request(`http://127.0.0.1:${address.port}/api/downloads`, {
        method: 'POST',
        body: { file },
      });
      assert.equal(response.status, 400, JSON.stringify(file));
      assert.equal(errorCodeOf(response), 'ERR_BAD_NAME', JSON.stringify(file));
    }
    assert.equal(node.activeDownloads().length, 0);
  },
);
