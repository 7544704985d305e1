/**
 * A LanDiscovery in its own process, for tests across network namespaces (see netns.ts).
 * Usage: node lan-node.js '<json LanNodeConfig>'
 * Prints one JSON line per event on stdout: {"event":"ready"} once it listens, then
 * {"event":"offer","offer":LanOffer} and {"event":"expired","offer":LanOffer}. A line "announce"
 * on stdin announces at once; it exits when its stdin closes (the parent is gone).
 * Without arguments it exits at once.
 */
import { createInterface } from 'node:readline';
import { LanDiscovery, type LanOffer } from '../../src/discovery/lan.js';

export interface LanNodeConfig {
  peerId: string; // hex
  name: string;
  tcpPort: number;
  files: { fileId: string; name: string; size: number }[];
  group?: string;
  port?: number;
  interfaceAddress?: string;
  intervalMs?: number;
  expiryMs?: number;
}

export type LanNodeEvent = { event: 'ready' } | { event: 'offer' | 'expired'; offer: LanOffer };

const [configText] = process.argv.slice(2);
if (!configText) process.exit(0); // `node --test dist/test/` may run every file: nothing to do then

const config = JSON.parse(configText) as LanNodeConfig;
const print = (event: LanNodeEvent): void => void process.stdout.write(`${JSON.stringify(event)}\n`);
const lan = new LanDiscovery({
  self: { peerId: Buffer.from(config.peerId, 'hex'), name: config.name, port: config.tcpPort },
  offers: () => config.files.map((f) => ({ ...f, fileId: Buffer.from(f.fileId, 'hex') })),
  group: config.group,
  port: config.port,
  interfaceAddress: config.interfaceAddress,
  intervalMs: config.intervalMs,
  expiryMs: config.expiryMs,
});
lan.on('offer', (offer) => print({ event: 'offer', offer }));
lan.on('expired', (offer) => print({ event: 'expired', offer }));
await lan.start();
print({ event: 'ready' });
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line.trim() === 'announce') lan.announceNow();
});
input.on('close', () => void lan.close().then(() => process.exit(0)));
