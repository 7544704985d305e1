/**
 * The OpenAPI documents of both dashboards, built from their route schemas without serving
 * anything: for `npm run openapi` (docs/openapi-*.json) and the test that keeps those files in
 * step with the code. The same documents are served at /docs/openapi.json.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PeerNode } from '../peer/peer-node.js';
import { TrackerServer } from '../tracker/server.js';
import { PeerDashboard } from './peer-dashboard.js';
import { TrackerDashboard } from './tracker-dashboard.js';

export interface OpenApiDocuments {
  tracker: Record<string, unknown>;
  peer: Record<string, unknown>;
}

export async function openApiDocuments(): Promise<OpenApiDocuments> {
  const trackerDashboard = await TrackerDashboard.create(new TrackerServer());
  const tracker = await trackerDashboard.openapi().finally(() => trackerDashboard.close());
  // A peer needs a folder, and serves on loopback for the moment it takes; nothing is shared.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'swarmshare-openapi-'));
  try {
    const node = await PeerNode.start({
      dir,
      host: '127.0.0.1',
      lan: false,
      shareOnStart: false,
      ephemeralIdentity: true,
      name: 'openapi',
    });
    try {
      const peerDashboard = await PeerDashboard.create(node);
      const peer = await peerDashboard.openapi().finally(() => peerDashboard.close());
      return { tracker, peer };
    } finally {
      await node.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
