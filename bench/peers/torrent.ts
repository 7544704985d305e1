/**
 * Just enough BitTorrent metainfo for the benchmark: bencode, and a single-file .torrent
 * built from the payload. Written here rather than taken from npm so that the pieces are hashed
 * once, in this process, and timed (and aria2 needs nothing from the npm cache but the tracker).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';

export type Bencoded = number | Buffer | Bencoded[] | { [key: string]: Bencoded };

export function bencode(value: Bencoded | string): Buffer {
  const parts: Buffer[] = [];
  const put = (v: Bencoded | string): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`bencode: ${v} is not a whole number`);
      parts.push(Buffer.from(`i${v}e`));
    } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const bytes = typeof v === 'string' ? Buffer.from(v) : v;
      parts.push(Buffer.from(`${bytes.length}:`), bytes);
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from('l'));
      v.forEach(put);
      parts.push(Buffer.from('e'));
    } else {
      parts.push(Buffer.from('d'));
      // Keys sorted as raw bytes, as the format requires (the info hash depends on it).
      for (const key of Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
        put(key);
        put(v[key]!);
      }
      parts.push(Buffer.from('e'));
    }
  };
  put(value);
  return Buffer.concat(parts);
}

/** The part of a .torrent that does not depend on the tracker: hashed once, reused per tracker. */
export interface TorrentInfo {
  name: string;
  length: number;
  pieceLength: number;
  /** SHA-1 of every piece, concatenated. */
  pieces: Buffer;
}

/**
 * Hashes `file` in pieces of `pieceLength` bytes. The torrent is marked private: both clients then
 * keep to the tracker (no DHT, no peer exchange, no local discovery), whatever else they are told.
 */
export async function hashPieces(file: string, name: string, pieceLength: number): Promise<TorrentInfo> {
  const handle = await fs.open(file, 'r');
  const hashes: Buffer[] = [];
  let length = 0;
  try {
    const buffer = Buffer.allocUnsafe(pieceLength);
    for (;;) {
      // Fill a whole piece (a read may return less), then hash it.
      let filled = 0;
      while (filled < pieceLength) {
        const { bytesRead } = await handle.read(buffer, filled, pieceLength - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled === 0) break;
      hashes.push(createHash('sha1').update(buffer.subarray(0, filled)).digest());
      length += filled;
      if (filled < pieceLength) break;
    }
  } finally {
    await handle.close();
  }
  return { name, length, pieceLength, pieces: Buffer.concat(hashes) };
}

function infoDict(info: TorrentInfo): Bencoded {
  return {
    length: info.length,
    name: Buffer.from(info.name),
    'piece length': info.pieceLength,
    pieces: info.pieces,
    private: 1,
  };
}

/** A complete .torrent announcing to `announce` only. */
export function torrentFile(info: TorrentInfo, announce: string): Buffer {
  return bencode({
    announce: Buffer.from(announce),
    'created by': Buffer.from('swarmshare bench'),
    info: infoDict(info),
  });
}
