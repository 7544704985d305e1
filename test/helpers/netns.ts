/**
 * Network namespaces as test hosts: separate network stacks on this machine, for tests that need
 * real separate hosts (LAN multicast, source addresses, peers that only reach each other over a
 * LAN). Linux only, as root, with iproute2 (`ip`). Everything lives inside namespaces created
 * here: no interface, address or route of the machine itself is touched, and the test addresses
 * (10.77.1.0/24) exist only inside them.
 *
 * A test with three hosts on one LAN:
 *
 *   test('peers find each other', async (t) => {
 *     const lan = await createLan(t, 3);
 *     if (!lan) return; // no namespaces here (not root, no `ip`): the test is marked skipped
 *     const [a, b] = lan.hosts;                   // { name: namespace, address: '10.77.1.1' }...
 *     const child = lan.exec(a, [process.execPath, script, '--host', a.address], {
 *       stdio: ['pipe', 'pipe', 'inherit'],
 *     });
 *     // ... b reaches a at a.address; a multicast sent by a reaches b and c.
 *   });
 *
 * The layout: one namespace per host with `lo` up and one interface `eth0` holding its address
 * (10.77.1.1, .2, ... in the order of `hosts`) and the route 224.0.0.0/4 (multicast goes out on
 * the LAN by default); a further namespace holds the bridge `br0` joining every host's `eth0`
 * through a veth pair (IGMP snooping off, so every multicast reaches every host, and no STP
 * delay). Teardown is registered on `t` before anything is created: it kills every process
 * still running in the namespaces (exec's children and anything they started), then deletes
 * the namespaces, which deletes their interfaces. Namespace names carry our pid and a random
 * suffix, so parallel runs never collide; namespaces left by a run that was killed outright
 * (its pid gone) are deleted by the next createLan.
 *
 * Set SWARMSHARE_REQUIRE_NETNS=1 (on a CI runner that is root) to fail instead of skipping when
 * namespaces are unavailable.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const execFileAsync = promisify(execFile);

/** Set in the environment of a test file re-run inside a namespace by runTestFileInNamespace. */
export const TEST_NETNS_ENV = 'SWARMSHARE_TEST_NETNS';
/** The test LAN's /24; host i (from 0) has address .(i + 1). */
export const LAN_SUBNET_PREFIX = '10.77.1';
const NAME_PREFIX = 'sws-';

/** One test host: a network namespace with one address on the test LAN. */
export interface LanHost {
  /** The namespace's name (for `ip netns exec NAME`, or exec below). */
  name: string;
  /** Its IPv4 address on the LAN (on its `eth0`), e.g. 10.77.1.1. */
  address: string;
}

export interface TestLan {
  /** The hosts, in order of address. */
  hosts: LanHost[];
  /**
   * Runs `argv` inside `host`'s namespace (`ip netns exec NAME ...argv`, which execs in place:
   * the child's pid is the command's). Options are spawn's. The process is killed at teardown.
   */
  exec(host: LanHost, argv: string[], options?: SpawnOptions): ChildProcess;
}

/** A single namespace whose only interface is `lo`, multicast-capable (see createLoopbackHost). */
export interface LoopbackHost {
  name: string;
  exec(argv: string[], options?: SpawnOptions): ChildProcess;
}

/**
 * Creates `count` hosts on one bridged LAN (see the file header). Resolves to null, with the test
 * marked skipped and the reason given, when network namespaces are unavailable here; the caller
 * then just returns. Fails (throws) if namespaces can be created but the LAN cannot be built.
 */
export async function createLan(t: TestContext, count: number): Promise<TestLan | null> {
  if (!Number.isInteger(count) || count < 1 || count > 250) throw new RangeError(`bad host count ${count}`);
  const set = await NamespaceSet.create(t);
  if (!set) return null;
  const bridge = await set.add('br');
  if (!bridge) return null;
  const hosts: LanHost[] = [];
  for (let i = 0; i < count; i++) {
    hosts.push({ name: (await set.add(`h${i}`))!, address: `${LAN_SUBNET_PREFIX}.${i + 1}` });
  }
  await ipIn(bridge, 'link add br0 type bridge forward_delay 0 mcast_snooping 0');
  await ipIn(bridge, 'link set br0 up');
  for (const [i, host] of hosts.entries()) {
    await ipIn(bridge, `link add p${i} type veth peer name eth0 netns ${host.name}`);
    await ipIn(bridge, `link set p${i} master br0 up`);
    await ipIn(host.name, 'link set lo up');
    await ipIn(host.name, `addr add ${host.address}/24 dev eth0`);
    await ipIn(host.name, 'link set eth0 up');
    await ipIn(host.name, 'route add 224.0.0.0/4 dev eth0');
  }
  await waitFor(async () => {
    for (const [i, host] of hosts.entries()) {
      if (!(await ipIn(host.name, '-o link show eth0')).includes('state UP')) return false;
      const port = await ipIn(bridge, `-o -d link show p${i}`);
      if (!port.includes('bridge_slave state forwarding')) return false;
    }
    return true;
  }, 'the test LAN links to come up');
  return { hosts, exec: (host, argv, options) => set.exec(host.name, argv, options) };
}

/**
 * Creates one namespace with only `lo`, up, with the MULTICAST flag and the route 224.0.0.0/4:
 * several processes in it reach each other by multicast on 127.0.0.1, and nothing they send can
 * leave it. Null (test marked skipped) when namespaces are unavailable.
 */
export async function createLoopbackHost(t: TestContext): Promise<LoopbackHost | null> {
  const set = await NamespaceSet.create(t);
  const name = set && (await set.add('lo'));
  if (!set || !name) return null;
  await ipIn(name, 'link set lo up');
  await ipIn(name, 'link set lo multicast on');
  await ipIn(name, 'route add 224.0.0.0/4 dev lo');
  return { name, exec: (argv, options) => set.exec(name, argv, options) };
}

/** The names of the network namespaces that exist now (empty if there is no `ip`). */
export async function listNamespaces(): Promise<string[]> {
  if (!(await findIp())) return [];
  const list = await ip('netns', 'list');
  return list
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter(Boolean);
}

/** True in a test file re-run inside a namespace by runTestFileInNamespace. */
export function insideTestNamespace(): boolean {
  return process.env[TEST_NETNS_ENV] !== undefined;
}

/**
 * Runs the test file `file` (compiled, absolute path) again in a fresh loopback namespace (see
 * createLoopbackHost) and reports each of its top-level tests as a subtest of `t`, failures with
 * their details. The file tells the two runs apart with insideTestNamespace().
 */
export async function runTestFileInNamespace(
  t: TestContext,
  file: string,
  timeoutMs = 60_000,
): Promise<void> {
  const host = await createLoopbackHost(t);
  if (!host) return;
  const env: NodeJS.ProcessEnv = { ...process.env, [TEST_NETNS_ENV]: host.name };
  // Inherited, this would make the child report to our runner's protocol instead of TAP.
  delete env.NODE_TEST_CONTEXT;
  const child = host.exec([process.execPath, '--test-reporter=tap', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
  const results = parseTap(stdout);
  for (const result of results) {
    await t.test(result.name, { skip: result.skip ?? false }, (st) => {
      const ms = /duration_ms: ([\d.]+)/.exec(result.details)?.[1];
      if (ms) st.diagnostic(`ran in ${Math.round(Number(ms))} ms inside the namespace`);
      if (!result.ok) throw new Error(`failed in namespace ${host.name}:\n${result.details}\n${stderr}`);
    });
  }
  if (signal)
    throw new Error(
      `the run in namespace ${host.name} was killed (${signal}), ${timeoutMs} ms limit\n${output}`,
    );
  if (results.length === 0)
    throw new Error(`no test ran in namespace ${host.name} (exit ${code})\n${output}`);
  if (code !== 0 && results.every((r) => r.ok)) throw new Error(`the run exited with ${code}\n${output}`);
}

interface TapResult {
  name: string;
  ok: boolean;
  skip?: string;
  details: string;
}

/** The top-level results of node's TAP reporter (nested subtests are indented, so not matched). */
function parseTap(text: string): TapResult[] {
  const results: TapResult[] = [];
  let current: TapResult | null = null;
  for (const line of text.split('\n')) {
    const match = /^(not ok|ok) \d+ - (.*)$/.exec(line);
    if (match) {
      const [, status, rest] = match as unknown as [string, string, string];
      const directive = /^(.*?)(?<!\\) # (SKIP|TODO)\b ?(.*)$/i.exec(rest);
      const name = (directive ? directive[1]! : rest).replace(/\\(.)/g, '$1');
      current = { name, ok: status === 'ok', details: '' };
      if (directive && directive[2]!.toUpperCase() === 'SKIP') current.skip = directive[3] || 'skipped';
      results.push(current);
    } else if (current && line.startsWith(' ')) {
      current.details += `${line}\n`;
    } else {
      current = null;
    }
  }
  return results;
}

// ---- Namespaces ------------------------------------------------------------------------------

let ipPath: string | null | undefined;

/** `ip` with arguments; its stdout, or an error carrying its stderr. */
async function ip(...args: string[]): Promise<string> {
  try {
    return (await execFileAsync(ipPath ?? 'ip', args, { timeout: 15_000 })).stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || String(err)}`, { cause: err });
  }
}

/** `ip -n NAMESPACE ...command` (words separated by single spaces). */
function ipIn(namespace: string, command: string): Promise<string> {
  return ip('-n', namespace, ...command.split(' '));
}

/** Where `ip` is, trying the sbin folders a non-login PATH may lack; null if nowhere. */
async function findIp(): Promise<string | null> {
  if (ipPath !== undefined) return ipPath;
  for (const candidate of ['ip', '/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) {
    try {
      await execFileAsync(candidate, ['-V'], { timeout: 5_000 });
      return (ipPath = candidate);
    } catch {
      // try the next
    }
  }
  return (ipPath = null);
}

/** Why namespaces cannot be used here, or null if they may be. */
async function unavailableReason(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!(await findIp())) return 'network namespaces need iproute2 (the `ip` command)';
  return null;
}

function unavailable(t: TestContext, reason: string): null {
  if (process.env.SWARMSHARE_REQUIRE_NETNS === '1') throw new Error(`${reason} (SWARMSHARE_REQUIRE_NETNS=1)`);
  t.skip(`${reason}: skipped`);
  return null;
}

/** The namespaces of one test, and the processes run in them, all removed at its teardown. */
class NamespaceSet {
  private readonly names: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly id = `${NAME_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  private probed = false;

  private constructor(private readonly t: TestContext) {
    t.after(() => this.teardown());
  }

  static async create(t: TestContext): Promise<NamespaceSet | null> {
    const reason = await unavailableReason();
    if (reason) return unavailable(t, reason);
    await deleteStaleNamespaces();
    return new NamespaceSet(t);
  }

  /** A new namespace named after `role`; null (test skipped) if the very first one fails. */
  async add(role: string): Promise<string | null> {
    const name = `${this.id}-${role}`;
    try {
      await ip('netns', 'add', name);
    } catch (err) {
      // The first failure says whether namespaces work here at all (a container without
      // CAP_SYS_ADMIN refuses even root); a later one is a real failure.
      if (this.probed) throw err;
      return unavailable(this.t, `cannot create network namespaces: ${(err as Error).message}`);
    }
    this.probed = true;
    this.names.push(name);
    return name;
  }

  exec(name: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
    if (!this.names.includes(name)) throw new Error(`${name} is not a namespace of this test`);
    const child = spawn(ipPath!, ['netns', 'exec', name, ...argv], options);
    this.children.add(child);
    return child;
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.children].map(killAndWait));
    for (const name of this.names.reverse()) {
      // Anything the children started is in the namespace too: ours, by construction.
      const pids = await ip('netns', 'pids', name).catch(() => '');
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await ip('netns', 'del', name).catch(() => undefined);
    }
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
}

/** Deletes namespaces of earlier runs of ours whose process is gone (killed before teardown). */
async function deleteStaleNamespaces(): Promise<void> {
  for (const name of await listNamespaces().catch(() => [])) {
    const pid = new RegExp(`^${NAME_PREFIX}(\\d+)-[0-9a-f]+-`).exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    await ip('netns', 'del', name).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
