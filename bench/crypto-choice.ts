/**
 * A design measurement, not part of `npm run bench`: what encrypting and authenticating our traffic
 * costs, to choose between TLS 1.3 (node:tls) and Noise (noise-handshake, from the Hyperswarm
 * project). One payload goes over loopback from a child process (this file with `--send`, the
 * sender, as a seeder is) to this process, which connects and reads into one reused buffer (`onread`,
 * as our client does); the sender writes 256 KiB buffers, like our chunk traffic. Cases:
 *
 *   - plaintext TCP, the baseline;
 *   - TLS 1.3 with each of its three cipher suites, Ed25519 self-signed certificates at both ends,
 *     each end checking the other's certificate (mutual authentication, as the product does);
 *   - Noise XX (25519, ChaCha20-Poly1305, BLAKE2b), each end checking the other's static key, then
 *     messages of at most 65535 bytes, each sealed with noise-handshake's Cipher and sent after its
 *     2-byte length.
 *
 * Beside them, the single-core limits: SHA-256, and each AEAD cipher alone (node:crypto, and
 * noise-handshake's Cipher on its 64 KiB messages). Every round measures every figure once; the
 * tables give the medians over the rounds. CPU time is process.cpuUsage() in each process, from the
 * end of the handshake to the end of the stream. Prints Markdown tables.
 *
 *   npm run build && node dist/bench/crypto-choice.js [--size-mib 1024] [--runs 3]
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { once } from 'node:events';
import {
  createCipheriv,
  createHash,
  KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
  type CipherGCMTypes,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mdTable } from './format.js';
import { ProcessGroup } from './processes.js';
import { errorText, MB, mbPerSecond, median, MiB, nowSeconds } from './util.js';

const HOST = '127.0.0.1';
/** What the sender writes at a time: one 256 KiB chunk. */
const SEND_BLOCK_BYTES = 256 * 1024;
/** The receiver's reused read buffer. */
const RECEIVE_BUFFER_BYTES = 256 * 1024;
/**
 * node:crypto's ciphers are timed over 16 KiB updates, the plaintext of a full TLS record, the unit
 * TLS seals. Each update returns a new Buffer: at 64 KiB and 1 MiB that allocation cost here up to
 * 0.4 s of system time per GiB, as much as the cipher itself, which is not what this figure is for.
 */
const CIPHER_LIMIT_BLOCK_BYTES = 16 * 1024;

/** Noise's limit on a message, authentication tag included (the Noise specification, section 3). */
const NOISE_MAX_MESSAGE = 65535;
const NOISE_TAG_BYTES = 16;
const NOISE_MAX_PLAINTEXT = NOISE_MAX_MESSAGE - NOISE_TAG_BYTES;
/** Each Noise message goes after its length, 2 bytes big-endian (as the specification suggests). */
const LENGTH_BYTES = 2;
const NOISE_PROLOGUE = Buffer.from('swarmshare crypto-choice');

const TLS_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

// noise-handshake is CommonJS without types: the little of it used here, typed.
interface NoiseKeyPair {
  publicKey: Buffer;
  secretKey: Buffer;
}
interface NoiseHandshake {
  initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
  send(payload?: Uint8Array): Buffer;
  recv(message: Uint8Array): Buffer;
  readonly complete: boolean;
  /** Session keys once complete: the initiator's rx is the responder's tx and the other way round. */
  readonly rx: Buffer;
  readonly tx: Buffer;
  /** The other end's static public key. */
  readonly rs: Buffer | null;
}
interface NoiseCipher {
  encrypt(plaintext: Uint8Array): Buffer;
  decrypt(ciphertext: Uint8Array): Buffer;
}
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const require = createRequire(import.meta.url);
const Noise = require('noise-handshake') as new (
  pattern: 'XX',
  initiator: boolean,
  staticKeyPair: NoiseKeyPair,
) => NoiseHandshake;
const Cipher = require('noise-handshake/cipher') as new (key: Buffer) => NoiseCipher;
const noiseDh = require('noise-handshake/dh') as { generateKeyPair(): NoiseKeyPair };

type Case =
  | { label: string; kind: 'tcp' }
  | { label: string; kind: 'tls'; suite: string }
  | { label: string; kind: 'noise' };

const CASES: Case[] = [
  { label: 'plaintext TCP (net)', kind: 'tcp' },
  ...TLS_SUITES.map((suite) => ({ label: `TLS 1.3 ${suite}`, kind: 'tls' as const, suite })),
  { label: 'Noise XX, ChaCha20-Poly1305 (noise-handshake)', kind: 'noise' },
];

interface TlsIdentity {
  key: string;
  cert: string;
  fingerprint: string;
}

/** What the sender child needs, sent as one JSON line on its stdin. */
interface SenderConfig {
  bytes: number;
  case: Case;
  /** TLS: the sender's key and certificate, and the fingerprint the receiver's must have. */
  tls: { own: TlsIdentity; peerFingerprint: string };
  /** Noise: the sender's static key pair and the receiver's public key (hex). */
  noise: { publicKey: string; secretKey: string; peerPublicKey: string };
}

/** An Ed25519 key in a self-signed certificate, as a node presents itself. */
async function tlsIdentity(name: string): Promise<TlsIdentity> {
  const algorithm = { name: 'Ed25519' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date('2000-01-01T00:00:00Z'),
    notAfter: new Date('2100-01-01T00:00:00Z'),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: algorithm,
  });
  const cert = certificate.toString('pem');
  return {
    key: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    cert,
    fingerprint: new X509Certificate(cert).fingerprint256,
  };
}

function tlsOptions(own: TlsIdentity, suite: string): tls.SecureContextOptions {
  return { key: own.key, cert: own.cert, minVersion: 'TLSv1.3', ciphers: suite, sigalgs: 'ed25519' };
}

/** Mutual authentication: the other end must hold the certificate we expect, on the suite we asked for. */
function checkTlsPeer(socket: tls.TLSSocket, fingerprint: string, suite: string): void {
  const peer = socket.getPeerX509Certificate();
  if (peer?.fingerprint256 !== fingerprint) throw new Error('TLS: the other end has another certificate');
  const negotiated = `${socket.getProtocol()} ${socket.getCipher().standardName}`;
  if (negotiated !== `TLSv1.3 ${suite}`) throw new Error(`TLS: negotiated ${negotiated}`);
}

function checkNoisePeer(handshake: NoiseHandshake, expected: Buffer): void {
  if (!handshake.rs?.equals(expected)) throw new Error('Noise: the other end has another static key');
}

function lengthPrefixed(message: Buffer): Buffer[] {
  const prefix = Buffer.allocUnsafe(LENGTH_BYTES);
  prefix.writeUInt16BE(message.length);
  return [prefix, message];
}

/**
 * Splits a stream into Noise messages, each after its 2-byte length. Reads go into one reused
 * buffer (nextBuffer/received, for `onread`) or come as Buffers (push); a message cut by the end of
 * a read is completed in a buffer of its own, the rest of it read straight there. A message handed
 * to onMessage lives only during the call.
 */
class NoiseReader {
  private readonly scratch: Buffer;
  private readonly partial = Buffer.allocUnsafe(LENGTH_BYTES + NOISE_MAX_MESSAGE);
  /** Bytes of `partial` filled, the length included; 0 when no message is cut. */
  private fill = 0;

  constructor(
    private readonly onMessage: (message: Buffer) => void,
    scratchBytes = RECEIVE_BUFFER_BYTES,
  ) {
    this.scratch = Buffer.allocUnsafeSlow(scratchBytes);
  }

  nextBuffer(): Buffer {
    return this.fill < LENGTH_BYTES ? this.scratch : this.partial.subarray(this.fill, this.partialEnd());
  }

  received(bytes: number): void {
    if (this.fill < LENGTH_BYTES) return this.push(this.scratch.subarray(0, bytes));
    this.fill += bytes;
    this.finishPartial();
  }

  push(data: Buffer): void {
    let at = 0;
    while (this.fill > 0 && at < data.length) {
      const wanted = this.fill < LENGTH_BYTES ? LENGTH_BYTES : this.partialEnd();
      const n = Math.min(wanted - this.fill, data.length - at);
      data.copy(this.partial, this.fill, at, at + n);
      this.fill += n;
      at += n;
      this.finishPartial();
    }
    while (at < data.length) {
      const end = data.length - at >= LENGTH_BYTES ? at + LENGTH_BYTES + data.readUInt16BE(at) : Infinity;
      if (end > data.length) {
        this.fill = data.copy(this.partial, 0, at);
        return this.finishPartial();
      }
      this.onMessage(data.subarray(at + LENGTH_BYTES, end));
      at = end;
    }
  }

  private partialEnd(): number {
    return LENGTH_BYTES + this.partial.readUInt16BE(0);
  }

  private finishPartial(): void {
    if (this.fill < LENGTH_BYTES || this.fill < this.partialEnd()) return;
    this.fill = 0;
    this.onMessage(this.partial.subarray(LENGTH_BYTES, this.partialEnd()));
  }
}

// ---- The sender (child process) ----

/** Writes `total` bytes from one reused 256 KiB buffer, respecting back-pressure. */
async function sendBlocks(
  socket: net.Socket,
  total: number,
  write: (block: Buffer) => boolean,
): Promise<void> {
  const block = Buffer.alloc(SEND_BLOCK_BYTES, 0xa5);
  for (let sent = 0; sent < total;) {
    const n = Math.min(block.length, total - sent);
    sent += n;
    if (!write(n === block.length ? block : block.subarray(0, n))) await once(socket, 'drain');
  }
}

/** Noise XX as the responder: resolves with the cipher to send with, once the initiator is checked. */
function noiseRespond(socket: net.Socket, keys: SenderConfig['noise']): Promise<NoiseCipher> {
  return new Promise((resolve, reject) => {
    const handshake = new Noise('XX', false, {
      publicKey: Buffer.from(keys.publicKey, 'hex'),
      secretKey: Buffer.from(keys.secretKey, 'hex'),
    });
    handshake.initialise(NOISE_PROLOGUE);
    const reader = new NoiseReader((message) => {
      if (handshake.complete) throw new Error('Noise: the receiver sent a message after the handshake');
      handshake.recv(message);
      if (!handshake.complete) {
        socket.write(Buffer.concat(lengthPrefixed(handshake.send()))); // <- e, ee, s, es
        return;
      }
      checkNoisePeer(handshake, Buffer.from(keys.peerPublicKey, 'hex'));
      resolve(new Cipher(handshake.tx));
    }, 4096);
    socket.on('data', (data: Buffer) => {
      try {
        reader.push(data);
      } catch (err) {
        reject(err as Error);
        socket.destroy();
      }
    });
    socket.once('error', reject);
  });
}

/** Each 256 KiB block as messages of at most 65535 bytes, all written at once (one writev). */
function noiseWriter(socket: net.Socket, cipher: NoiseCipher): (block: Buffer) => boolean {
  return (block) => {
    socket.cork();
    let ok = true;
    for (let at = 0; at < block.length; at += NOISE_MAX_PLAINTEXT) {
      const sealed = cipher.encrypt(block.subarray(at, at + NOISE_MAX_PLAINTEXT));
      for (const part of lengthPrefixed(sealed)) ok = socket.write(part);
    }
    socket.uncork();
    return ok;
  };
}

async function runSender(): Promise<void> {
  const input = createInterface({ input: process.stdin });
  // Stdin closed (the benchmark stopped or died): nothing more to do.
  input.once('close', () => process.exit(0));
  const [line] = (await once(input, 'line')) as [string];
  const config = JSON.parse(line) as SenderConfig;
  const spec = config.case;
  const server =
    spec.kind === 'tls'
      ? tls.createServer({
          ...tlsOptions(config.tls.own, spec.suite),
          requestCert: true,
          // No certificate authority: checkTlsPeer pins the other end's certificate instead.
          rejectUnauthorized: false,
        })
      : net.createServer();
  const connected = once(server, spec.kind === 'tls' ? 'secureConnection' : 'connection') as Promise<
    [net.Socket]
  >;
  server.listen(0, HOST);
  await once(server, 'listening');
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
  const [socket] = await connected;
  server.close();

  let write = (block: Buffer): boolean => socket.write(block);
  if (spec.kind === 'tls') checkTlsPeer(socket as tls.TLSSocket, config.tls.peerFingerprint, spec.suite);
  if (spec.kind === 'noise') write = noiseWriter(socket, await noiseRespond(socket, config.noise));

  const cpuBefore = process.cpuUsage();
  const closed = once(socket, 'close');
  await sendBlocks(socket, config.bytes, write);
  socket.end();
  await closed;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 })}\n`, () =>
    process.exit(0),
  );
}

// ---- The receiver (this process) ----

interface Received {
  /** From the connect call to the end of the handshake: TCP, then TLS or Noise. */
  setupMs: number;
  seconds: number;
  cpuMs: number;
}

/** The payload counted from the end of the handshake to the end of the stream, with our CPU time. */
class Meter {
  private readonly began = performance.now();
  private readyAt = 0;
  private cpuAtReady: NodeJS.CpuUsage | null = null;
  bytes = 0;

  ready(): void {
    this.readyAt = performance.now();
    this.cpuAtReady = process.cpuUsage();
  }

  /** Resolves at the end of the stream, if exactly `expected` bytes came after the handshake. */
  until(socket: net.Socket, expected: number): Promise<Received> {
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`the connection closed after ${this.bytes} bytes`)));
      socket.once('end', () => {
        const ended = performance.now();
        const cpu = process.cpuUsage(this.cpuAtReady ?? undefined);
        if (this.cpuAtReady === null) return reject(new Error('the stream ended before the handshake did'));
        if (this.bytes !== expected) return reject(new Error(`received ${this.bytes} of ${expected} bytes`));
        resolve({
          setupMs: this.readyAt - this.began,
          seconds: (ended - this.readyAt) / 1000,
          cpuMs: (cpu.user + cpu.system) / 1000,
        });
      });
    });
  }
}

/** `onread` options that hand each read to `onRead`, destroying the socket if it throws. */
function readInto(
  buffer: Buffer | (() => Buffer),
  onRead: (bytes: number) => void,
  socket: () => net.Socket,
): net.OnReadOpts {
  return {
    buffer,
    callback: (bytes) => {
      try {
        onRead(bytes);
      } catch (err) {
        socket().destroy(err as Error);
      }
      return true;
    },
  };
}

function receivePlain(port: number, bytes: number): Promise<Received> {
  const meter = new Meter();
  const buffer = Buffer.allocUnsafeSlow(RECEIVE_BUFFER_BYTES);
  const socket: net.Socket = net.connect({
    host: HOST,
    port,
    onread: readInto(
      buffer,
      (n) => (meter.bytes += n),
      () => socket,
    ),
  });
  socket.once('connect', () => meter.ready());
  return meter.until(socket, bytes);
}

function receiveTls(
  port: number,
  bytes: number,
  suite: string,
  own: TlsIdentity,
  peer: string,
): Promise<Received> {
  const meter = new Meter();
  const buffer = Buffer.allocUnsafeSlow(RECEIVE_BUFFER_BYTES);
  const options: tls.ConnectionOptions & Pick<net.TcpNetConnectOpts, 'onread'> = {
    host: HOST,
    port,
    ...tlsOptions(own, suite),
    rejectUnauthorized: false,
    onread: readInto(
      buffer,
      (n) => (meter.bytes += n),
      () => socket,
    ),
  };
  const socket = tls.connect(options);
  socket.once('secureConnect', () => {
    try {
      checkTlsPeer(socket, peer, suite);
      meter.ready();
    } catch (err) {
      socket.destroy(err as Error);
    }
  });
  return meter.until(socket, bytes);
}

function receiveNoise(port: number, bytes: number, own: NoiseKeyPair, peer: Buffer): Promise<Received> {
  const meter = new Meter();
  const handshake = new Noise('XX', true, own);
  handshake.initialise(NOISE_PROLOGUE);
  let cipher: NoiseCipher | null = null;
  const reader = new NoiseReader((message) => {
    if (cipher) {
      meter.bytes += cipher.decrypt(message).length;
      return;
    }
    handshake.recv(message); // <- e, ee, s, es
    checkNoisePeer(handshake, peer);
    socket.write(Buffer.concat(lengthPrefixed(handshake.send()))); // -> s, se
    if (!handshake.complete) throw new Error('Noise: the handshake did not complete');
    cipher = new Cipher(handshake.rx);
    meter.ready();
  });
  const socket: net.Socket = net.connect({
    host: HOST,
    port,
    onread: readInto(
      () => reader.nextBuffer(),
      (n) => reader.received(n),
      () => socket,
    ),
  });
  socket.once('connect', () => socket.write(Buffer.concat(lengthPrefixed(handshake.send())))); // -> e
  return meter.until(socket, bytes);
}

interface Identities {
  tls: { sender: TlsIdentity; receiver: TlsIdentity };
  noise: { sender: NoiseKeyPair; receiver: NoiseKeyPair };
}

interface TransferRun extends Received {
  senderCpuMs: number;
}

async function transferOnce(
  group: ProcessGroup,
  spec: Case,
  ids: Identities,
  bytes: number,
): Promise<TransferRun> {
  const config: SenderConfig = {
    bytes,
    case: spec,
    tls: { own: ids.tls.sender, peerFingerprint: ids.tls.receiver.fingerprint },
    noise: {
      publicKey: ids.noise.sender.publicKey.toString('hex'),
      secretKey: ids.noise.sender.secretKey.toString('hex'),
      peerPublicKey: ids.noise.receiver.publicKey.toString('hex'),
    },
  };
  const sender = group.spawnNode('sender', fileURLToPath(import.meta.url), ['--send']);
  // Generous: 2 MB/s, plus a minute.
  const deadline = setTimeout(() => sender.kill('SIGKILL'), 60_000 + bytes / 2_000);
  try {
    sender.proc.stdin.write(`${JSON.stringify(config)}\n`);
    const port = Number((await sender.waitForOutput(/"port":(\d+)/, 30_000))[1]);
    const received =
      spec.kind === 'tcp'
        ? receivePlain(port, bytes)
        : spec.kind === 'tls'
          ? receiveTls(port, bytes, spec.suite, ids.tls.receiver, ids.tls.sender.fingerprint)
          : receiveNoise(port, bytes, ids.noise.receiver, ids.noise.sender.publicKey);
    // A sender that dies closes the connection: `received` then fails.
    const result = await received;
    const exit = await sender.exited;
    const cpu = /"cpuMs":([\d.]+)/.exec(sender.stdout);
    if (exit.code !== 0 || !cpu)
      throw new Error(`the sender exited with ${exit.code ?? exit.signal}: ${sender.describeOutput()}`);
    return { ...result, senderCpuMs: Number(cpu[1]) };
  } finally {
    clearTimeout(deadline);
    await group.stop(sender);
  }
}

// ---- Single-core limits ----

interface LimitRun {
  mbps: number;
  /** This thread's CPU time (user + system): on a shared machine, steadier than the wall clock. */
  cpuMsPerMb: number;
}

/** Times `work` on this thread, which processes `bytes` bytes. */
function timeLimit(bytes: number, work: () => void): LimitRun {
  const cpuBefore = process.cpuUsage();
  const start = nowSeconds();
  work();
  const seconds = nowSeconds() - start;
  const cpu = process.cpuUsage(cpuBefore);
  return { mbps: mbPerSecond(bytes, seconds), cpuMsPerMb: (cpu.user + cpu.system) / 1000 / (bytes / MB) };
}

/** SHA-256 over `bytes` in 1 MiB updates (as in limits.ts). */
function sha256Limit(bytes: number): LimitRun {
  const block = randomBytes(MiB);
  const updates = Math.ceil(bytes / block.length);
  return timeLimit(updates * block.length, () => {
    const hash = createHash('sha256');
    for (let i = 0; i < updates; i++) hash.update(block);
    hash.digest();
  });
}

/** One AEAD cipher of node:crypto over `bytes` in 16 KiB updates. */
function cipherLimit(algorithm: CipherGCMTypes | 'chacha20-poly1305', bytes: number): LimitRun {
  const key = randomBytes(algorithm === 'aes-128-gcm' ? 16 : 32);
  const iv = randomBytes(12);
  const block = randomBytes(CIPHER_LIMIT_BLOCK_BYTES);
  const updates = Math.ceil(bytes / block.length);
  return timeLimit(updates * block.length, () => {
    const cipher =
      algorithm === 'chacha20-poly1305'
        ? createCipheriv(algorithm, key, iv, { authTagLength: NOISE_TAG_BYTES })
        : createCipheriv(algorithm, key, iv);
    for (let i = 0; i < updates; i++) cipher.update(block);
    cipher.final();
    cipher.getAuthTag();
  });
}

/** noise-handshake's Cipher sealing `bytes` in messages of the most plaintext Noise allows. */
function noiseCipherLimit(bytes: number): LimitRun {
  const cipher = new Cipher(randomBytes(32));
  const block = randomBytes(NOISE_MAX_PLAINTEXT);
  const messages = Math.ceil(bytes / block.length);
  return timeLimit(messages * block.length, () => {
    for (let i = 0; i < messages; i++) cipher.encrypt(block);
  });
}

const LIMITS: { label: string; measure: (bytes: number) => LimitRun }[] = [
  { label: 'SHA-256 (createHash, 1 MiB updates)', measure: sha256Limit },
  {
    label: 'AES-128-GCM (createCipheriv, 16 KiB updates)',
    measure: (bytes) => cipherLimit('aes-128-gcm', bytes),
  },
  {
    label: 'AES-256-GCM (createCipheriv, 16 KiB updates)',
    measure: (bytes) => cipherLimit('aes-256-gcm', bytes),
  },
  {
    label: 'ChaCha20-Poly1305 (createCipheriv, 16 KiB updates)',
    measure: (bytes) => cipherLimit('chacha20-poly1305', bytes),
  },
  { label: 'ChaCha20-Poly1305 (noise-handshake Cipher.encrypt, 64 KiB messages)', measure: noiseCipherLimit },
];

/** The version in a package's package.json, found from its entry point. */
function packageVersion(name: string): string {
  for (let dir = path.dirname(require.resolve(name)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === name) return pkg.version ?? '?';
    } catch {
      // No package.json at this level: look further up.
    }
  }
  return '?';
}

function cpuFlags(): string {
  try {
    const flags =
      /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
    const wanted = ['aes', 'vaes', 'pclmulqdq', 'vpclmulqdq', 'avx2', 'avx512f', 'sha_ni'];
    return wanted.filter((flag) => flags.includes(flag)).join(' ');
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      send: { type: 'boolean', default: false },
      'size-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '3' },
    },
    strict: true,
  });
  if (values.send) return runSender();
  const bytes = Number(values['size-mib']) * MiB;
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || !Number.isSafeInteger(runs) || runs <= 0)
    throw new Error('--size-mib and --runs must be positive whole numbers');

  const group = new ProcessGroup();
  const onSignal = (): void => process.exit(130); // the group's exit hook kills the sender
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const log = (line: string): void => void process.stderr.write(`[crypto-choice] ${line}\n`);
  const date = new Date();
  const ids: Identities = {
    tls: { sender: await tlsIdentity('sender'), receiver: await tlsIdentity('receiver') },
    noise: { sender: noiseDh.generateKeyPair(), receiver: noiseDh.generateKeyPair() },
  };

  const loadBefore = os.loadavg()[0]!;
  const limitRuns = LIMITS.map((): LimitRun[] => []);
  const transfers = CASES.map((): TransferRun[] => []);
  try {
    // Unmeasured: each limit once on a little data first, so the first figure does not pay for
    // the heap growing and the code warming up.
    for (const limit of LIMITS) limit.measure(Math.min(bytes, 64 * MiB));
    for (let round = 1; round <= runs; round++) {
      LIMITS.forEach((limit, i) => limitRuns[i]!.push(limit.measure(bytes)));
      for (const [i, spec] of CASES.entries()) {
        const run = await transferOnce(group, spec, ids, bytes);
        transfers[i]!.push(run);
        log(`round ${round}/${runs}: ${spec.label}: ${mbPerSecond(bytes, run.seconds).toFixed(0)} MB/s`);
      }
    }
  } finally {
    await group.stopAll();
  }

  const loadAfter = os.loadavg()[0]!;
  const mb = bytes / MB;
  const f = (value: number, digits: number): string => value.toFixed(digits);
  const args = process.argv.slice(2);
  const lines = [
    `- Command: \`npm run build && node dist/bench/crypto-choice.js${args.length > 0 ? ` ${args.join(' ')}` : ''}\``,
    `- Date: ${date.toISOString()}`,
    `- Node ${process.version}, OpenSSL ${process.versions.openssl}, noise-handshake ${packageVersion('noise-handshake')}, ` +
      `sodium-native ${packageVersion('sodium-native')}`,
    `- Machine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown'} (flags: ${cpuFlags()}), ${os.platform()} ${os.release()}`,
    `- Load average (1 min) at the start and the end: ${f(loadBefore, 2)}, ${f(loadAfter, 2)}`,
    '',
    `Single core, ${f(mb, 0)} MB per run, median of ${runs}:`,
    '',
    ...mdTable([
      ['limit', 'MB/s', 'runs', 'CPU-ms/MB'],
      ...LIMITS.map((limit, i) => {
        const all = limitRuns[i]!;
        return [
          limit.label,
          f(median(all.map((r) => r.mbps)), 0),
          all.map((r) => f(r.mbps, 0)).join(', '),
          f(median(all.map((r) => r.cpuMsPerMb)), 2),
        ];
      }),
    ]),
    '',
    `${f(mb, 0)} MB from a child process to this one over loopback, median of ${runs} (each column on its own):`,
    '',
    ...mdTable([
      ['case', 'MB/s', 'runs', 'sender CPU-ms/MB', 'receiver CPU-ms/MB', 'connect + handshake ms'],
      ...CASES.map((spec, i) => {
        const all = transfers[i]!;
        const speeds = all.map((r) => mbPerSecond(bytes, r.seconds));
        return [
          spec.label,
          f(median(speeds), 0),
          speeds.map((s) => f(s, 0)).join(', '),
          f(median(all.map((r) => r.senderCpuMs)) / mb, 2),
          f(median(all.map((r) => r.cpuMs)) / mb, 2),
          f(median(all.map((r) => r.setupMs)), 1),
        ];
      }),
    ]),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`crypto-choice failed: ${errorText(err)}\n`);
  process.exitCode = 1;
});
