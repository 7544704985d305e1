import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_FILE_SIZE,
  MAX_LAN_DATAGRAM,
  MAX_LAN_OFFER_FILES,
  MAX_SHARED_FILES,
} from '../../src/constants.js';
import { ProtocolError } from '../../src/wire/codec.js';
import {
  decodeLanOffer,
  encodeLanOffer,
  type LanOfferFile,
  type LanOfferHeader,
} from '../../src/wire/lan-offer.js';
import {
  MAX_SEALED_LAN_OFFER_PLAINTEXT,
  SEALED_LAN_OFFER_OVERHEAD,
  UnauthenticLanOfferError,
  isSealedLanOffer,
  sealLanOffer,
  unsealLanOffer,
} from '../../src/wire/sealed-lan-offer.js';

const isProtocolError = (err: unknown): boolean =>
  err instanceof ProtocolError && err.code === 'ERR_PROTOCOL';

const HEADER: LanOfferHeader = {
  peerId: Buffer.alloc(32, 0x11),
  name: 'lab',
  port: 6881,
  catalogTag: 0xdeadbeef,
};
const FILES: LanOfferFile[] = [
  { fileId: Buffer.alloc(32, 0x22), name: 'a.txt', size: 1_000_000 },
  { fileId: Buffer.alloc(32, 0x33), name: 'b', size: 0 },
];

// Written by hand from the layout in src/wire/lan-offer.ts.
const GOLDEN_HEX =
  '53575348' + // magic 'SWSH'
  '01' + // version
  '11'.repeat(32) + // peer id
  '0003' +
  '6c6162' + // name "lab"
  '1ae1' + // TCP port 6881
  'deadbeef' + // catalogue tag
  '00000002' + // total files
  '0002' + // files in this datagram
  '22'.repeat(32) +
  '0005' +
  '612e747874' +
  '00000000000f4240' + // a.txt, 1 000 000 bytes
  '33'.repeat(32) +
  '0001' +
  '62' +
  '0000000000000000'; // b, 0 bytes
const GOLDEN = Buffer.from(GOLDEN_HEX, 'hex');
/** Offsets of the fields of GOLDEN, for targeted corruption. */
const AT = { version: 4, name: 37, port: 42, tag: 44, total: 48, n: 52, firstFile: 54 };

function patched(offset: number, hex: string, base: Buffer = GOLDEN): Buffer {
  const copy = Buffer.from(base);
  Buffer.from(hex, 'hex').copy(copy, offset);
  return copy;
}

function file(i: number, name = `file-${i}.bin`): LanOfferFile {
  const fileId = Buffer.alloc(32);
  fileId.writeUInt32BE(i, 28);
  return { fileId, name, size: i * 1000 };
}

/** A seeded xorshift: the same "random" bytes on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>>= 0);
  };
}

test('encodes the documented layout, byte for byte', () => {
  const { datagram, included } = encodeLanOffer(HEADER, FILES);
  assert.equal(datagram.toString('hex'), GOLDEN_HEX);
  assert.equal(included, 2);
});

test('decodes the documented layout', () => {
  assert.deepEqual(decodeLanOffer(GOLDEN), { ...HEADER, totalFiles: 2, files: FILES });
});

test('round-trips names at their limits, unicode, extreme sizes and an empty catalogue', () => {
  const header = { peerId: Buffer.alloc(32, 0xab), name: 'é'.repeat(32), port: 65535, catalogTag: 0 };
  const files = [
    { fileId: Buffer.alloc(32, 1), name: 'x'.repeat(255), size: MAX_FILE_SIZE },
    { fileId: Buffer.alloc(32, 2), name: 'résumé \u{1F600}.pdf', size: 0 },
  ];
  const { datagram } = encodeLanOffer(header, files);
  assert.deepEqual(decodeLanOffer(datagram), { ...header, totalFiles: 2, files });
  const empty = encodeLanOffer(HEADER, []);
  assert.equal(empty.included, 0);
  assert.deepEqual(decodeLanOffer(empty.datagram), { ...HEADER, totalFiles: 0, files: [] });
});

test('packs as many files as fit in one datagram, and never more', () => {
  const long = Array.from({ length: 100 }, (_, i) => file(i, `${i}-`.padEnd(255, 'x')));
  const packed = encodeLanOffer(HEADER, long);
  assert.equal(packed.included, 3); // 54 bytes of header, then 297 per file: 3 fit in 1200
  assert.ok(packed.datagram.length <= MAX_LAN_DATAGRAM);
  const decoded = decodeLanOffer(packed.datagram);
  assert.equal(decoded.totalFiles, 100);
  assert.deepEqual(decoded.files, long.slice(0, 3));

  const short = Array.from({ length: 1000 }, (_, i) => file(i, `${i}`));
  const many = encodeLanOffer(HEADER, short);
  assert.ok(many.included > 3 && many.included <= MAX_LAN_OFFER_FILES, `${many.included}`);
  assert.ok(many.datagram.length <= MAX_LAN_DATAGRAM);
});

test('successive datagrams rotate through the whole catalogue, each file once per round', () => {
  const catalogue = Array.from({ length: 100 }, (_, i) => file(i));
  const seen: number[] = [];
  let start = 0;
  while (seen.length < catalogue.length) {
    const { datagram, included } = encodeLanOffer(HEADER, catalogue, start);
    assert.ok(included > 0);
    for (const f of decodeLanOffer(datagram).files) seen.push(f.fileId.readUInt32BE(28));
    start = (start + included) % catalogue.length;
  }
  assert.deepEqual(
    seen.slice(0, 100).sort((a, b) => a - b),
    catalogue.map((_, i) => i),
  );
  // A small catalogue wraps around from `start` without repeating a file.
  const wrapped = decodeLanOffer(encodeLanOffer(HEADER, FILES.concat(file(9)), 1).datagram);
  assert.deepEqual(
    wrapped.files.map((f) => f.name),
    ['b', 'file-9.bin', 'a.txt'],
  );
});

test('the encoder refuses what it cannot encode', () => {
  assert.throws(() => encodeLanOffer({ ...HEADER, peerId: Buffer.alloc(31) }, []), RangeError);
  assert.throws(() => encodeLanOffer({ ...HEADER, port: 0 }, []), RangeError);
  assert.throws(() => encodeLanOffer({ ...HEADER, port: 65536 }, []), RangeError);
  assert.throws(() => encodeLanOffer({ ...HEADER, name: 'n'.repeat(65) }, []), RangeError);
  assert.throws(() => encodeLanOffer({ ...HEADER, name: 'a\nb' }, []), RangeError);
  assert.throws(() => encodeLanOffer(HEADER, [file(1, '../etc')]), RangeError);
  assert.throws(() => encodeLanOffer(HEADER, [{ ...file(1), size: MAX_FILE_SIZE + 1 }]), RangeError);
  assert.throws(() => encodeLanOffer(HEADER, [{ ...file(1), fileId: Buffer.alloc(3) }]), RangeError);
});

test('a datagram cut at any point is a ProtocolError', () => {
  for (let cut = 0; cut < GOLDEN.length; cut++) {
    assert.throws(() => decodeLanOffer(GOLDEN.subarray(0, cut)), isProtocolError, `cut at ${cut}`);
  }
});

test('malformed fields are ProtocolErrors', () => {
  const cases: [string, Buffer][] = [
    ['trailing byte', Buffer.concat([GOLDEN, Buffer.from([0])])],
    ['wrong magic', patched(0, '53575349')],
    ['unknown version', patched(AT.version, '02')],
    ['control character in the peer name', patched(AT.name + 2, '0a')],
    ['invalid UTF-8 in the peer name', patched(AT.name + 2, 'ff')],
    ['peer name over the cap', patched(AT.name, 'ffff')],
    ['TCP port 0', patched(AT.port, '0000')],
    ['more files than the total', patched(AT.total, '00000001')],
    ['total over MAX_SHARED_FILES', patched(AT.total, (MAX_SHARED_FILES + 1).toString(16).padStart(8, '0'))],
    [
      'count over MAX_LAN_OFFER_FILES',
      patched(AT.n, (MAX_LAN_OFFER_FILES + 1).toString(16).padStart(4, '0')),
    ],
    ['count over what follows', patched(AT.n, '0003', patched(AT.total, '00000005'))],
    ['file name with a slash', patched(AT.firstFile + 32 + 2, '2f')],
    ['file name over the cap', patched(AT.firstFile + 32, '0100')],
    ['size over MAX_FILE_SIZE', patched(AT.firstFile + 32 + 2 + 5, '0000100000000001')],
    ['size over 2^53', patched(AT.firstFile + 32 + 2 + 5, 'ffffffffffffffff')],
    ['oversized', Buffer.concat([GOLDEN, Buffer.alloc(MAX_LAN_DATAGRAM + 1 - GOLDEN.length)])],
  ];
  for (const [what, datagram] of cases) assert.throws(() => decodeLanOffer(datagram), isProtocolError, what);
  // The total may exceed the files carried (a rotating catalogue), and a size at the cap is fine.
  assert.equal(decodeLanOffer(patched(AT.total, '00000063')).totalFiles, 99);
  const atCap = patched(AT.firstFile + 32 + 2 + 5, MAX_FILE_SIZE.toString(16).padStart(16, '0'));
  assert.equal(decodeLanOffer(atCap).files[0]!.size, MAX_FILE_SIZE);
});

test('random garbage and random corruption never throw anything but ProtocolError', () => {
  const next = prng(42);
  const check = (datagram: Buffer, what: string): void => {
    try {
      decodeLanOffer(datagram);
    } catch (err) {
      assert.ok(isProtocolError(err), `${what}: ${String(err)} for ${datagram.toString('hex')}`);
    }
  };
  for (let i = 0; i < 5_000; i++) {
    const datagram = Buffer.alloc(next() % (MAX_LAN_DATAGRAM + 100));
    for (let j = 0; j < datagram.length; j++) datagram[j] = next() & 0xff;
    // Half of them with the right magic and version, so the decoder gets past the first check.
    if (i % 2 === 0 && datagram.length >= 5) Buffer.from('5357534801', 'hex').copy(datagram);
    check(datagram, `random ${i}`);
  }
  for (let i = 0; i < 5_000; i++) {
    const datagram = Buffer.from(GOLDEN);
    for (let flips = 1 + (next() % 3); flips > 0; flips--) datagram[next() % datagram.length] = next() & 0xff;
    check(datagram, `corrupted ${i}`);
  }
});

// ---- Sealed offers (private swarms) ---------------------------------------------------------

const KEY = Buffer.alloc(32, 0x5a);
const OTHER_KEY = Buffer.alloc(32, 0xa5);
const NONCE = Buffer.alloc(12, 0x0c);
const SENT_AT = 1_700_000_000_000;

test('a sealed offer opens with its key to the very offer and timestamp, and hides every field', () => {
  const sealed = sealLanOffer(KEY, GOLDEN, SENT_AT, NONCE);
  assert.equal(sealed.length, GOLDEN.length + SEALED_LAN_OFFER_OVERHEAD);
  assert.equal(sealed.subarray(0, 5).toString('hex'), '5357535301'); // 'SWSS', version 1
  assert.ok(sealed.subarray(5, 17).equals(NONCE));
  assert.ok(isSealedLanOffer(sealed));
  assert.ok(!isSealedLanOffer(GOLDEN));
  assert.deepEqual(unsealLanOffer(KEY, sealed), { nonce: NONCE, sentAt: SENT_AT, offer: GOLDEN });
  assert.deepEqual(decodeLanOffer(unsealLanOffer(KEY, sealed).offer), {
    ...HEADER,
    totalFiles: 2,
    files: FILES,
  });
  for (const secret of [
    Buffer.from('a.txt'),
    Buffer.from('lab'),
    HEADER.peerId,
    FILES[0]!.fileId,
    FILES[1]!.fileId,
  ]) {
    assert.equal(sealed.indexOf(secret), -1, `${secret.toString('hex')} in the clear`);
  }
});

test('every sealed datagram has a fresh nonce', () => {
  const a = sealLanOffer(KEY, GOLDEN, SENT_AT);
  const b = sealLanOffer(KEY, GOLDEN, SENT_AT);
  assert.ok(!a.subarray(5, 17).equals(b.subarray(5, 17)));
  assert.ok(!a.equals(b));
  assert.ok(unsealLanOffer(KEY, a).offer.equals(unsealLanOffer(KEY, b).offer));
});

test('another key, a flipped bit anywhere, a cut or an extra byte: refused, never opened', () => {
  const sealed = sealLanOffer(KEY, GOLDEN, SENT_AT, NONCE);
  assert.throws(() => unsealLanOffer(OTHER_KEY, sealed), UnauthenticLanOfferError);
  for (let at = 0; at < sealed.length; at++) {
    for (const bit of [0x01, 0x80]) {
      const flipped = Buffer.from(sealed);
      flipped[at]! ^= bit;
      // The header's bytes are refused as not sealed or of another version; the rest fail authentication.
      assert.throws(
        () => unsealLanOffer(KEY, flipped),
        at < 5 ? isProtocolError : UnauthenticLanOfferError,
        `bit ${bit} of byte ${at}`,
      );
    }
  }
  for (let cut = 0; cut < sealed.length; cut++) {
    assert.throws(() => unsealLanOffer(KEY, sealed.subarray(0, cut)), isProtocolError, `cut at ${cut}`);
  }
  assert.throws(
    () => unsealLanOffer(KEY, Buffer.concat([sealed, Buffer.from([0])])),
    UnauthenticLanOfferError,
  );
  const oversized = Buffer.concat([sealed, Buffer.alloc(MAX_LAN_DATAGRAM + 1 - sealed.length)]);
  assert.throws(() => unsealLanOffer(KEY, oversized), isProtocolError);
});

test('the sealed budget: a full catalogue still fits one datagram once sealed', () => {
  assert.equal(MAX_SEALED_LAN_OFFER_PLAINTEXT, MAX_LAN_DATAGRAM - SEALED_LAN_OFFER_OVERHEAD);
  const long = Array.from({ length: 100 }, (_, i) => file(i, `${i}-`.padEnd(255, 'x')));
  const open = encodeLanOffer(HEADER, long);
  const packed = encodeLanOffer(HEADER, long, 0, MAX_SEALED_LAN_OFFER_PLAINTEXT);
  assert.ok(packed.datagram.length <= MAX_SEALED_LAN_OFFER_PLAINTEXT);
  assert.ok(packed.included >= 1 && packed.included <= open.included);
  const sealed = sealLanOffer(KEY, packed.datagram, SENT_AT);
  assert.ok(sealed.length <= MAX_LAN_DATAGRAM, `${sealed.length} bytes`);
  // Short names, many files: the budget, not the file cap, is what stops the packing.
  const short = Array.from({ length: 1000 }, (_, i) => file(i, `${i}`.padEnd(20, 'y')));
  const many = encodeLanOffer(HEADER, short, 0, MAX_SEALED_LAN_OFFER_PLAINTEXT);
  assert.ok(many.datagram.length > MAX_SEALED_LAN_OFFER_PLAINTEXT - (32 + 2 + 20 + 8));
  assert.ok(sealLanOffer(KEY, many.datagram, SENT_AT).length <= MAX_LAN_DATAGRAM);
  // Rotation under the sealed budget still covers the whole catalogue.
  const seen = new Set<number>();
  for (let start = 0, rounds = 0; seen.size < short.length && rounds < 1000; rounds++) {
    const next = encodeLanOffer(HEADER, short, start, MAX_SEALED_LAN_OFFER_PLAINTEXT);
    for (const f of decodeLanOffer(next.datagram).files) seen.add(f.fileId.readUInt32BE(28));
    start = (start + next.included) % short.length;
  }
  assert.equal(seen.size, short.length);
});

test('sealing refuses what it cannot seal', () => {
  assert.throws(() => sealLanOffer(Buffer.alloc(16), GOLDEN, SENT_AT), RangeError);
  assert.throws(() => sealLanOffer(KEY, GOLDEN, SENT_AT, Buffer.alloc(8)), RangeError);
  assert.throws(
    () => sealLanOffer(KEY, Buffer.alloc(MAX_SEALED_LAN_OFFER_PLAINTEXT + 1), SENT_AT),
    RangeError,
  );
  assert.throws(() => sealLanOffer(KEY, GOLDEN, -1), RangeError);
  assert.throws(() => encodeLanOffer(HEADER, FILES, 0, MAX_LAN_DATAGRAM + 1), RangeError);
});
