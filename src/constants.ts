/**
 * Protocol constants, limits and timeouts, in one place.
 * Every length read from the network is checked against one of these before anything is allocated.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

// ---- Protocols ---------------------------------------------------------------------------------
export const TRACKER_PROTOCOL = 'swarmshare-tracker';
export const PEER_PROTOCOL = 'swarmshare-peer';
/** Versions this build speaks, newest last. The handshake picks the highest one both sides know. */
export const TRACKER_VERSIONS: readonly number[] = [1];
export const PEER_VERSIONS: readonly number[] = [1];

export const DEFAULT_TRACKER_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';

// ---- Files and chunks --------------------------------------------------------------------------
/** Chunks are the unit of transfer and verification: a power of two between these bounds. */
export const MIN_CHUNK_SIZE = 256 * KiB;
export const MAX_CHUNK_SIZE = 16 * MiB;
/** The chunk size grows until a file has at most this many chunks (bounded manifests). */
export const TARGET_MAX_CHUNKS = 4096;
/** Hard cap on chunks in one manifest: 65536 * 32 bytes = 2 MiB of hashes. */
export const MAX_CHUNKS = 65536;
/** Largest file a manifest can describe (MAX_CHUNKS chunks of MAX_CHUNK_SIZE). */
export const MAX_FILE_SIZE = MAX_CHUNKS * MAX_CHUNK_SIZE;
export const HASH_BYTES = 32;
export const PEER_ID_BYTES = 32;
/** A file name (one path component) is at most this many UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 255;
export const MAX_PEER_NAME_BYTES = 64;
export const MAX_QUERY_BYTES = 255;
export const MAX_HOST_BYTES = 255;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
export const MAX_ERROR_CODE_BYTES = 64;

// ---- Frames ------------------------------------------------------------------------------------
/**
 * Frames a connection keeps between its handshake and the protocol taking over (the other side may
 * already be talking): a few greetings, never a flood; more is a protocol violation.
 */
export const MAX_FRAMES_BEFORE_HANDSHAKE = 16;
/** Tracker frames carry manifests and file lists; one manifest's hashes are at most 2 MiB. */
export const MAX_TRACKER_FRAME = 4 * MiB;
/** Peer frames carry one chunk at most, plus a small header. */
export const MAX_PEER_FRAME = MAX_CHUNK_SIZE + 4 * KiB;

// ---- Tracker limits ----------------------------------------------------------------------------
/**
 * Peers registered at once on one tracker (REGISTER beyond: ERR_LIMIT). With the per-peer bounds
 * below it bounds the tracker's memory; one process serves that many from one core.
 */
export const MAX_TRACKER_PEERS = 10_000;
/**
 * Files one peer may hold at the tracker, announced or registered by HAVE (ERR_LIMIT beyond); as many
 * as a peer shares at most (MAX_SHARED_FILES).
 */
export const MAX_FILES_PER_PEER = 100_000;
/**
 * Chunks of the files one peer holds at the tracker, added up over its files (each file counts all
 * its chunks, held or not: that is the size of the bitfield the tracker keeps for it). Bitfields are
 * per peer where manifests are shared, so this is what bounds the tracker's bitfield memory: 2^20
 * chunks is 128 KiB per peer (twice that with the copies LOCATE hands out), 1.2 GiB at most for
 * MAX_TRACKER_PEERS. An honest peer reaches it with 256 files of 1 GiB or 4 TiB of 16 GiB files.
 */
export const MAX_CHUNKS_PER_PEER = 1 << 20;
/** Files in a tracker's catalog (a new file beyond: ERR_LIMIT); LIST scans them all. */
export const MAX_TRACKER_FILES = 1_000_000;
/** Names one file id is listed under (the same content shared under other names); more are ignored. */
export const MAX_NAMES_PER_FILE = 16;
/** Manifests in one ANNOUNCE; a decoder refuses more (the client sends more in several). */
export const MAX_ANNOUNCE_BATCH = 256;
/** Chunk indices in one HAVE: TARGET_MAX_CHUNKS, a whole honest file at once; a decoder refuses more. */
export const MAX_HAVE_BATCH = 4096;
/** Files one LIST answers with at most (it still counts every match). */
export const MAX_LIST_RESULTS = 1000;
/**
 * Holders one LOCATE names, those with the most chunks first: several times the sources a download
 * uses (MAX_SOURCES_PER_DOWNLOAD), and with their bitfields (8 KiB at most each) and the manifest
 * (2 MiB at most), a reply within MAX_TRACKER_FRAME.
 */
export const MAX_LOCATE_PEERS = 200;
/** Requests a peer may have outstanding on its tracker session; more is a protocol violation. */
export const MAX_TRACKER_REQUESTS_IN_FLIGHT = 64;
/**
 * Requests one tracker session may send per second, sustained, and in a burst (a token bucket that
 * starts full); beyond, requests are answered ERR_RATE_LIMITED without being handled. Honest peers
 * stay far below: a peer's HAVEs are coalesced with one in flight, it LOCATEs each download every
 * RELOCATE_INTERVAL_MS and pings every HEARTBEAT_INTERVAL_MS; reconnecting, it re-announces up to
 * MAX_FILES_PER_PEER files in batches of MAX_ANNOUNCE_BATCH (391 requests), within the burst. The
 * tracker load benchmark's sessions send 2048 HAVE at full speed each (about 1000 per second each,
 * 100 sessions), also within the burst. A flood beyond costs the tracker a decode and a small reply
 * per request, and no memory: at most MAX_TRACKER_REQUESTS_IN_FLIGHT wait.
 */
export const TRACKER_REQUESTS_PER_SECOND = 1_000;
export const TRACKER_REQUEST_BURST = 5_000;
/** A peer's chunk report (HAVE) refused with ERR_RATE_LIMITED is sent again this much later, not lost. */
export const RATE_LIMITED_RETRY_MS = 1_000;
/**
 * REGISTER requests one tracker session may send (each costs a store operation, and a refused one
 * can be tried again under another id). The tracker link registers once per session; a session that
 * is refused (its peer id still registered on a session not yet expired) is closed and a new one
 * opened. Beyond, REGISTER is refused with ERR_LIMIT. A peer id has at most one session at a time
 * (ERR_DUPLICATE_PEER).
 */
export const MAX_REGISTER_ATTEMPTS_PER_SESSION = 8;

// ---- Timeouts (milliseconds) -------------------------------------------------------------------
/** A connection must complete the handshake (its first frame: HELLO) within this time. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * A frame a server is receiving must keep arriving at MIN_FRAME_BYTES_PER_SECOND on average, checked
 * every FRAME_TIMEOUT_MS from its first byte: a small frame must be complete within about
 * FRAME_TIMEOUT_MS, a large one may take as long as its length at that rate. Any byte keeps an idle
 * timer alive, so without this a peer trickling a byte at a time (a slow-loris) would hold its
 * connection, and whatever the frame reserved, for ever. 4 KiB/s is a dial-up modem's rate; a 4 MiB
 * tracker frame may take 17 minutes at it. Time in which the server itself is not reading
 * (backpressure) does not count against the sender.
 */
export const FRAME_TIMEOUT_MS = 10_000;
export const MIN_FRAME_BYTES_PER_SECOND = 4 * KiB;
/**
 * Peers ping the tracker this often; the tracker closes any session silent for PEER_EXPIRY_MS (its
 * idle timeout, registered or not: any byte received counts) and drops its peer. Three heartbeats.
 */
export const HEARTBEAT_INTERVAL_MS = 10_000;
export const PEER_EXPIRY_MS = 30_000;
/** A tracker client gives up on a request not answered within this time (and closes the session). */
export const TRACKER_REQUEST_TIMEOUT_MS = 15_000;
/**
 * The tracker closes a session whose request it has been handling for this long (a store that does
 * not answer): its client gave up on it at TRACKER_REQUEST_TIMEOUT_MS and reconnects anyway, and
 * the session's queue would otherwise wait behind it for ever.
 */
export const TRACKER_HANDLING_TIMEOUT_MS = 20_000;
/** How long a command waits for a tracker session before reporting it unreachable. */
export const TRACKER_READY_TIMEOUT_MS = 10_000;
/** A chunk request that has not completed in this time is given to another source. */
export const CHUNK_REQUEST_TIMEOUT_MS = 20_000;
/**
 * A peer-to-peer connection with no bytes either way for this long is closed; a chunk server also
 * closes a connection that has taken none of the PIECEs waiting for it for this long (so a client
 * that asks and never reads holds its chunks this long at most). Two minutes: a mesh link is kept
 * busy by PEERS every PEX_INTERVAL_MS, a download by its chunks.
 */
export const PEER_IDLE_TIMEOUT_MS = 120_000;
/** Deadline for a TCP connection we open (and, separately, for its handshake). */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Reconnect back-off towards the tracker: from the first value, doubling, up to the second. */
export const RECONNECT_MIN_MS = 500;
export const RECONNECT_MAX_MS = 10_000;

// ---- Peer limits -------------------------------------------------------------------------------
/** Chunk requests kept in flight to a new source, before its rate is known (pipelining). */
export const REQUESTS_PER_SOURCE = 4;
/** The fewest requests a connected source is kept busy with, however slow it is. */
export const MIN_REQUESTS_PER_SOURCE = 2;
/**
 * A source is given enough requests to keep it busy for one round trip plus this long at its
 * measured rate: a fast source is never idle, and a slow one holds at most this much work hostage.
 */
export const REQUEST_QUEUE_TARGET_MS = 500;
/** Bytes of chunk requests in flight to one source at most (they arrive in memory). */
export const MAX_IN_FLIGHT_BYTES_PER_SOURCE = 8 * MiB;
/** Chunks received and waiting to be verified and written, in bytes: beyond this, no new requests. */
export const MAX_WRITE_QUEUE_BYTES = 16 * MiB;
/** A download's first few chunks are picked at random, not rarest first: something to trade at once. */
export const RANDOM_FIRST_CHUNKS = 4;
/** Availability learned from HAVE messages re-sorts the rarest-first order at most this often. */
export const AVAILABILITY_REFRESH_MS = 500;
/** Chunk requests a serving peer accepts in flight on one connection; more is a protocol violation. */
export const MAX_SERVED_REQUESTS_PER_CONNECTION = 32;
/**
 * Connections a chunk server holds at once (download, mesh and one-shot clients); more are closed on
 * arrival.
 */
export const MAX_PEER_CONNECTIONS = 256;
/**
 * Connections a chunk server holds at once from one address (an IPv6 /64 counts as one address).
 * Generous, since peers behind one NAT share an address, and a peer may hold a download connection
 * and a mesh connection to the same seeder: 16 peers on one host use 32 at most. A quarter of
 * MAX_PEER_CONNECTIONS: one address cannot take every slot.
 */
export const MAX_PEER_CONNECTIONS_PER_ADDRESS = 64;
/**
 * When a chunk server is full, a newcomer takes the place of a connection that has asked for no chunk
 * or manifest for this long and has none in flight (the one that asked the longest ago is closed).
 * So connections that only hold places, an attacker's from a few addresses or idle mesh links, cannot
 * keep out a peer that wants chunks. Long enough for a client that has just connected to ask, and
 * for a download's pauses between requests to one source.
 */
export const PEER_EVICTABLE_AFTER_MS = 30_000;
/**
 * Largest frame a chunk server accepts: clients send only the handshake, INFO, REQUEST, CANCEL and
 * GET_MANIFEST.
 */
export const MAX_PEER_CLIENT_FRAME = 1024;
/**
 * Chunks of one connection that a chunk server reads (or is reading) and whose PIECE is not yet
 * flushed to the kernel; the connection's further requests wait their turn. Enough to keep a fast
 * client's pipe full; a client that stops reading holds at most this many chunks.
 */
export const SERVED_READS_PER_CONNECTION = 4;
/** Chunks a chunk server reads from disk at once, across all connections. */
export const SERVED_READS_PER_SERVER = 64;
/**
 * Bytes of chunks a chunk server has read (or is reading) and not yet flushed to the kernel, across
 * all connections: 64 chunks of 4 MiB. A chunk whose length its manifest does not give counts as
 * MAX_CHUNK_SIZE until it is read.
 */
export const MAX_SERVER_UNFLUSHED_BYTES = 256 * MiB;
/**
 * HAVE frames a chunk server keeps for a client that is not draining its socket; past this, it is
 * sent fresh OFFERS instead once it drains (they include every chunk those HAVEs announced).
 */
export const MAX_DEFERRED_HAVES = 64;
/** Sources one download talks to at once. */
export const MAX_SOURCES_PER_DOWNLOAD = 32;
/**
 * A source whose chunks fail verification this many times is banned from the download. More than
 * one, so a peer whose disk flipped a bit once is not lost; few, so a liar costs at most this many
 * chunks' worth of bandwidth (each is then fetched elsewhere).
 */
export const MAX_BAD_CHUNKS_PER_SOURCE = 3;
/**
 * Peers one download remembers as banned (by peer id and by address). Each ban cost its peer a
 * connection and chunks that failed, so real swarms stay far below; past it the oldest ban is
 * forgotten (that peer must lie again to be banned again), so throw-away identities cannot grow it.
 */
export const MAX_BANNED_SOURCES_PER_DOWNLOAD = 256;
/**
 * Requests a peer client cancelled (or gave up on) whose PIECE or REJECT may still arrive, and is then
 * dropped quietly rather than taken for unrequested data. Our chunk server stops answering a request
 * once it reads our CANCEL, so only answers already on their way arrive late; one that ignores CANCEL
 * (the protocol allows it) still holds at most MAX_SERVED_REQUESTS_PER_CONNECTION of our requests at
 * once. Either way a late answer is for one of the last few requests given up on: eight times that
 * bound is ample, and the oldest are forgotten first.
 */
export const MAX_ABANDONED_REQUESTS_REMEMBERED = 8 * MAX_SERVED_REQUESTS_PER_CONNECTION;
/** How often a download asks the tracker for new sources. */
export const RELOCATE_INTERVAL_MS = 3_000;
/** A download with no usable source for this long fails. */
export const NO_SOURCE_TIMEOUT_MS = 30_000;
/** Files one peer shares at most (its folder scanned, or shared one by one): ERR_LIMIT beyond. */
export const MAX_SHARED_FILES = 100_000;

/** Name of the state folder that a peer keeps inside its shared folder. */
export const STATE_DIR_NAME = '.swarmshare';

// ---- Tracker sessions (appended by the tracker) --------------------------------------------------
/** Open tracker connections, registered or not: every peer plus room for one-shot clients (list, get). */
export const MAX_TRACKER_SESSIONS = MAX_TRACKER_PEERS + 1_000;
/**
 * Open tracker connections from one address (an IPv6 /64 counts as one). Many honest peers may share
 * an address behind a NAT, and the tracker load benchmark runs 101 sessions from 127.0.0.1; one
 * address still cannot take more than a twentieth of MAX_TRACKER_SESSIONS.
 */
export const MAX_TRACKER_SESSIONS_PER_ADDRESS = 512;

// ---- Peer discovery: peer exchange and the mesh (appended by the mesh) ---------------------------
/** Files one OFFERS message lists at most; a peer sharing more offers the first ones. */
export const MAX_OFFERS = 1000;
/**
 * Largest frame other than a PIECE that a chunk server sends: a MANIFEST (up to 2 MiB of hashes)
 * or an OFFERS (cut to fit). Clients accept frames this large whatever chunk size they expect.
 */
export const MAX_PEER_CONTROL_FRAME = 2 * MiB + 4 * KiB;
/** Addresses one PEERS message (peer exchange) lists at most. */
export const MAX_PEX_PEERS = 50;
/** A chunk server tells its clients about other peers (PEERS) this often. */
export const PEX_INTERVAL_MS = 30_000;
/** A burst of changes to what a peer holds leaves as one OFFERS after this quiet time. */
export const OFFERS_DEBOUNCE_MS = 100;
/** Addresses a mesh remembers; addresses a person configured are kept beyond this bound. */
export const MAX_KNOWN_HOSTS = 256;
/** Outgoing control connections a mesh keeps at once. */
export const MAX_MESH_CONNECTIONS = 64;
/** New connection attempts a mesh makes per second at most, so a lying PEERS cannot cause a storm. */
export const MESH_DIALS_PER_SECOND = 10;
/** Reconnect back-off towards a known host: from the first value, doubling, up to the second. */
export const MESH_RECONNECT_MIN_MS = 1_000;
export const MESH_RECONNECT_MAX_MS = 30_000;

// ---- LAN offers and the hosts file (appended by LAN discovery) ----------------------------------
/**
 * LAN offers go to this multicast group: in 239.192.0.0/14, the IPv4 organisation-local scope
 * (RFC 2365), which needs no IANA assignment and which routers at an organisation's border never
 * forward (BitTorrent's local service discovery lives there too, at 239.192.152.143). 83.87 is
 * "SW". The TTL of 1 keeps every offer on its own link anyway.
 */
export const LAN_MULTICAST_GROUP = '239.192.83.87';
/** UDP port of LAN offers: outside the ephemeral range, not in the common service lists. */
export const LAN_PORT = 7797;
/** Largest LAN offer datagram, sent or accepted: under the 1280-byte IPv6 minimum MTU, so never fragmented. */
export const MAX_LAN_DATAGRAM = 1200;
/** Files described in one LAN offer (the datagram size is the real bound: about 25 with short names). */
export const MAX_LAN_OFFER_FILES = 64;
/** Announcements repeat this often, with +-20% jitter so peers started together do not stay in step. */
export const LAN_ANNOUNCE_INTERVAL_MS = 5_000;
/** An offer not repeated within this many intervals expires. */
export const LAN_EXPIRY_INTERVALS = 3;
/** Announcements asked for at once (announceNow) are at least this far apart. */
export const LAN_MIN_ANNOUNCE_GAP_MS = 250;
/** LAN peers remembered at once; offers from further peers are dropped until one expires. */
export const MAX_LAN_PEERS = 256;
/** New LAN peers reported per announce interval: an address storm costs a trickle of connections. */
export const MAX_NEW_LAN_PEERS_PER_INTERVAL = 16;
/** Files remembered per LAN peer (the rest is learnt over TCP once connected). */
export const MAX_LAN_FILES_PER_PEER = 64;
/** Datagrams processed per second; the rest are dropped unread (a flood costs bounded work). */
export const MAX_LAN_DATAGRAMS_PER_SECOND = 200;
/** Interfaces a LAN peer joins and announces on when no interface is given. */
export const MAX_LAN_INTERFACES = 32;
/** A repeated warning (garbage datagrams, a full peer table) is logged at most this often. */
export const LAN_WARN_INTERVAL_MS = 60_000;
/**
 * A sealed LAN offer (private swarm) whose timestamp is further than this from our clock, either
 * way, is refused: a recorded offer replayed later revives a departed peer for this long at most.
 * Two minutes covers the clock difference of machines kept by NTP with a wide margin; members whose
 * clocks differ by more do not find each other on the LAN (a known host or a tracker still works).
 */
export const LAN_SEALED_OFFER_MAX_SKEW_MS = 120_000;

/** The hosts file: lines read (the rest is ignored with a warning), bytes read, poll interval. */
export const MAX_HOSTS_FILE_LINES = 1024;
export const MAX_HOSTS_FILE_BYTES = 256 * KiB;
export const HOSTS_FILE_POLL_MS = 1_000;
/** Changes to the hosts file are read this long after the last one (editors write in several steps). */
export const HOSTS_FILE_DEBOUNCE_MS = 50;

// ---- Tracker memory bounds (appended by the tracker) ---------------------------------------------
/**
 * Request bytes one tracker session may hold decoded and waiting; beyond this its socket is not read
 * until the queue shrinks (so it may pass by at most the frame being received when it is reached).
 */
export const MAX_SESSION_QUEUED_BYTES = 8 * MiB;
/**
 * Request bytes waiting across all of a tracker's sessions; beyond this, sessions with requests
 * waiting are not read (a session with none may still read its next one).
 */
export const MAX_TRACKER_QUEUED_BYTES = 256 * MiB;
/** Manifest hash bytes the files one peer holds may add up to (each file it holds counts whole, once). */
export const MAX_MANIFEST_BYTES_PER_PEER = 64 * MiB;
/** Manifest hash bytes in a tracker's catalog, each file id counted once. */
export const MAX_TRACKER_MANIFEST_BYTES = 1024 * MiB;

// ---- Resumable downloads (appended by the partial-file state) -------------------------------------
/**
 * A download's state file (which chunks are verified) is saved at most this often while chunks
 * arrive, and always when the download stops: a crash loses at most this much work.
 */
export const PARTIAL_STATE_SAVE_INTERVAL_MS = 1_000;

// ---- Upload slots (appended by the choker) --------------------------------------------------------
/**
 * Connections a chunk server uploads to at once, besides one optimistic slot (see src/peer/choker.ts):
 * a few uploads at full speed finish chunks, which their receivers then pass on, where many at a
 * trickle each would leave everyone with half-sent chunks. The rest are choked (REJECT ERR_CHOKED)
 * and wait their turn.
 */
export const UPLOAD_SLOTS = 4;
/** The regular slots are given again this often: to who gave us the most, or in turns when seeding. */
export const UNCHOKE_INTERVAL_MS = 10_000;
/** The optimistic slot moves to a random choked peer this often, so newcomers get something to trade. */
export const OPTIMISTIC_UNCHOKE_INTERVAL_MS = 30_000;
/** A connection wants chunks while it has requests with us or asked within this time. */
export const UPLOAD_INTEREST_MS = 5_000;
/** Tit-for-tat counts the bytes a peer gave us (verified) over about this window. */
export const RECIPROCATION_WINDOW_MS = 20_000;

// ---- Names and paths (see src/storage/file-name.ts) ------------------------------------------------
/**
 * Names in an ANNOUNCE are decoded up to the largest length a `str` can give (u16), not just up to
 * MAX_FILE_NAME_BYTES, so the tracker refuses an over-long name per file with ERR_BAD_NAME rather
 * than dropping the session; the frame cap (MAX_TRACKER_FRAME) bounds what one ANNOUNCE holds.
 */
export const MAX_ANNOUNCED_NAME_BYTES = 0xffff;
/**
 * A name cut to fit MAX_FILE_NAME_BYTES keeps an extension up to this long: real ones (".jpeg",
 * ".torrent") are far shorter; a longer "extension" is just the end of a long name.
 */
export const MAX_KEPT_EXTENSION_BYTES = 32;
/** Error messages quote at most this many characters of a name: enough to recognise it. */
export const MAX_QUOTED_NAME_CHARS = 80;
