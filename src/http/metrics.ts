/**
 * The tracker's Prometheus metrics, read from the tracker when scraped (nothing is counted twice):
 * live peers, files and connections as gauges; requests by kind, refusals by kind and code, and
 * the bytes of files announced as counters. A registry per tracker, so several can live in one
 * process (tests) without their metrics mixing.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { TrackerServer } from '../tracker/server.js';

export function createTrackerMetrics(tracker: TrackerServer): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'swarmshare_tracker_peers',
    help: 'Live registered peers.',
    registers,
    async collect() {
      this.set((await tracker.store.stats()).peers);
    },
  });
  new Gauge({
    name: 'swarmshare_tracker_files',
    help: 'Files in the catalog (held by at least one live peer).',
    registers,
    async collect() {
      this.set((await tracker.store.stats()).files);
    },
  });
  new Gauge({
    name: 'swarmshare_tracker_connections',
    help: 'Open tracker-protocol connections, registered or not.',
    registers,
    collect() {
      this.set(tracker.stats.connections);
    },
  });
  new Counter({
    name: 'swarmshare_tracker_requests_total',
    help: 'Tracker-protocol requests handled, by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      for (const [kind, count] of Object.entries(tracker.activity.counters().requests)) {
        this.inc({ kind }, count);
      }
    },
  });
  new Counter({
    name: 'swarmshare_tracker_refusals_total',
    help: 'Requests, announced files and connections refused, by kind and error code.',
    labelNames: ['kind', 'code'],
    registers,
    collect() {
      this.reset();
      for (const { kind, code, count } of tracker.activity.counters().refusals)
        this.inc({ kind, code }, count);
    },
  });
  new Counter({
    name: 'swarmshare_tracker_announced_bytes_total',
    help: 'Sizes of the files accepted in ANNOUNCE requests, summed.',
    registers,
    collect() {
      this.reset();
      this.inc(tracker.activity.counters().announcedBytes);
    },
  });
  return registry;
}
