/** The state file of a download in progress: its codec, and the batching of its saves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MIN_CHUNK_SIZE } from '../../src/constants.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { chunkCount, computeFileId, type Manifest } from '../../src/storage/manifest.js';
import {
  BatchedSaver,
  PARTIAL_STATE_MAGIC,
  decodePartialState,
  encodePartialState,
} from '../../src/storage/partial-state.js';
import { deferred } from '../helpers/peer-fixtures.js';

/** A consistent manifest of `chunks` chunks (the last one short), with made-up hashes. */
function manifestOf(chunks: number, seed = 1): Manifest {
  const size = (chunks - 1) * MIN_CHUNK_SIZE + 1000;
  const hashes = Buffer.alloc(chunks * 32, seed);
  return {
    id: computeFileId(size, MIN_CHUNK_SIZE, hashes),
    name: 'f.bin',
    size,
    chunkSize: MIN_CHUNK_SIZE,
    hashes,
  };
}

function someChunks(total: number): Bitfield {
  const have = new Bitfield(total);
  for (let i = 0; i < total; i += 3) have.set(i);
  return have;
}

test('a state round-trips, for chunk counts around byte boundaries', () => {
  for (const total of [1, 7, 8, 9, 13, 64, 4096]) {
    const manifest = manifestOf(total);
    const have = someChunks(total);
    const decoded = decodePartialState(encodePartialState(manifest, have), manifest);
    assert.ok(decoded.ok, `${total} chunks`);
    assert.deepEqual([...decoded.have.indices()], [...have.indices()]);
  }
  const manifest = manifestOf(20);
  const none = decodePartialState(encodePartialState(manifest, new Bitfield(20)), manifest);
  assert.ok(none.ok && none.have.setCount === 0);
  const all = decodePartialState(encodePartialState(manifest, Bitfield.full(20)), manifest);
  assert.ok(all.ok && all.have.complete);
});

test('every truncation and every flipped bit is refused, never thrown', () => {
  const manifest = manifestOf(13);
  const data = encodePartialState(manifest, someChunks(13));
  for (let length = 0; length < data.length; length++) {
    const decoded = decodePartialState(data.subarray(0, length), manifest);
    assert.equal(decoded.ok, false, `truncated to ${length}`);
  }
  for (let at = 0; at < data.length; at++) {
    for (const bit of [0x01, 0x80]) {
      const copy = Buffer.from(data);
      copy[at]! ^= bit;
      assert.equal(decodePartialState(copy, manifest).ok, false, `byte ${at} bit ${bit}`);
    }
  }
  assert.equal(decodePartialState(Buffer.concat([data, Buffer.from([0])]), manifest).ok, false);
  assert.equal(decodePartialState(Buffer.alloc(5000, 0x41), manifest).ok, false);
});

test("another file's state, or one that does not fit the manifest, is refused with a reason", () => {
  const mine = manifestOf(13, 1);
  const other = manifestOf(13, 2);
  const decoded = decodePartialState(encodePartialState(other, Bitfield.full(13)), mine);
  assert.deepEqual(decoded, { ok: false, problem: 'the state of another file' });
  const bigger = manifestOf(14, 1);
  assert.equal(decodePartialState(encodePartialState(bigger, Bitfield.full(14)), mine).ok, false);
  assert.throws(() => encodePartialState(mine, new Bitfield(12)), RangeError);
});

test('a state with a well-formed checksum but spare bits set or another version is refused', async () => {
  const { createHash } = await import('node:crypto');
  const manifest = manifestOf(13);
  const resealed = (mutate: (body: Buffer) => void): Buffer => {
    const data = encodePartialState(manifest, someChunks(13));
    const body = Buffer.from(data.subarray(0, data.length - 32));
    mutate(body);
    return Buffer.concat([body, createHash('sha256').update(body).digest()]);
  };
  const spare = decodePartialState(
    resealed((b) => (b[b.length - 1]! |= 0x01)),
    manifest,
  );
  assert.deepEqual(spare, { ok: false, problem: 'spare bits set' });
  const version = decodePartialState(
    resealed((b) => b.writeUInt16BE(2, PARTIAL_STATE_MAGIC.length)),
    manifest,
  );
  assert.equal(version.ok, false);
  assert.match(version.ok ? '' : version.problem, /version 2/);
  assert.equal(chunkCount(manifest), 13);
});

test('saves are batched: a burst of changes is one save, flush saves at once, one save at a time', async () => {
  let saves = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const errors: unknown[] = [];
  const saver = new BatchedSaver(
    100,
    async () => {
      saves++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await delay(30);
      concurrent--;
    },
    (err) => errors.push(err),
  );
  for (let i = 0; i < 1000; i++) saver.changed();
  assert.equal(saves, 0, 'nothing saved before the interval');
  await delay(400);
  assert.equal(saves, 1, 'one save for the burst');
  await saver.flush();
  assert.equal(saves, 1, 'flush with nothing changed saves nothing');
  saver.changed();
  await saver.flush();
  assert.equal(saves, 2, 'flush saves at once');
  // Changes during a save: saved again afterwards, never two saves at once.
  saver.changed();
  const flushing = saver.flush();
  saver.changed();
  await flushing;
  await saver.flush();
  assert.equal(saves, 4);
  assert.equal(maxConcurrent, 1);
  await saver.stop();
  saver.changed();
  await delay(250);
  assert.equal(saves, 4, 'no timer once stopped');
  await saver.flush();
  assert.equal(saves, 5, 'flush still saves once stopped');
  assert.deepEqual(errors, []);
});

test('a save that fails is reported and tried again at the next flush', async () => {
  const gate = deferred();
  let attempts = 0;
  const errors: unknown[] = [];
  const saver = new BatchedSaver(
    20,
    async () => {
      attempts++;
      if (attempts === 1) {
        gate.resolve();
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
    },
    (err) => errors.push(err),
  );
  saver.changed();
  // (The saver's timer never keeps a process up: a timer of our own does, meanwhile.)
  const keepAlive = setInterval(() => undefined, 1000);
  await gate.promise;
  clearInterval(keepAlive);
  await delay(10);
  assert.equal(errors.length, 1);
  await saver.flush();
  assert.equal(attempts, 2, 'the unsaved change was saved by the flush');
  await saver.stop();
});
