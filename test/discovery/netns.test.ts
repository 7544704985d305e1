/**
 * LAN offers across real separate network stacks: three hosts (network namespaces) on one
 * bridged LAN, one LanDiscovery process each, on its default interfaces. Also checks the rig
 * itself: hosts reach each other over TCP, and teardown leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LanOffer } from '../../src/discovery/lan.js';
import type { LanNodeConfig, LanNodeEvent } from '../helpers/lan-node.js';
import {
  createLan,
  LAN_SUBNET_PREFIX,
  listNamespaces,
  type LanHost,
  type TestLan,
} from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const LAN_NODE = fileURLToPath(new URL('../helpers/lan-node.js', import.meta.url));
const T = { timeout: 30_000 };
const execFileAsync = promisify(execFile);

/** A child's events as they come. */
function collectEvents(child: ChildProcess): LanNodeEvent[] {
  const events: LanNodeEvent[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) =>
    events.push(JSON.parse(line) as LanNodeEvent),
  );
  return events;
}

function startLanNode(lan: TestLan, host: LanHost, config: LanNodeConfig): LanNodeEvent[] {
  const child = lan.exec(host, [process.execPath, LAN_NODE, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return collectEvents(child);
}

test("three hosts on a LAN see each other's offers, each from its own source address", T, async (t) => {
  const lan = await createLan(t, 3);
  if (!lan) return;
  const id = (i: number): string => Buffer.alloc(32, i + 1).toString('hex');
  const fileId = (i: number): string => Buffer.alloc(32, 0xa0 + i).toString('hex');
  const events = lan.hosts.map((host, i) =>
    startLanNode(lan, host, {
      peerId: id(i),
      name: `host-${i}`,
      tcpPort: 7000 + i,
      files: [{ fileId: fileId(i), name: `from-host-${i}.bin`, size: 1000 * (i + 1) }],
      intervalMs: 200,
    }),
  );
  const offersOf = (i: number): LanOffer[] =>
    events[i]!.flatMap((e) => (e.event === 'offer' ? [e.offer] : []));
  for (const [i, host] of lan.hosts.entries()) {
    await waitFor(
      () => new Set(offersOf(i).map((o) => o.peerId)).size === 2,
      `${host.name} (${host.address}) to see the two other hosts`,
    );
  }
  for (const [i, host] of lan.hosts.entries()) {
    for (const offer of offersOf(i)) {
      assert.notEqual(offer.peerId, id(i), `${host.name} ignores its own offers`);
      const from = lan.hosts.findIndex((_, j) => id(j) === offer.peerId);
      assert.equal(offer.host, lan.hosts[from]!.address, 'the host is the source address');
      assert.equal(offer.port, 7000 + from);
      assert.equal(offer.name, `host-${from}`);
      assert.deepEqual(offer.files, [
        { fileId: fileId(from), name: `from-host-${from}.bin`, size: 1000 * (from + 1) },
      ]);
    }
  }
});

test('hosts of a test LAN reach each other over TCP, at their addresses', T, async (t) => {
  const lan = await createLan(t, 2);
  if (!lan) return;
  const [server, client] = lan.hosts as [LanHost, LanHost];
  const listen = lan.exec(
    server,
    [
      process.execPath,
      '-e',
      `require('net').createServer((s) => s.end('hello from ' + s.localAddress + ' to ' + s.remoteAddress))
         .listen(9000, '${server.address}', () => console.log('listening'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(createInterface({ input: listen.stdout! }), 'line');
  const connect = lan.exec(
    client,
    [
      process.execPath,
      '-e',
      `require('net').connect(9000, '${server.address}').on('data', (d) => process.stdout.write(d))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let reply = '';
  connect.stdout!.on('data', (d: Buffer) => (reply += d.toString()));
  await once(connect, 'exit');
  assert.equal(reply, `hello from ${server.address} to ${client.address}`);
  assert.match(server.address, new RegExp(`^${LAN_SUBNET_PREFIX.replace(/\./g, '\\.')}\\.\\d+$`));
});

test('teardown deletes every namespace and process of a test LAN', T, async (t) => {
  let names: string[] = [];
  let sleeper: ChildProcess | null = null;
  let available = true;
  await t.test('a LAN with a process in it', async (st) => {
    const lan = await createLan(st, 2);
    if (!lan) {
      available = false;
      return;
    }
    names = lan.hosts.map((h) => h.name);
    sleeper = lan.exec(lan.hosts[0]!, ['sleep', '60'], { stdio: 'ignore' });
  });
  if (!available) return t.skip('network namespaces unavailable');
  if (!sleeper) return; // the subtest failed, and says why
  const all = await listNamespaces();
  for (const name of names) assert.ok(!all.includes(name), `${name} is gone`);
  const { exitCode, signalCode } = sleeper as ChildProcess;
  assert.ok(exitCode !== null || signalCode !== null, 'the process was killed');
});

test('namespaces left by a run that was killed are deleted by the next createLan', T, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('network namespaces need root');
  // The pid of a process that has exited: the name of a namespace its run would have left.
  const gone = spawn(process.execPath, ['-e', '']);
  await once(gone, 'exit');
  const stale = `sws-${gone.pid}-abcdef-h0`;
  await execFileAsync('ip', ['netns', 'add', stale]);
  t.after(() => execFileAsync('ip', ['netns', 'del', stale]).catch(() => undefined));
  assert.ok((await listNamespaces()).includes(stale));
  const lan = await createLan(t, 1);
  if (!lan) return;
  assert.ok(!(await listNamespaces()).includes(stale));
});
