/**
 * PeerNode, in process with a real tracker over loopback: how a download is named, started twice,
 * and addressed by id; and which peer names it accepts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { PeerNode } from '../../src/peer/peer-node.js';
import { fileIdHex } from '../../src/storage/manifest.js';
import { TrackerServer } from '../../src/tracker/server.js';
import { tempDir, waitFor, writeRandomFile } from '../helpers/wait.js';

async function swarm(t: TestContext, seederOptions: { uploadLimit?: number } = {}) {
  const tracker = new TrackerServer({});
  t.after(() => tracker.close());
  const address = await tracker.listen(0, '127.0.0.1');
  const seedDir = await tempDir(t);
  await writeRandomFile(path.join(seedDir, 'original.bin'), 2 * 1024 * 1024 + 9, 4);
  const start = async (dir: string, name: string, extra: object = {}) => {
    const node = await PeerNode.start({ dir, name, trackers: [address], host: '127.0.0.1', ...extra });
    t.after(() => node.close());
    await node.trackerReady();
    return node;
  };
  const seeder = await start(seedDir, 'seeder', seederOptions);
  const fetcher = await start(await tempDir(t), 'fetcher');
  const fileId = seeder.sharedFiles()[0]!.manifest.id;
  return { seeder, fetcher, fileId, seedDir };
}

test('a download is saved under the name it was chosen by, not the one a source gives', async (t) => {
  const { fetcher, fileId, seedDir } = await swarm(t);
  const result = await fetcher.download(fileId, 'chosen.bin');
  assert.equal(path.basename(result.path), 'chosen.bin');
  assert.deepEqual(await fs.readFile(result.path), await fs.readFile(path.join(seedDir, 'original.bin')));
  // A name that is not a safe file name is made one: the file stays inside the folder.
  const again = await fetcher.download(fileId, '../escape.bin');
  assert.equal(path.dirname(again.path), fetcher.folder.dir);
  assert.equal(path.basename(again.path), '.._escape.bin');
});

test('a full id needs no catalog lookup, and a second download of one file is refused without harm', async (t) => {
  // The seeder uploads slowly, so the first download is still running when the second is asked.
  const { fetcher, fileId } = await swarm(t, { uploadLimit: 512 * 1024 });
  const target = await fetcher.resolveTarget(fileIdHex(fileId));
  assert.ok(target.id.equals(fileId));
  const first = fetcher.download(target.id);
  await waitFor(() => fetcher.activeDownloads().length === 1, 'the first download to start');
  await assert.rejects(fetcher.download(fileId), { code: 'ERR_IN_PROGRESS' });
  assert.equal(fetcher.activeDownloads().length, 1, 'the first download is still listed');
  const result = await first;
  assert.equal(result.name, 'original.bin');
});

test('peer names must fit the wire: at most 64 bytes, no control characters', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(PeerNode.start({ dir, name: 'x'.repeat(65) }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(PeerNode.start({ dir, name: 'bell\u0007' }), { code: 'ERR_INVALID_ARGUMENT' });
  const node = await PeerNode.start({ dir, host: '127.0.0.1' });
  t.after(() => node.close());
  assert.ok(Buffer.byteLength(node.name) <= 64);
});
