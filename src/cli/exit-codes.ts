/** Process exit codes of the command line, documented in the README. */
import { errorCode } from '../errors.js';

export const EXIT_OK = 0;
/** The operation failed: unreachable tracker, unknown file, failed download... */
export const EXIT_FAILED = 1;
/** The command line itself was wrong. */
export const EXIT_USAGE = 2;
/** A name matched several files: ask again with an id. */
export const EXIT_AMBIGUOUS = 3;

export function exitCodeFor(err: unknown): number {
  const code = errorCode(err);
  if (code === 'ERR_INVALID_ARGUMENT') return EXIT_USAGE;
  if (code === 'ERR_AMBIGUOUS_NAME') return EXIT_AMBIGUOUS;
  return EXIT_FAILED;
}
