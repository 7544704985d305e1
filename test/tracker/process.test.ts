/** A real peer process killed with SIGKILL: no goodbye, no cleanup; the tracker must notice. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { connectClient, startTracker } from './fixtures.js';

const PEER_SCRIPT = fileURLToPath(new URL('../helpers/tracker-peer-process.js', import.meta.url));

test('a peer killed with SIGKILL disappears from the list', { timeout: 20_000 }, async (t) => {
  const { port } = await startTracker(t);
  const child = spawn(process.execPath, [PEER_SCRIPT, String(port), 'doomed', 'doomed-file.txt'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );

  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the peer exited early: ${stderr}`);
      return stdout.includes('ready\n');
    },
    'the peer process to be ready',
    15_000,
  );

  const observer = await connectClient(t, port);
  const before = await observer.list('doomed');
  assert.deepEqual(
    before.files.map((f) => [f.name, f.seeders]),
    [['doomed-file.txt', 1]],
  );
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  await waitFor(
    async () => (await observer.list('doomed')).total === 0,
    'the killed peer to disappear',
    10_000,
  );
});
