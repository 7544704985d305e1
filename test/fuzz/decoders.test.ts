/**
 * Property-based fuzzing of every decoder that reads hostile input, in its default-run size (a few
 * seconds in all; `npm run fuzz` runs the same properties for as long as asked). Hostile cases covered,
 * per decoder (the properties themselves are in test/fuzz/*-properties.ts and wire-codecs.ts):
 *
 *   frame decoders (FrameDecoder; DirectFrameDecoder when built): valid frames split at every kind of
 *     boundary and cut anywhere; random headers (0, over the cap, up to 2^32 - 1) mixed with valid
 *     frames and noise: the error comes at the bad header's 4th byte, and no Buffer beyond the cap is
 *     ever allocated;
 *   handshake (HELLO, WELCOME, REFUSE), every tracker message, every peer message, the manifest
 *   layout, LAN offers, open and sealed: random bytes (bare, after a valid type byte or magic, and
 *   past the datagram limit for LAN offers); valid messages round-trip; cut at every length; trailing
 *   bytes; bit flips, overwrites, insertions, deletions (which a sealed offer refuses as unauthentic); u8/u16/u32 fields (counts, lengths, sizes) set to huge values.
 *   Each either decodes to a message that re-encodes to the very same bytes, or throws our
 *   ProtocolError (ERR_PROTOCOL) and nothing else, allocating no Buffer beyond the input's size
 *   (3 bytes per input byte at most, for a string's UTF-8 check), and within a second;
 *   partial-download state: round trip; truncation; trailing bytes; random bytes; mutations, with and
 *     without a recomputed checksum; huge counts; another file's state: a reason, never an exception;
 *   hosts file: random text (address characters, brackets, comments, whitespace, CR, NUL, any code
 *     point); valid files decorated with comments, blanks and CRLF; mutated valid files: never throws,
 *     only valid, unique hosts that print and parse back to themselves.
 *
 * A failure prints fast-check's seed and path: `fc.assert(property, { seed, path })` replays it.
 */
import { describe, test } from 'node:test';
import { allProperties, decoderNames } from './targets.js';

const properties = allProperties();

for (const decoder of decoderNames(properties)) {
  describe(`fuzz: ${decoder}`, () => {
    for (const property of properties.filter((p) => p.decoder === decoder)) {
      test(property.name, () => property.assert({ numRuns: property.runs }));
    }
  });
}
