/**
 * Admission of incoming connections, in total and per remote address: a server asks the gate when
 * it accepts a socket, before any other work (no framing, no timers, no handshake), and gives the
 * place back when the socket closes. One gate per server.
 *
 * An address is an IPv4 address, or an IPv6 /64: one host is usually given a whole /64, so counting
 * IPv6 addresses one by one would bound nothing. IPv4-mapped IPv6 addresses count as IPv4.
 */
import net from 'node:net';

export interface ConnectionGateLimits {
  /** Connections admitted at once. */
  maxConnections: number;
  /** Connections admitted at once from one address (see addressKey). */
  maxPerAddress: number;
}

/** Admitted: call `release` once the connection has closed (more calls do nothing). */
export interface Admitted {
  admitted: true;
  release: () => void;
}

/** Refused: which bound was reached, for the log and the counters. */
export interface Refused {
  admitted: false;
  bound: 'connections' | 'per-address';
  limit: number;
}

export class ConnectionGate {
  private total = 0;
  /** Connections admitted per address key; an address with none has no entry. */
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: ConnectionGateLimits) {}

  /** Connections admitted and not yet released. */
  get connections(): number {
    return this.total;
  }

  /** Connections admitted and not yet released from `address`'s key. */
  connectionsFrom(address: string): number {
    return this.perAddress.get(addressKey(address)) ?? 0;
  }

  /**
   * Admits a connection from `address` within the limits. `inPlaceOf`: the server has just closed
   * another connection to make room, whose place is released once its socket has closed; the total is
   * not checked (it is over by the closes still under way), the address's share is.
   */
  admit(address: string, inPlaceOf = false): Admitted | Refused {
    const { maxConnections, maxPerAddress } = this.limits;
    if (this.total >= maxConnections && !inPlaceOf)
      return { admitted: false, bound: 'connections', limit: maxConnections };
    const key = addressKey(address);
    const count = this.perAddress.get(key) ?? 0;
    if (count >= maxPerAddress) return { admitted: false, bound: 'per-address', limit: maxPerAddress };
    this.total++;
    this.perAddress.set(key, count + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perAddress.get(key) ?? 1) - 1;
      if (left > 0) this.perAddress.set(key, left);
      else this.perAddress.delete(key);
    };
    return { admitted: true, release };
  }
}

/**
 * What connections are counted under: an IPv4 address as it is, an IPv6 address's first 64 bits,
 * an IPv4-mapped IPv6 address as its IPv4 address. Anything else (no address at all: the socket is
 * already gone) is counted as itself.
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(plain)) return plain;
  const [head = '', tail] = plain.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
