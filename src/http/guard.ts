/**
 * Who may talk to a dashboard. The control API changes things on the peer, and a web browser will
 * send requests to it on behalf of any site the user visits, so three checks stand in the way:
 *
 * - **Host** (against DNS rebinding): a page on `evil.example` whose name is re-pointed at 127.0.0.1
 *   reaches us with `Host: evil.example`. Only the address we are bound to, `localhost`,
 *   `127.0.0.1` and `[::1]` (with our port) are answered; bound to a wildcard address, also any IP
 *   literal and this machine's host name, neither of which an attacker's DNS can stand for.
 * - **Origin** (against cross-site requests): a state-changing request carrying an Origin, or a
 *   Sec-Fetch-Site, that is not our own is refused. Requests without either (curl, scripts) pass:
 *   browsers always send Origin with a cross-origin POST, PUT or DELETE.
 * - **Token**, required when bound beyond loopback: `Authorization: Bearer T`, or the cookie set
 *   by opening `/?token=T` once (HttpOnly, SameSite=Strict, so no other site's request carries it).
 *   Compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';

/** Dashboards listen here unless told otherwise: this machine only. */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const name = stripBrackets(host).toLowerCase();
  if (name === 'localhost' || name === '::1') return true;
  const v4 = name.startsWith('::ffff:') ? name.slice(7) : name;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/** True for the "every interface" addresses. */
export function isWildcardHost(host: string): boolean {
  const name = stripBrackets(host);
  return name === '0.0.0.0' || name === '::' || name === '';
}

/** A fresh random token: 192 bits, URL-safe. */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/** `host` as it appears in a URL: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  const name = stripBrackets(host);
  return net.isIPv6(name) ? `[${name}]` : name;
}

export class RequestGuard {
  /** Host header values answered, lowercased, each `name:port`. */
  private readonly allowedHosts: ReadonlySet<string>;
  private readonly anyIpLiteral: boolean;
  private readonly tokenDigest: Buffer | null;
  /** The name of the cookie carrying the token: per port, as cookies do not tell ports apart. */
  readonly cookieName: string;

  constructor(
    boundHost: string,
    private readonly port: number,
    token: string | null,
  ) {
    const names = new Set(['localhost', '127.0.0.1', '[::1]']);
    if (!isWildcardHost(boundHost)) names.add(urlHost(boundHost).toLowerCase());
    this.anyIpLiteral = isWildcardHost(boundHost);
    if (this.anyIpLiteral) names.add(os.hostname().toLowerCase());
    this.allowedHosts = new Set([...names].map((name) => `${name}:${port}`));
    this.tokenDigest = token === null ? null : digest(token);
    this.cookieName = `swarmshare_token_${port}`;
  }

  get tokenRequired(): boolean {
    return this.tokenDigest !== null;
  }

  /** True if a request with this Host header is for us (see the file header). */
  hostAllowed(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const parsed = splitHostPort(hostHeader.trim().toLowerCase());
    if (!parsed || parsed.port !== this.port) return false;
    if (this.allowedHosts.has(`${parsed.name}:${parsed.port}`)) return true;
    return this.anyIpLiteral && net.isIP(stripBrackets(parsed.name)) !== 0;
  }

  /** True if an Origin header names one of our own origins. */
  originAllowed(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // including the opaque origin "null"
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return this.hostAllowed(`${url.hostname}:${port}`);
  }

  /** Constant-time comparison with the token (false when no token is configured). */
  tokenMatches(presented: string): boolean {
    if (!this.tokenDigest) return false;
    return timingSafeEqual(digest(presented), this.tokenDigest);
  }

  /** The token presented in a request's cookies, if any. */
  tokenFromCookies(cookieHeader: string | undefined): string | undefined {
    if (!cookieHeader) return undefined;
    for (const part of cookieHeader.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === this.cookieName) {
        return decodeURIComponentSafe(part.slice(eq + 1).trim());
      }
    }
    return undefined;
  }

  /** A Set-Cookie value carrying the token for this server's pages and API. */
  tokenCookie(token: string): string {
    return `${this.cookieName}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
  }
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** `name:port` or `[v6]:port` (port 80 when absent); null if malformed. */
function splitHostPort(value: string): { name: string; port: number } | null {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value);
  if (!match) return null;
  return { name: match[1]!, port: match[2] === undefined ? 80 : Number(match[2]) };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function decodeURIComponentSafe(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
