/**
 * Every fuzz property, grouped by decoder (the order of the report of `npm run fuzz`): the frame
 * decoders, the handshake, the tracker and peer messages, the manifest layout, the LAN offers (open and sealed), the
 * partial-download state and the hosts file.
 */
import { fileProperties } from './file-properties.js';
import { frameProperties } from './frame-properties.js';
import type { FuzzProperty } from './harness.js';
import { wireCodecProperties } from './wire-codecs.js';

export function allProperties(): FuzzProperty[] {
  return [...frameProperties(), ...wireCodecProperties(), ...fileProperties()];
}

/** The decoders, in order, each once. */
export function decoderNames(properties: readonly FuzzProperty[]): string[] {
  return [...new Set(properties.map((p) => p.decoder))];
}
