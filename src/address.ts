/** Parsing and printing of network endpoints (`host:port`, `[v6]:port`). */
import { SwarmError } from './errors.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** A tracker's address, with the peer id expected there when the user pinned one (ID@HOST:PORT). */
export interface TrackerAddress extends Endpoint {
  trackerId?: Buffer;
}

/**
 * Parses `[ID@]HOST:PORT`, where ID is the tracker's peer id in hex (64 digits, as the tracker
 * prints it): with it, a tracker that cannot prove that id is refused.
 */
export function parseTrackerAddress(text: string, defaultPort?: number): TrackerAddress {
  const at = text.indexOf('@');
  if (at === -1) return parseEndpoint(text, defaultPort);
  const id = text.slice(0, at).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(id)) {
    throw new SwarmError(
      'ERR_INVALID_ARGUMENT',
      `bad tracker address ${JSON.stringify(text)}: before the @ comes the tracker's id, 64 hex digits`,
    );
  }
  return { ...parseEndpoint(text.slice(at + 1), defaultPort), trackerId: Buffer.from(id, 'hex') };
}

export function parsePort(text: string, what = 'port'): number {
  if (!/^\d{1,5}$/.test(text))
    throw new SwarmError('ERR_INVALID_ARGUMENT', `${what} must be a number from 0 to 65535, got "${text}"`);
  const port = Number(text);
  if (port > 65535)
    throw new SwarmError('ERR_INVALID_ARGUMENT', `${what} must be a number from 0 to 65535, got "${text}"`);
  return port;
}

/** Parses `host:port`, `[::1]:port` or a bare `port` (meaning 127.0.0.1). */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const endpoint = splitEndpoint(text, defaultPort);
  // Host names, IPv4 and IPv6 literals (with a %zone) need nothing else: a control character, a
  // space or a slash is a typo or an attack, and would only fail later, further from its cause.
  if (!/^[A-Za-z0-9._:%-]+$/.test(endpoint.host)) {
    throw new SwarmError(
      'ERR_INVALID_ARGUMENT',
      `bad address ${JSON.stringify(text)}: a host is a name, an IPv4 address or a [v6] address`,
    );
  }
  return endpoint;
}

function splitEndpoint(text: string, defaultPort?: number): Endpoint {
  const trimmed = text.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (v6)
    return { host: v6[1]!, port: v6[2] !== undefined ? parsePort(v6[2]) : requirePort(trimmed, defaultPort) };
  if (/^\d+$/.test(trimmed)) return { host: '127.0.0.1', port: parsePort(trimmed) };
  const colon = trimmed.lastIndexOf(':');
  if (colon === -1) {
    if (!trimmed) throw new SwarmError('ERR_INVALID_ARGUMENT', 'empty address');
    return { host: trimmed, port: requirePort(trimmed, defaultPort) };
  }
  const host = trimmed.slice(0, colon);
  if (!host || host.includes(':')) {
    throw new SwarmError(
      'ERR_INVALID_ARGUMENT',
      `bad address "${text}": use host:port, or [v6-address]:port`,
    );
  }
  return { host, port: parsePort(trimmed.slice(colon + 1)) };
}

function requirePort(text: string, defaultPort: number | undefined): number {
  if (defaultPort === undefined)
    throw new SwarmError('ERR_INVALID_ARGUMENT', `address "${text}" needs a :port`);
  return defaultPort;
}

export function formatEndpoint({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
