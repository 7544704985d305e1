/**
 * LAN discovery across real separate hosts: three `swarmshare peer` processes, each in its own
 * network namespace on one bridged test LAN, with no tracker and no known hosts. They find each
 * other by multicast offers alone, and two of them download a file that the third shares. Then a
 * private swarm: two members find each other by sealed offers, and an open peer on the same LAN
 * neither finds them nor is found.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { LAN_MULTICAST_GROUP, LAN_PORT } from '../../src/constants.js';
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

/** A program printing every LAN offer datagram its host hears, as `SOURCE HEX` lines. */
function eavesdropperScript(address: string): string {
  return `
    import dgram from 'node:dgram';
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (d, from) => process.stdout.write(from.address + ' ' + d.toString('hex') + '\\n'));
    socket.bind(${LAN_PORT}, '${LAN_MULTICAST_GROUP}', () => {
      socket.addMembership('${LAN_MULTICAST_GROUP}', '${address}');
      process.stdout.write('listening\\n');
    });
  `;
}

test('members of a private swarm find each other by sealed LAN offers; an open peer on the LAN does not', async (t) => {
  const lan = await createLan(t, 3);
  if (!lan) return;
  const dirs = await Promise.all(lan.hosts.map(() => tempDir(t)));
  const secret = path.join(await tempDir(t), 'swarm.secret');
  await fs.writeFile(secret, 'a private swarm secret for the LAN test\n');
  await writeRandomFile(path.join(dirs[0]!, 'private-lanfile.bin'), 1024 * 1024 + 3, 22);
  const names = ['member-a', 'member-b', 'open-c'];
  const start = (i: number): CliProcess => {
    const args = ['peer', '--dir', dirs[i]!, '--name', names[i]!, '--no-tracker', '--lan'];
    if (i < 2) args.push('--secret', secret);
    const child = lan.exec(lan.hosts[i]!, [process.execPath, BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }) as ChildProcessWithoutNullStreams;
    return new CliProcess(child);
  };
  // The open peer and an eavesdropper on its host first, listening before the members announce.
  const open = start(2);
  await open.waitForOutput(/serving on/, 30_000);
  const eavesdropper = new CliProcess(
    lan.exec(
      lan.hosts[2]!,
      [process.execPath, '--input-type=module', '-e', eavesdropperScript(lan.hosts[2]!.address)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    ) as ChildProcessWithoutNullStreams,
  );
  await eavesdropper.waitForOutput(/listening/, 30_000);
  const [a, b] = [start(0), start(1)];
  const peers = [a, b, open];

  await a.waitForOutput(/connected to peer member-b at 10\.77\.1\.2:\d+/, 30_000);
  await b.waitForOutput(/connected to peer member-a at 10\.77\.1\.1:\d+/, 30_000);
  b.send('get private-lanfile.bin');
  await b.waitForOutput(/got private-lanfile\.bin/, 30_000);
  assert.equal(
    await sha256(path.join(dirs[1]!, 'private-lanfile.bin')),
    await sha256(path.join(dirs[0]!, 'private-lanfile.bin')),
  );
  // Each has heard the others' offers by now: none reached across the secret.
  const heard = eavesdropper.stdout.split('\n').filter((line) => /^10\.77\.1\.[12] /.test(line));
  assert.ok(heard.length >= 2, `the eavesdropper heard the members: ${eavesdropper.stdout}`);
  for (const line of heard) {
    const datagram = Buffer.from(line.split(' ')[1]!, 'hex');
    assert.equal(datagram.subarray(0, 4).toString('latin1'), 'SWSS', 'a member sent an open offer');
    for (const clear of ['private-lanfile.bin', 'member-a', 'member-b']) {
      assert.equal(datagram.indexOf(clear), -1, `${clear} in the clear`);
    }
  }
  for (const member of [a, b]) assert.doesNotMatch(member.stdout, /peer open-c/);
  assert.doesNotMatch(open.stdout, /connected to peer|member-|private-lanfile/);
  for (const peer of peers) peer.send('exit');
  const exits = await Promise.all(peers.map((p) => p.exited));
  assert.deepEqual(
    exits.map((e) => e.code),
    [0, 0, 0],
  );
});
