/**
 * Fuzz properties of the decoders of what is read from disk: a download's state file
 * (src/storage/partial-state.ts, which must never throw: a bad state is a reason, not an exception)
 * and the hosts file's parser (src/discovery/hosts-file.ts, where a bad line is a problem, never a
 * failure).
 *
 *   partial state   states round-trip; cut at every length, with trailing bytes, random, mutated, or
 *                   another file's: refused with a reason; mutated with the checksum made right again
 *                   (so that the structure is what is tested), huge counts included: refused, or a
 *                   state that re-encodes to the same bytes; never an exception, never an allocation
 *                   beyond the file's size.
 *   hosts file      random text (an alphabet of address characters, comments, brackets, whitespace,
 *                   CR, NUL, any code point): never throws; every host it returns is one address with
 *                   a port 1..65535, a host of at most MAX_HOST_BYTES, no whitespace, listed once, and
 *                   prints and parses back to itself; valid files, decorated with comments, blank lines,
 *                   spaces and CRLF: exactly their addresses, no problems; mutated valid files: the same
 *                   invariants.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { formatEndpoint, type Endpoint } from '../../src/address.js';
import {
  HASH_BYTES,
  MAX_CHUNK_SIZE,
  MAX_HOST_BYTES,
  MAX_HOSTS_FILE_LINES,
  MIN_CHUNK_SIZE,
} from '../../src/constants.js';
import { parseHostsFile } from '../../src/discovery/hosts-file.js';
import type { Manifest } from '../../src/storage/manifest.js';
import {
  PARTIAL_STATE_MAGIC,
  decodePartialState,
  encodePartialState,
  type DecodedPartialState,
} from '../../src/storage/partial-state.js';
import { bitfieldOf } from './arbitraries.js';
import {
  MAX_DECODE_MS,
  allocationBound,
  bytes,
  defineProperty,
  describeBytes,
  hugeMutation,
  largestAllocation,
  mutate,
  mutations,
  record,
  u32,
  type FuzzProperty,
} from './harness.js';

// ---- Partial state -----------------------------------------------------------------------------------

const PARTIAL_STATE = 'partial state';

/** A manifest as a download has it (validated before any state is read): only size and chunk size matter. */
const stateManifest: fc.Arbitrary<Manifest> = record({
  id: bytes(HASH_BYTES),
  chunkSizeLog: fc.integer({ min: Math.log2(MIN_CHUNK_SIZE), max: Math.log2(MAX_CHUNK_SIZE) }),
  chunks: fc.oneof(
    { weight: 9, arbitrary: fc.integer({ min: 0, max: 80 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 4100 }) },
  ),
  lastPart: u32,
}).map(({ id, chunkSizeLog, chunks, lastPart }) => {
  const chunkSize = 2 ** chunkSizeLog;
  const size = chunks === 0 ? 0 : (chunks - 1) * chunkSize + 1 + (lastPart % chunkSize);
  return { id, name: 'f.bin', size, chunkSize, hashes: Buffer.alloc(0) };
});

const stateOf = record({
  manifest: stateManifest,
  pattern: fc.uint8Array({ minLength: 1, maxLength: 8 }),
}).map(({ manifest, pattern }) => {
  const chunks = Math.ceil(manifest.size / manifest.chunkSize);
  return { manifest, have: bitfieldOf(chunks, pattern) };
});

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** `body` followed by its checksum: a state file whose structure, not its checksum, is under test. */
function withChecksum(body: Buffer): Buffer {
  return Buffer.concat([body, sha256(body)]);
}

/** Decodes a state; fails unless it returned (never threw) a usable state or a reason, quickly and small. */
function decodeState(data: Buffer, manifest: Manifest): DecodedPartialState {
  const started = performance.now();
  let thrown: unknown;
  const { value, largest } = largestAllocation(() => {
    try {
      return decodePartialState(data, manifest);
    } catch (err) {
      thrown = err;
      return undefined;
    }
  });
  assert.equal(thrown, undefined, `decodePartialState threw for ${describeBytes(data)}`);
  assert.ok(value && typeof value.ok === 'boolean', 'no outcome');
  if (!value.ok)
    assert.ok(typeof value.problem === 'string' && value.problem.length > 0, 'a refusal without a reason');
  assert.ok(
    largest <= allocationBound(data.length),
    `allocated ${largest} bytes for a state of ${data.length}`,
  );
  assert.ok(performance.now() - started <= MAX_DECODE_MS, 'slow decode');
  return value;
}

/** A state that decodes must be exactly what encoding it gives. */
function assertConsistent(data: Buffer, manifest: Manifest): void {
  const decoded = decodeState(data, manifest);
  if (decoded.ok) {
    assert.ok(
      encodePartialState(manifest, decoded.have).equals(data),
      `accepted a state that re-encodes otherwise`,
    );
  }
}

function refused(data: Buffer, manifest: Manifest, what: string): void {
  assert.equal(decodeState(data, manifest).ok, false, `${what}: accepted ${describeBytes(data)}`);
}

function partialStateProperties(): FuzzProperty[] {
  const define = <T>(name: string, runs: number, inputs: fc.Arbitrary<T>, predicate: (input: T) => void) =>
    defineProperty(PARTIAL_STATE, name, runs, inputs, predicate);
  return [
    define('states round-trip', 100, stateOf, ({ manifest, have }) => {
      const decoded = decodeState(encodePartialState(manifest, have), manifest);
      assert.ok(decoded.ok, !decoded.ok ? decoded.problem : '');
      assert.ok(decoded.have.bytes.equals(have.bytes));
      assert.equal(decoded.have.size, have.size);
    }),
    define(
      'states cut at every length, or with trailing bytes, are refused',
      30,
      fc.tuple(stateOf, fc.uint8Array({ minLength: 1, maxLength: 8 })),
      ([{ manifest, have }, extra]) => {
        const data = encodePartialState(manifest, have);
        for (let cut = 0; cut < data.length; cut++) refused(data.subarray(0, cut), manifest, `cut at ${cut}`);
        refused(Buffer.concat([data, extra]), manifest, 'trailing bytes');
      },
    ),
    define(
      'random bytes, with or without the magic and a right checksum, are refused or consistent',
      150,
      record({
        manifest: stateManifest,
        prefix: fc.constantFrom(
          Buffer.alloc(0),
          PARTIAL_STATE_MAGIC,
          Buffer.concat([PARTIAL_STATE_MAGIC, Buffer.from([0, 1])]),
        ),
        rest: fc.uint8Array({ maxLength: 200 }),
        checksum: fc.boolean(),
      }),
      ({ manifest, prefix, rest, checksum }) => {
        const body = Buffer.concat([prefix, rest]);
        assertConsistent(checksum ? withChecksum(body) : body, manifest);
      },
    ),
    define(
      'mutated states are refused or consistent',
      150,
      fc.tuple(stateOf, mutations),
      ([{ manifest, have }, list]) =>
        assertConsistent(mutate(encodePartialState(manifest, have), list), manifest),
    ),
    define(
      'mutated states with a right checksum (huge counts and sizes too) are refused or consistent',
      200,
      fc.tuple(stateOf, fc.oneof(mutations, fc.array(hugeMutation, { minLength: 1, maxLength: 2 }))),
      ([{ manifest, have }, list]) => {
        const data = encodePartialState(manifest, have);
        assertConsistent(withChecksum(mutate(data.subarray(0, data.length - HASH_BYTES), list)), manifest);
      },
    ),
    define(
      "another file's state is refused",
      60,
      fc.tuple(stateOf, stateManifest),
      ([{ manifest, have }, other]) => {
        const sameShape =
          other.id.equals(manifest.id) &&
          other.size === manifest.size &&
          other.chunkSize === manifest.chunkSize;
        if (!sameShape) refused(encodePartialState(manifest, have), other, 'another manifest');
      },
    ),
  ];
}

// ---- Hosts file --------------------------------------------------------------------------------------

const HOSTS_FILE = 'hosts file';

const hostsAlphabet = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(...'0123456789abcdefxyz.-_:[]%#/ \t\r\n\n\n\v\f\u0000\u00a0\ufeff'.split('')),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const hostileText = fc.string({ unit: hostsAlphabet, maxLength: 400 });

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
const hostName = fc.oneof(
  fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')),
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV6().map((address) => `${address}%eth0`),
);
const goodEndpoint: fc.Arbitrary<Endpoint> = record({
  host: hostName,
  port: fc.integer({ min: 1, max: 0xffff }),
}).filter(({ host }) => Buffer.byteLength(host) <= MAX_HOST_BYTES && !/^\d+$/.test(host));

const padding = fc.constantFrom('', ' ', '\t', '  \t');
const comment = fc.constantFrom('', ' # a comment', '# x:1', '\t#[::1]:2');

/** A valid hosts file: its addresses, decorated; blank and comment lines between them. */
const goodFile = fc
  .array(
    record({
      endpoint: goodEndpoint,
      before: padding,
      after: padding,
      comment,
      blank: fc.constantFrom('', '\n', '# only a comment\n', '   \n'),
      eol: fc.constantFrom('\n', '\r\n'),
    }),
    { maxLength: 12 },
  )
  .map((lines) => ({
    endpoints: lines.map((line) => line.endpoint),
    text: lines
      .map((l) => `${l.blank}${l.before}${formatEndpoint(l.endpoint)}${l.after}${l.comment}${l.eol}`)
      .join(''),
  }));

type ParsedHosts = ReturnType<typeof parseHostsFile>;

/** Parses; fails unless it returned in time, with hosts and problems that hold their invariants. */
function parseChecked(text: string): ParsedHosts {
  const started = performance.now();
  let parsed: ParsedHosts;
  try {
    parsed = parseHostsFile(text);
  } catch (err) {
    assert.fail(`parseHostsFile threw ${String(err)} for ${JSON.stringify(text.slice(0, 200))}`);
  }
  assert.ok(performance.now() - started <= MAX_DECODE_MS, 'slow parse');
  const lines = text.split('\n').length;
  const seen = new Set<string>();
  for (const { host, port } of parsed.hosts) {
    assert.ok(Number.isInteger(port) && port >= 1 && port <= 0xffff, `port ${port}`);
    assert.ok(host.length > 0 && !/\s/.test(host), `host ${JSON.stringify(host)}`);
    assert.ok(Buffer.byteLength(host) <= MAX_HOST_BYTES, 'a host over MAX_HOST_BYTES');
    const key = formatEndpoint({ host, port });
    assert.ok(!seen.has(key), `${key} listed twice`);
    seen.add(key);
  }
  assert.ok(parsed.hosts.length <= MAX_HOSTS_FILE_LINES);
  for (const problem of parsed.problems) {
    assert.ok(problem.line >= 1 && problem.line <= lines, `a problem on line ${problem.line} of ${lines}`);
    assert.ok(problem.reason.length > 0 && problem.text.length <= 100);
  }
  return parsed;
}

/** The hosts a parse found, printed one per line, parse back to themselves without a problem. */
function assertReprints(parsed: ParsedHosts): void {
  const again = parseChecked(parsed.hosts.map(formatEndpoint).join('\n'));
  assert.deepStrictEqual(again.problems, []);
  assert.deepStrictEqual(again.hosts, parsed.hosts);
}

const textMutation = record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'delete', 'replace'),
  text: fc.string({ unit: hostsAlphabet, minLength: 1, maxLength: 3 }),
});

function hostsFileProperties(): FuzzProperty[] {
  return [
    defineProperty(HOSTS_FILE, 'random text: never throws, only valid hosts', 200, hostileText, (text) =>
      assertReprints(parseChecked(text)),
    ),
    defineProperty(
      HOSTS_FILE,
      'valid files: exactly their addresses, no problems',
      150,
      goodFile,
      ({ endpoints, text }) => {
        const parsed = parseChecked(text);
        assert.deepStrictEqual(parsed.problems, []);
        const unique = new Map(endpoints.map((e) => [formatEndpoint(e), e] as const));
        assert.deepStrictEqual(parsed.hosts, [...unique.values()]);
      },
    ),
    defineProperty(
      HOSTS_FILE,
      'mutated valid files: never throws, only valid hosts',
      200,
      fc.tuple(goodFile, fc.array(textMutation, { minLength: 1, maxLength: 6 })),
      ([{ text }, edits]) => {
        let mutated = text;
        for (const edit of edits) {
          const at = edit.at % (mutated.length + 1);
          const end = edit.kind === 'insert' ? at : at + edit.text.length;
          mutated = mutated.slice(0, at) + (edit.kind === 'delete' ? '' : edit.text) + mutated.slice(end);
        }
        assertReprints(parseChecked(mutated));
      },
    ),
  ];
}

export function fileProperties(): FuzzProperty[] {
  return [...partialStateProperties(), ...hostsFileProperties()];
}
