/**
 * Claims a download in a process of its own, for the tests of claims across processes.
 * Usage: node claim-holder.js <claimPath>
 * Prints one JSON line, {"claimed": true} or {"claimed": false, "code": ..., "message": ...}, then
 * waits for its stdin to close (holding the claim, if it got it), releases it and exits.
 * Without arguments it exits at once.
 */
import { claimDownload } from '../../src/storage/download-claim.js';
import { errorCode, errorMessage } from '../../src/errors.js';

const claimPath = process.argv[2];
if (!claimPath) process.exit(0);
let result: Record<string, unknown>;
let release = async (): Promise<void> => undefined;
try {
  const claim = await claimDownload(claimPath, 'movie.mkv');
  release = () => claim.release();
  result = { claimed: true };
} catch (err) {
  result = { claimed: false, code: errorCode(err), message: errorMessage(err) };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void release().then(() => process.exit(0));
});
