/**
 * Gets the other clients onto the machine, outside the project's own dependencies (CI installs the
 * project with `npm ci` and must not pay for them):
 *
 * - aria2c from Debian's `aria2` package, installed with apt-get when missing (as root only);
 * - webtorrent and bittorrent-tracker from npm into an ignored cache folder with its own generated
 *   package.json (exact versions), installed once and reused while that package.json is unchanged.
 *
 * Neither throws: a failure comes back as a reason, so the benchmark can say "not run" and go on.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorText, nowSeconds } from '../util.js';

/** `<repo>/bench/.peer-clients` (this file runs as `<repo>/dist/bench/peers/install.js`). */
export const DEFAULT_CACHE_DIR = fileURLToPath(new URL('../../../bench/.peer-clients', import.meta.url));

export const NPM_VERSIONS = {
  webtorrent: '3.0.21',
  'bittorrent-tracker': '11.2.3',
} as const;

/** The one module the child scripts import: it resolves the packages with Node's own ESM rules. */
export const ENTRY_FILE = 'entry.js';

export type Installed<T> =
  { ok: true; seconds: number; fresh: boolean; value: T } | { ok: false; reason: string };

export interface NodeClients {
  /** Absolute path of the entry module exporting `WebTorrent` and `TrackerServer`. */
  entry: string;
  webtorrentVersion: string;
  trackerVersion: string;
}

const APT_TIMEOUT_MS = 10 * 60_000;
const NPM_TIMEOUT_MS = 10 * 60_000;

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a command to completion (killed after `timeoutMs`), stdout and stderr merged and kept (tail). */
function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer): void => void (output = (output + d.toString()).slice(-8000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    // Killed with the benchmark if it exits meanwhile (an install can take minutes).
    const onExit = (): void => void child.kill('SIGKILL');
    process.on('exit', onExit);
    const done = (result: RunResult): void => {
      clearTimeout(timer);
      process.off('exit', onExit);
      resolve(result);
    };
    child.once('error', (err) => done({ code: null, output: errorText(err) }));
    child.once('exit', (code, signal) =>
      done({ code, output: signal ? `${output}\n(killed by ${signal})` : output }),
    );
  });
}

/**
 * The gist of a failed install's output: apt's `E:` lines or npm's error code and first message,
 * else the last lines.
 */
function failureText(output: string): string {
  const lines = output.split('\n').map((l) => l.trim());
  const apt = lines.filter((l) => l.startsWith('E:'));
  if (apt.length > 0) return apt.slice(0, 2).join(' / ');
  const code = lines.map((l) => /^npm error code (\S+)/.exec(l)?.[1]).find((c) => c !== undefined);
  const message = lines.find((l) => /^npm error (?!(code|syscall|errno) |\s*at |[a-z]+: )\S/.test(l));
  if (message !== undefined) return `${code ? `${code}: ` : ''}${message.replace(/^npm error /, '')}`;
  return lines
    .filter((l) => l !== '')
    .slice(-3)
    .join(' / ');
}

/** `aria2 version 1.36.0` → `1.36.0`, or null if aria2c cannot be run. */
async function aria2Version(): Promise<string | null> {
  const { code, output } = await run('aria2c', ['--version'], { timeoutMs: 20_000 });
  if (code !== 0) return null;
  return /aria2 version (\S+)/.exec(output)?.[1] ?? 'unknown';
}

/** aria2c's version, installing Debian's package first if it is missing. */
export async function ensureAria2(log: (line: string) => void): Promise<Installed<string>> {
  const start = nowSeconds();
  const present = await aria2Version();
  if (present !== null) return { ok: true, seconds: 0, fresh: false, value: present };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'aria2c is missing, and only root may install it with apt-get' };

  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Someone else's apt-get may hold the lock for a while: wait for it rather than fail at once.
  const lockWait = ['-o', 'DPkg::Lock::Timeout=300'];
  const install = (): Promise<RunResult> =>
    run('apt-get', [...lockWait, 'install', '-y', '--no-install-recommends', 'aria2'], {
      env,
      timeoutMs: APT_TIMEOUT_MS,
    });
  log('peers: aria2c missing, apt-get install aria2');
  let result = await install();
  if (result.code !== 0) {
    // A fresh machine may have no package lists yet.
    log('peers: apt-get install failed, apt-get update and retry');
    const update = await run('apt-get', [...lockWait, 'update'], { env, timeoutMs: APT_TIMEOUT_MS });
    if (update.code !== 0)
      return { ok: false, reason: `apt-get update failed: ${failureText(update.output)}` };
    result = await install();
  }
  if (result.code !== 0)
    return { ok: false, reason: `apt-get install aria2 failed: ${failureText(result.output)}` };
  const version = await aria2Version();
  if (version === null)
    return { ok: false, reason: 'aria2c still cannot be run after apt-get install aria2' };
  return { ok: true, seconds: nowSeconds() - start, fresh: true, value: version };
}

function packageJson(): string {
  const manifest = {
    name: 'swarmshare-bench-peer-clients',
    private: true,
    description: 'Generated by bench/peers/install.ts; other BitTorrent clients for the benchmark only.',
    type: 'module',
    dependencies: NPM_VERSIONS,
    overrides: {
      // ip-set 3 runs `npx only-allow pnpm` on install, which fails offline and under npm.
      'ip-set': '2.2.0',
      // WebRTC's native library cannot be fetched or built offline; plain TCP BitTorrent never loads it.
      'node-datachannel': 'file:./stub/node-datachannel',
    },
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Names webrtc-polyfill imports: present so the ESM link succeeds, unusable if ever called. */
const STUB_SOURCE = `// Generated by bench/peers/install.ts: a stand-in for node-datachannel (WebRTC), never used over TCP.
const unavailable = () => {
  throw new Error('WebRTC is not available in the swarmshare benchmark');
};
export class PeerConnection { constructor() { unavailable(); } }
export class RtcpReceivingSession { constructor() { unavailable(); } }
export class Video { constructor() { unavailable(); } }
export class Audio { constructor() { unavailable(); } }
export function cleanup() {}
export default { PeerConnection, RtcpReceivingSession, Video, Audio, cleanup };
`;

const STUB_PACKAGE = `${JSON.stringify(
  {
    name: 'node-datachannel',
    version: '0.0.0-stub',
    type: 'module',
    main: 'index.js',
    exports: { '.': './index.js', './polyfill': './index.js' },
  },
  null,
  2,
)}\n`;

const ENTRY_SOURCE = `// Generated by bench/peers/install.ts: resolved from this folder's node_modules.
export { default as WebTorrent } from 'webtorrent';
export { Server as TrackerServer } from 'bittorrent-tracker';
`;

async function writeIfChanged(file: string, text: string): Promise<void> {
  const old = await fs.readFile(file, 'utf8').catch(() => null);
  if (old !== text) await fs.writeFile(file, text);
}

async function installedVersion(dir: string, name: string): Promise<string | null> {
  try {
    const manifest = JSON.parse(
      await fs.readFile(path.join(dir, 'node_modules', name, 'package.json'), 'utf8'),
    );
    return typeof manifest.version === 'string' ? manifest.version : null;
  } catch {
    return null;
  }
}

/**
 * webtorrent and bittorrent-tracker in `cacheDir`, installed with `npm install` unless the stamp
 * left by the last successful install matches the generated files.
 */
export async function ensureNodeClients(
  log: (line: string) => void,
  cacheDir = DEFAULT_CACHE_DIR,
): Promise<Installed<NodeClients>> {
  const start = nowSeconds();
  try {
    const manifest = packageJson();
    const stamp = createHash('sha256')
      .update(manifest)
      .update(STUB_SOURCE)
      .update(STUB_PACKAGE)
      .digest('hex');
    const stampFile = path.join(cacheDir, '.installed');
    const stubDir = path.join(cacheDir, 'stub', 'node-datachannel');
    await fs.mkdir(stubDir, { recursive: true });
    await writeIfChanged(path.join(cacheDir, 'package.json'), manifest);
    await writeIfChanged(path.join(stubDir, 'package.json'), STUB_PACKAGE);
    await writeIfChanged(path.join(stubDir, 'index.js'), STUB_SOURCE);
    await writeIfChanged(path.join(cacheDir, ENTRY_FILE), ENTRY_SOURCE);

    const versions = async (): Promise<[string | null, string | null]> => [
      await installedVersion(cacheDir, 'webtorrent'),
      await installedVersion(cacheDir, 'bittorrent-tracker'),
    ];
    let [webtorrent, tracker] = await versions();
    const current =
      (await fs.readFile(stampFile, 'utf8').catch(() => '')) === stamp &&
      webtorrent === NPM_VERSIONS.webtorrent &&
      tracker === NPM_VERSIONS['bittorrent-tracker'];
    if (!current) {
      log(
        `peers: npm install webtorrent@${NPM_VERSIONS.webtorrent} bittorrent-tracker@${NPM_VERSIONS['bittorrent-tracker']} into ${cacheDir}`,
      );
      await fs.rm(stampFile, { force: true });
      // Scripts off: nothing here needs a build step, and ip-set 3's preinstall is what breaks offline.
      const result = await run(
        'npm',
        ['install', '--prefix', cacheDir, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
        { cwd: cacheDir, env: withoutProjectNpmConfig(process.env), timeoutMs: NPM_TIMEOUT_MS },
      );
      if (result.code !== 0)
        return { ok: false, reason: `npm install failed: ${failureText(result.output)}` };
      [webtorrent, tracker] = await versions();
      if (webtorrent === null || tracker === null) {
        return { ok: false, reason: 'npm install succeeded but webtorrent or bittorrent-tracker is missing' };
      }
      await fs.writeFile(stampFile, stamp);
    }
    return {
      ok: true,
      seconds: nowSeconds() - start,
      fresh: !current,
      value: {
        entry: path.join(cacheDir, ENTRY_FILE),
        webtorrentVersion: webtorrent!,
        trackerVersion: tracker!,
      },
    };
  } catch (err) {
    return { ok: false, reason: `preparing ${cacheDir} failed: ${errorText(err)}` };
  }
}

/**
 * Under `npm run bench`, npm exports the project's prefix and package fields to the environment:
 * dropped so they cannot point this install at the project. Registry, proxy and cache settings stay.
 */
function withoutProjectNpmConfig(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([key]) => !/^npm_(package_|lifecycle_|config_(local_prefix|prefix|global)$)/i.test(key),
    ),
  );
}
