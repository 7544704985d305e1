/**
 * swarmshare's public API: the tracker, the peer node and the parts they are made of.
 * The command line (src/cli) is built on exactly this surface.
 */
export * from './tracker/index.js';
export * from './peer/index.js';
export { SharedFolder, type SharedFile } from './storage/shared-folder.js';
export { hashFile } from './storage/hasher.js';
export {
  chunkSizeFor,
  computeFileId,
  fileIdHex,
  validateManifest,
  validateManifestContent,
  type Manifest,
} from './storage/manifest.js';
export { fileNameProblem, safeFileName } from './storage/file-name.js';
export { Bitfield } from './storage/bitfield.js';
export { SwarmError, RemoteError, type ErrorCode } from './errors.js';
export { createLogger, silentLogger, type Logger } from './log.js';
export { parseEndpoint, formatEndpoint, type Endpoint } from './address.js';
export * as constants from './constants.js';
