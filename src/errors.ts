/**
 * Errors with stable codes. Tests and callers match on `code`, never on message text.
 * A remote's error arrives with its code intact (see RemoteError).
 */

export type ErrorCode =
  | 'ERR_PROTOCOL' // a frame that does not decode, or a message out of place
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_NOT_REGISTERED'
  | 'ERR_ALREADY_REGISTERED'
  | 'ERR_DUPLICATE_PEER'
  | 'ERR_BAD_MANIFEST'
  | 'ERR_BAD_NAME'
  | 'ERR_UNKNOWN_FILE'
  | 'ERR_UNKNOWN_CHUNK'
  | 'ERR_CHOKED' // a chunk request refused for now (no upload slot): not "does not have it"
  | 'ERR_LIMIT'
  | 'ERR_RATE_LIMITED' // too many requests lately: the same request may succeed a little later
  | 'ERR_TIMEOUT'
  | 'ERR_CLOSED'
  | 'ERR_IN_PROGRESS' // the same file is already being downloaded
  | 'ERR_CANCELLED' // stopped on request: a cancelled download or chunk request
  | 'ERR_INTERRUPTED' // a download stopped (signal, shutdown) with its partial file kept for a resume
  | 'ERR_DISK_FULL' // no space left (or over quota) where a download writes
  | 'ERR_NOT_WRITABLE' // a download's folder cannot be written (permissions, read-only filesystem)
  | 'ERR_UNREACHABLE'
  | 'ERR_CHUNK_HASH_MISMATCH'
  | 'ERR_FILE_HASH_MISMATCH'
  | 'ERR_NO_SOURCES'
  | 'ERR_AMBIGUOUS_NAME'
  | 'ERR_NOT_FOUND'
  | 'ERR_OUTSIDE_DIR'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_PEER_AUTH' // the other end is not who it claims, or not whom we dialled
  | 'ERR_SWARM_SECRET' // a private swarm's secret is missing, wrong, or not expected
  | 'ERR_IO';

export class SwarmError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwarmError';
    this.code = code;
  }
}

/** An error that the other end of a connection reported to us. */
export class RemoteError extends SwarmError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'RemoteError';
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return value.startsWith('ERR_') && value.length <= 64;
}

/** The code of any thrown value: ours, Node's (ECONNREFUSED...), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
