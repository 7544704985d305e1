/**
 * One control connection of the mesh: a PeerClient to a known host, and our view of what that peer
 * offers, kept up to date by its OFFERS (which replace the view) and HAVE (which add a chunk).
 *
 * The link is "identified" once the peer's INFO arrives (it must within infoTimeoutMs, or the link
 * closes), and "greeted" once its INFO, OFFERS and PEERS have all arrived, or greetingGraceMs after
 * its INFO for a peer that sends no OFFERS or PEERS: from then on its offers are as complete as a
 * one-shot listing can get.
 */
import { EventEmitter } from 'node:events';
import type { Endpoint } from '../address.js';
import { SwarmError } from '../errors.js';
import type { PeerClient } from '../peer/peer-client.js';
import { ProtocolError } from '../wire/codec.js';
import type { Offer, PeerInfo } from '../wire/peer-messages.js';

export interface MeshLinkOptions {
  /** The peer must send INFO within this time. */
  infoTimeoutMs: number;
  /** After INFO, how long to wait for OFFERS and PEERS before calling the link greeted anyway. */
  greetingGraceMs: number;
}

export interface MeshLinkEvents {
  info: [info: PeerInfo];
  /** The view of its offers changed (new OFFERS, or a HAVE for a chunk it did not have). */
  offers: [];
  peers: [peers: Endpoint[]];
  greeted: [];
  close: [reason: Error | undefined];
}

export class MeshLink extends EventEmitter<MeshLinkEvents> {
  /** What the peer offers, by file id (hex): a live view, replaced in place by each OFFERS. */
  readonly offers = new Map<string, Offer>();
  private infoSeen = false;
  private gotOffers = false;
  private gotPeers = false;
  private greeted = false;
  private closed = false;
  private timer: NodeJS.Timeout | null;

  constructor(
    readonly client: PeerClient,
    private readonly options: MeshLinkOptions,
  ) {
    super();
    this.timer = setTimeout(
      () => this.close(new SwarmError('ERR_TIMEOUT', `no INFO within ${options.infoTimeoutMs} ms`)),
      options.infoTimeoutMs,
    );
    this.timer.unref();
    client.on('info', (info) => this.onInfo(info));
    client.on('offers', (offers) => this.onOffers(offers));
    client.on('have', (fileId, index) => this.onHave(fileId, index));
    client.on('peers', (peers) => this.onPeers(peers));
    client.once('close', (reason) => this.onClose(reason));
    // Events that happened before we listened (the client's INFO comes first; the rest follows it).
    if (client.peerInfo) queueMicrotask(() => this.onInfo(client.peerInfo!));
    if (client.isClosed) queueMicrotask(() => this.onClose(client.closedBecause));
  }

  get info(): PeerInfo | null {
    return this.client.peerInfo;
  }

  get isGreeted(): boolean {
    return this.greeted;
  }

  /** Closes the connection; `reason` (a ProtocolError for bad input) is reported with 'close'. */
  close(reason?: Error): void {
    this.client.close(reason);
  }

  private onInfo(info: PeerInfo): void {
    if (this.infoSeen || this.closed) return;
    this.infoSeen = true;
    this.clearTimer();
    this.emit('info', info);
    if (this.closed || this.checkGreeted()) return;
    this.timer = setTimeout(() => this.greet(), this.options.greetingGraceMs);
    this.timer.unref();
  }

  private onOffers(offers: Offer[]): void {
    this.offers.clear();
    for (const offer of offers) this.offers.set(offer.fileId.toString('hex'), offer);
    this.gotOffers = true;
    this.emit('offers');
    this.checkGreeted();
  }

  private onHave(fileId: Buffer, index: number): void {
    const offer = this.offers.get(fileId.toString('hex'));
    if (!offer) return; // not in its current offers: nothing to update
    if (index >= offer.chunks.size) {
      this.close(new ProtocolError(`HAVE for chunk ${index} of a file of ${offer.chunks.size} chunks`));
      return;
    }
    if (offer.chunks.set(index)) this.emit('offers');
  }

  private onPeers(peers: Endpoint[]): void {
    this.gotPeers = true;
    this.emit('peers', peers);
    this.checkGreeted();
  }

  private checkGreeted(): boolean {
    if (this.infoSeen && this.gotOffers && this.gotPeers) this.greet();
    return this.greeted;
  }

  private greet(): void {
    if (this.greeted || this.closed) return;
    this.greeted = true;
    this.clearTimer();
    this.emit('greeted');
  }

  private onClose(reason: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.emit('close', reason);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
