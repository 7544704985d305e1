/**
 * LAN discovery across real separate hosts: three `swarmshare peer` processes, each in its own
 * network namespace on one bridged test LAN, with no tracker and no known hosts. They find each
 * other by multicast offers alone, and two of them download a file that the third shares.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, CliProcess } from '../helpers/cli.js';
import { createLan } from '../helpers/netns.js';
import { tempDir, writeRandomFile } from '../helpers/wait.js';

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

test('three peers in three namespaces find each other by LAN offers alone and download a file', async (t) => {
  const lan = await createLan(t, 3);
  if (!lan) return;
  const dirs = await Promise.all(lan.hosts.map(() => tempDir(t)));
  await writeRandomFile(path.join(dirs[0]!, 'lanfile.bin'), 3 * 1024 * 1024 + 1, 21);
  const names = ['lan-a', 'lan-b', 'lan-c'];
  const peers = lan.hosts.map((host, i) => {
    const child = lan.exec(
      host,
      [process.execPath, BIN, 'peer', '--dir', dirs[i]!, '--name', names[i]!, '--no-tracker', '--lan'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    ) as ChildProcessWithoutNullStreams;
    return new CliProcess(child);
  });

  // Each peer connects to the other two, at the addresses their offers came from.
  for (const [i, peer] of peers.entries()) {
    for (const [j, other] of names.entries()) {
      if (i === j) continue;
      await peer.waitForOutput(
        new RegExp(`connected to peer ${other} at 10\\.77\\.1\\.${j + 1}:\\d+`),
        30_000,
      );
    }
  }

  peers[1]!.send('get lanfile.bin');
  peers[2]!.send('get lanfile.bin');
  const expected = await sha256(path.join(dirs[0]!, 'lanfile.bin'));
  for (const i of [1, 2]) {
    await peers[i]!.waitForOutput(/got lanfile\.bin/, 30_000);
    assert.equal(await sha256(path.join(dirs[i]!, 'lanfile.bin')), expected);
  }
  for (const peer of peers) peer.send('exit');
  const exits = await Promise.all(peers.map((p) => p.exited));
  assert.deepEqual(
    exits.map((e) => e.code),
    [0, 0, 0],
  );
});
