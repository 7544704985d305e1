/**
 * The manifest's wire layout, shared by the tracker protocol (ANNOUNCE, LOCATION) and the peer
 * protocol (MANIFEST):
 *
 *   bytes32 id | str name (<= 255) | u64 size | u32 chunkSize | blob hashes (<= 2 MiB)
 *
 * Decoding checks structure only; whoever receives a manifest checks its hashes against the id it
 * asked for (validateManifestContent), and the tracker checks the name of one announced to it.
 */
import { HASH_BYTES, MAX_CHUNKS, MAX_FILE_NAME_BYTES } from '../constants.js';
import type { Manifest } from '../storage/manifest.js';
import type { Reader, Writer } from './codec.js';

const MAX_HASH_BYTES = MAX_CHUNKS * HASH_BYTES;

export function writeManifest(w: Writer, m: Manifest): void {
  w.fixed(m.id, HASH_BYTES).str(m.name, MAX_FILE_NAME_BYTES).u64(m.size).u32(m.chunkSize);
  w.blob(m.hashes, MAX_HASH_BYTES);
}

/**
 * `maxNameBytes` is MAX_FILE_NAME_BYTES but for an ANNOUNCE, whose names the tracker decodes in
 * full to refuse the bad ones file by file (MAX_ANNOUNCED_NAME_BYTES).
 */
export function readManifest(r: Reader, maxNameBytes = MAX_FILE_NAME_BYTES): Manifest {
  const id = r.copy(HASH_BYTES, 'file id');
  const name = r.str(maxNameBytes, 'file name');
  const size = r.u64('size');
  const chunkSize = r.u32('chunk size');
  const hashes = Buffer.from(r.blob(MAX_HASH_BYTES, 'chunk hashes'));
  return { id, name, size, chunkSize, hashes };
}
