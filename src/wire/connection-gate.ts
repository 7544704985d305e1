/**
 * Admission of incoming connections, in total and per remote address: a server asks the gate when
 * it accepts a socket, before any other work (no framing, no timers, no handshake), and the place is
 * given back when the socket closes. The gate knows every socket it admitted, so a server shutting
 * down closes those still in a handshake too. One gate per server.
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

/** Refused: which bound was reached, for the log and the counters. */
export interface Refused {
  bound: 'connections' | 'per-address';
  limit: number;
}

export class ConnectionGate {
  /** Sockets admitted and not yet closed, with their address keys. */
  private readonly admitted = new Map<net.Socket, string>();
  /** Connections admitted per address key; an address with none has no entry. */
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: ConnectionGateLimits) {}

  /** Connections admitted and not yet closed. */
  get connections(): number {
    return this.admitted.size;
  }

  /**
   * Admits `socket` within the limits and holds its place until it closes: null when admitted, else
   * the bound that refused it. `makeRoom` is asked when only the total is reached (the address has
   * room); true means it closed another connection, whose place is given back once its socket has
   * closed, so the newcomer is admitted over the total meanwhile.
   */
  admit(socket: net.Socket, makeRoom?: () => boolean): Refused | null {
    const { maxConnections, maxPerAddress } = this.limits;
    const key = addressKey(socket.remoteAddress ?? '');
    const count = this.perAddress.get(key) ?? 0;
    if (count >= maxPerAddress) return { bound: 'per-address', limit: maxPerAddress };
    if (this.admitted.size >= maxConnections && !makeRoom?.())
      return { bound: 'connections', limit: maxConnections };
    this.admitted.set(socket, key);
    this.perAddress.set(key, count + 1);
    socket.once('close', () => this.release(socket));
    return null;
  }

  /** Destroys every admitted socket still open (a server shutting down). */
  closeAll(): void {
    for (const socket of this.admitted.keys()) socket.destroy();
  }

  private release(socket: net.Socket): void {
    const key = this.admitted.get(socket);
    if (key === undefined) return;
    this.admitted.delete(socket);
    const left = (this.perAddress.get(key) ?? 1) - 1;
    if (left > 0) this.perAddress.set(key, left);
    else this.perAddress.delete(key);
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
