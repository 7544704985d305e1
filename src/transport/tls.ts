/**
 * Every connection, tracker and peer alike, is TLS 1.3 with a certificate at both ends (see
 * credentials.ts). The certificate authority check of the web does not apply to a swarm; in its place
 * each end checks that the other's certificate is a well-formed self-signed Ed25519 certificate and
 * takes the peer id from its key, before a byte of our protocol flows. A client that dialled a known
 * peer id also checks that it reached that id and no other.
 */
import net from 'node:net';
import tls from 'node:tls';
import { SwarmError, errorMessage } from '../errors.js';
import { peerIdOf } from '../storage/identity.js';
import type { Credentials } from './credentials.js';

/** Options both ends share: TLS 1.3 only, Ed25519 signatures only. */
function commonOptions(credentials: Credentials): tls.SecureContextOptions {
  return {
    cert: credentials.certificate,
    key: credentials.privateKey,
    minVersion: 'TLSv1.3',
    sigalgs: 'ed25519',
  };
}

/**
 * The peer id proven by the other end of a finished TLS handshake. Throws ERR_PEER_AUTH unless it
 * presented a self-signed Ed25519 certificate. (Proof of possession of the key is TLS's own: the
 * handshake fails unless the other end signed it with the certificate's key.)
 */
export function remotePeerIdOf(socket: tls.TLSSocket): Buffer {
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) throw new SwarmError('ERR_PEER_AUTH', 'the other end presented no certificate');
  const key = certificate.publicKey;
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SwarmError(
      'ERR_PEER_AUTH',
      `the other end's key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`,
    );
  }
  if (!certificate.checkIssued(certificate) || !certificate.verify(key)) {
    throw new SwarmError('ERR_PEER_AUTH', "the other end's certificate is not signed by its own key");
  }
  return peerIdOf(key);
}

export interface SecureServerOptions {
  credentials: Credentials;
  /** A client that has not finished the TLS handshake in this time is cut off. */
  handshakeTimeoutMs: number;
  /** Raw TCP connections, before any TLS work: return false to refuse one at once (limits). */
  admit?: (socket: net.Socket) => boolean;
  /** A connection whose TLS handshake failed (garbage, timeout, no certificate): for the log. */
  onRefused?: (err: Error, socket: net.Socket) => void;
  /**
   * No TLS at all, and so no peer authentication (the remote peer id is null): only for measuring
   * what encryption costs (bench/encryption.ts). Nothing a user runs sets it.
   */
  unencrypted?: boolean;
}

/** A TLS server that hands over only authenticated connections, with the peer id each proved. */
export function createSecureServer(
  options: SecureServerOptions,
  onConnection: (socket: net.Socket, remotePeerId: Buffer | null) => void,
): net.Server {
  if (options.unencrypted) {
    const admit = options.admit ?? (() => true);
    return net.createServer((socket) => (admit(socket) ? onConnection(socket, null) : socket.destroy()));
  }
  const server = tls.createServer({
    ...commonOptions(options.credentials),
    requestCert: true,
    // No certificate authority exists in a swarm: remotePeerIdOf() checks the certificate instead.
    rejectUnauthorized: false,
    handshakeTimeout: options.handshakeTimeoutMs,
  });
  const admit = options.admit;
  // 'connection' sees the TCP socket before TLS spends anything on it. No Nagle: a TLS socket's own
  // setNoDelay() does not reach the TCP socket under it, and a frame's last record must not wait.
  server.prependListener('connection', (socket: net.Socket) => {
    if (admit && !admit(socket)) socket.destroy();
    else socket.setNoDelay(true);
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    let remotePeerId: Buffer;
    try {
      remotePeerId = remotePeerIdOf(socket);
    } catch (err) {
      options.onRefused?.(err as Error, socket);
      socket.destroy();
      return;
    }
    onConnection(socket, remotePeerId);
  });
  server.on('tlsClientError', (err, socket) => {
    options.onRefused?.(err, socket);
    socket.destroy();
  });
  return server;
}

export interface SecureConnectOptions {
  credentials: Credentials;
  /** Deadline for TCP and TLS together. */
  timeoutMs: number;
  /** The peer id we mean to reach: anyone else at that address is refused (ERR_PEER_AUTH). */
  expectedPeerId?: Buffer | undefined;
  /** Read straight into caller-provided memory (see net.Socket's onread). */
  onread?: net.OnReadOpts;
  /** The local address to connect from. */
  localAddress?: string;
  /** No TLS (see SecureServerOptions.unencrypted): for measuring what encryption costs, nothing else. */
  unencrypted?: boolean;
}

/**
 * Connects over TLS and checks the other end. Rejects ERR_UNREACHABLE when nothing answers at the
 * address, ERR_PROTOCOL when something answers that does not speak TLS 1.3 with a certificate,
 * ERR_CLOSED when the other end hangs up during the handshake (full, or refusing us), and
 * ERR_PEER_AUTH when it is not whom we asked for.
 */
export function connectSecure(
  host: string,
  port: number,
  options: SecureConnectOptions & { unencrypted?: false },
): Promise<{ socket: tls.TLSSocket; remotePeerId: Buffer }>;
export function connectSecure(
  host: string,
  port: number,
  options: SecureConnectOptions,
): Promise<{ socket: net.Socket; remotePeerId: Buffer | null }>;
export function connectSecure(
  host: string,
  port: number,
  options: SecureConnectOptions,
): Promise<{ socket: net.Socket; remotePeerId: Buffer | null }> {
  if (options.unencrypted) return connectPlain(host, port, options);
  const where = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    let connected = false;
    const socket = tls.connect({
      host,
      port,
      ...commonOptions(options.credentials),
      // No certificate authority exists in a swarm: remotePeerIdOf() checks the certificate instead.
      rejectUnauthorized: false,
      ...(options.onread ? { onread: options.onread } : {}),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const fail = (err: SwarmError): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(
        connected
          ? new SwarmError(
              'ERR_HANDSHAKE_TIMEOUT',
              `no TLS handshake with ${where} within ${options.timeoutMs} ms`,
            )
          : new SwarmError(
              'ERR_UNREACHABLE',
              `connecting to ${where} timed out after ${options.timeoutMs} ms`,
            ),
      );
    }, options.timeoutMs);
    socket.once('connect', () => (connected = true));
    socket.once('secureConnect', () => {
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      let remotePeerId: Buffer;
      try {
        remotePeerId = remotePeerIdOf(socket);
        if (options.expectedPeerId && !remotePeerId.equals(options.expectedPeerId)) {
          throw new SwarmError(
            'ERR_PEER_AUTH',
            `${where} is peer ${remotePeerId.toString('hex').slice(0, 16)}, not the ${options.expectedPeerId
              .toString('hex')
              .slice(0, 16)} we asked for`,
          );
        }
      } catch (err) {
        return fail(err as SwarmError);
      }
      clearTimeout(timer);
      resolve({ socket, remotePeerId });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (!connected) {
        fail(
          new SwarmError('ERR_UNREACHABLE', `cannot connect to ${where}: ${code || err.message}`, {
            cause: err,
          }),
        );
      } else if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
        fail(
          new SwarmError('ERR_PROTOCOL', `no TLS 1.3 handshake with ${where}: ${errorMessage(err)}`, {
            cause: err,
          }),
        );
      } else {
        fail(
          new SwarmError(
            'ERR_CLOSED',
            `${where} closed the connection during the TLS handshake: ${code || err.message}`,
            { cause: err },
          ),
        );
      }
    });
    socket.once('close', () => {
      fail(
        new SwarmError(
          connected ? 'ERR_CLOSED' : 'ERR_UNREACHABLE',
          `${where} closed the connection during the TLS handshake`,
        ),
      );
    });
  });
}

/** connectSecure() without TLS, for SecureConnectOptions.unencrypted. */
function connectPlain(
  host: string,
  port: number,
  options: SecureConnectOptions,
): Promise<{ socket: net.Socket; remotePeerId: null }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(options.onread ? { onread: options.onread } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SwarmError('ERR_UNREACHABLE', `connecting to ${host}:${port} timed out`));
    }, options.timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ socket, remotePeerId: null });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new SwarmError('ERR_UNREACHABLE', `cannot connect to ${host}:${port}: ${errorMessage(err)}`));
    });
  });
}
