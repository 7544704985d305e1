import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { IDENTITY_FILE_NAME, loadOrCreateIdentity } from '../../src/storage/identity.js';
import { tempDir } from '../helpers/wait.js';

test('an identity is created once, kept private, and loaded unchanged later', async (t) => {
  const stateDir = path.join(await tempDir(t), '.swarmshare');
  const created = await loadOrCreateIdentity(stateDir);
  assert.equal(created.peerId.length, 32);
  const file = path.join(stateDir, IDENTITY_FILE_NAME);
  const stat = await fs.stat(file);
  assert.equal(stat.mode & 0o777, 0o600);
  const loaded = await loadOrCreateIdentity(stateDir);
  assert.deepEqual(loaded.peerId, created.peerId);
  // No temp files are left behind.
  assert.deepEqual(await fs.readdir(stateDir), [IDENTITY_FILE_NAME]);
});

test('the peer id is the SHA-256 of the raw Ed25519 public key in the file', async (t) => {
  const stateDir = await tempDir(t);
  const { peerId } = await loadOrCreateIdentity(stateDir);
  const pem = await fs.readFile(path.join(stateDir, IDENTITY_FILE_NAME), 'utf8');
  const privateKey = createPrivateKey(pem);
  assert.equal(privateKey.asymmetricKeyType, 'ed25519');
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  assert.deepEqual(peerId, createHash('sha256').update(raw).digest());
});

test('two peers get different identities', async (t) => {
  const a = await loadOrCreateIdentity(await tempDir(t));
  const b = await loadOrCreateIdentity(await tempDir(t));
  assert.notDeepEqual(a.peerId, b.peerId);
});

test('concurrent first starts agree on one identity', async (t) => {
  const stateDir = await tempDir(t);
  const ids = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(stateDir)));
  for (const id of ids) assert.deepEqual(id.peerId, ids[0]!.peerId);
  assert.deepEqual(await fs.readdir(stateDir), [IDENTITY_FILE_NAME]);
});

test('a corrupt identity file is an error, not silently replaced', async (t) => {
  const stateDir = await tempDir(t);
  const file = path.join(stateDir, IDENTITY_FILE_NAME);
  await fs.writeFile(file, 'not a key at all\n', { mode: 0o600 });
  await assert.rejects(loadOrCreateIdentity(stateDir), { code: 'ERR_IO' });
  assert.equal(await fs.readFile(file, 'utf8'), 'not a key at all\n');
});

test('a key of the wrong type is refused', async (t) => {
  const stateDir = await tempDir(t);
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await fs.writeFile(
    path.join(stateDir, IDENTITY_FILE_NAME),
    privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  await assert.rejects(loadOrCreateIdentity(stateDir), { code: 'ERR_IO' });
});
