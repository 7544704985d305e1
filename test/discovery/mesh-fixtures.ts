import { ephemeralCredentials, type Credentials } from '../../src/transport/credentials.js';
import { createSecureServer } from '../../src/transport/tls.js';
/**
 * Fixtures for discovery tests: real manifests without files behind them (the mesh never reads a
 * chunk), chunk servers that offer them, and meshes torn down with the test.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { Endpoint } from '../../src/address.js';
import { MIN_CHUNK_SIZE, PEER_PROTOCOL, PEER_VERSIONS } from '../../src/constants.js';
import { PeerMesh, type PeerMeshOptions } from '../../src/discovery/mesh.js';
import { ChunkServer, type ChunkServerOptions } from '../../src/peer/chunk-server.js';
import { Bitfield } from '../../src/storage/bitfield.js';
import { computeFileId, type Manifest } from '../../src/storage/manifest.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { serverHandshake } from '../../src/wire/handshake.js';
import type { Offer } from '../../src/wire/peer-messages.js';

/** A valid manifest (its id matches its hashes) of a file of `chunks` chunks that exists nowhere. */
export function fakeManifest(name: string, chunks: number): Manifest {
  const size = chunks * MIN_CHUNK_SIZE - 100;
  const hashes = randomBytes(32 * chunks);
  return { id: computeFileId(size, MIN_CHUNK_SIZE, hashes), name, size, chunkSize: MIN_CHUNK_SIZE, hashes };
}

export interface Holding {
  manifest: Manifest;
  /** The chunks held (default: all). Tests change it, then call broadcastHave/broadcastOffers. */
  chunks: Bitfield;
}

export interface TestPeerOptions {
  name?: string;
  /** Who the peer is (two test peers may share one identity). Default: a throw-away identity. */
  credentials?: Credentials;
  /** Listen on this port (to come back where a closed peer was). Default: any free port. */
  port?: number;
  files?: { manifest: Manifest; chunks?: Bitfield }[];
  /** What PEERS lists (the array may be changed later). */
  known?: Endpoint[];
  /** GET_MANIFEST is answered with this manifest, whatever is asked: a liar. */
  lie?: Manifest;
  extra?: Partial<ChunkServerOptions>;
}

export interface TestPeer {
  server: ChunkServer;
  credentials: Credentials;
  peerId: Buffer;
  name: string;
  endpoint: Endpoint;
  holdings: Map<string, Holding>;
  known: Endpoint[];
  /** GET_MANIFEST requests answered. */
  manifestRequests: () => number;
  /** Peers that introduced themselves (onPeerInfo). */
  introduced: { peerId: Buffer; name: string; host: string; port: number }[];
  close: () => Promise<void>;
}

/** A chunk server on 127.0.0.1 that offers `files` and serves no chunk; closed when the test ends. */
export async function startTestPeer(t: TestContext, options: TestPeerOptions = {}): Promise<TestPeer> {
  const credentials = options.credentials ?? (await ephemeralCredentials());
  const peerId = credentials.peerId;
  const name = options.name ?? `peer-${peerId.toString('hex').slice(0, 6)}`;
  const holdings = new Map<string, Holding>();
  for (const { manifest, chunks } of options.files ?? []) {
    holdings.set(manifest.id.toString('hex'), {
      manifest,
      chunks: chunks ?? Bitfield.full(Math.ceil(manifest.size / manifest.chunkSize)),
    });
  }
  const known = options.known ?? [];
  const introduced: TestPeer['introduced'] = [];
  let manifestRequests = 0;
  const server = new ChunkServer({
    provider: async () => null,
    credentials,
    self: { name },
    offers: () => [...holdings.values()].map(offerOf),
    knownPeers: () => known,
    manifest: (fileId) => {
      manifestRequests++;
      return options.lie ?? holdings.get(fileId.toString('hex'))?.manifest ?? null;
    },
    onPeerInfo: (info) => introduced.push(info),
    ...options.extra,
  });
  t.after(() => server.close());
  const { port } = await server.listen(options.port ?? 0, '127.0.0.1');
  return {
    server,
    credentials,
    peerId,
    name,
    endpoint: { host: '127.0.0.1', port },
    holdings,
    known,
    manifestRequests: () => manifestRequests,
    introduced,
    close: () => server.close(),
  };
}

export function offerOf({ manifest, chunks }: Holding): Offer {
  const { id, name, size, chunkSize } = manifest;
  return { fileId: id, name, size, chunkSize, chunks };
}

/** A mesh with fast reconnects, closed when the test ends. */
export function startMesh(t: TestContext, options: Partial<PeerMeshOptions> = {}): PeerMesh {
  const mesh = new PeerMesh({
    self: { peerId: randomBytes(32), name: 'mesh', port: 0 },
    reconnectMinMs: 100,
    reconnectMaxMs: 1_000,
    connectTimeoutMs: 2_000,
    ...options,
  });
  t.after(() => mesh.close());
  return mesh;
}

/**
 * A peer speaking raw frames after the handshake, for what a real server would not send. `onClient`
 * gets each handshaken connection; the server is closed when the test ends.
 */
export async function rawPeer(
  t: TestContext,
  onClient: (conn: FramedConnection, selfId: Buffer) => void,
): Promise<{ endpoint: Endpoint; connections: () => number; peerId: Buffer }> {
  let connections = 0;
  const conns = new Set<FramedConnection>();
  const credentials = await ephemeralCredentials();
  const server = createSecureServer({ credentials, handshakeTimeoutMs: 5000 }, (socket, remotePeerId) => {
    connections++;
    const conn = new FramedConnection(socket, { maxFrame: 1 << 20, remotePeerId });
    conns.add(conn);
    conn.once('close', () => conns.delete(conn));
    serverHandshake(conn, PEER_PROTOCOL, PEER_VERSIONS).then(
      () => {
        conn.onFrame(() => undefined);
        onClient(conn, credentials.peerId);
      },
      () => conn.destroy(),
    );
  });
  t.after(async () => {
    for (const conn of conns) conn.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: { host: '127.0.0.1', port },
    connections: () => connections,
    peerId: credentials.peerId,
  };
}
