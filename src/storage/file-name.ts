/**
 * File names that come from the network or from people. A name is always one path component,
 * never a path: what a file is saved under must not be able to reach outside the folder, fool the
 * person reading it, or misbehave on another system.
 *
 * Refused wherever a name is published (sharing a file, ANNOUNCE at the tracker, OFFERS and LAN
 * offers) and when a person types it to download by (ERR_BAD_NAME): names unsafe on any system.
 *   - empty, or over MAX_FILE_NAME_BYTES UTF-8 bytes (no file system takes more);
 *   - `.` and `..`, and names of dots and spaces only (Windows reads "..." or " " as the folder
 *     itself or drops them to nothing, and a person sees no name at all);
 *   - path separators `/` and `\`, and a drive prefix `X:` (a path, not a name, on some system);
 *   - C0 controls (NUL, ESC, newline...), DEL and C1 controls (U+0080-U+009F; U+009B is a
 *     terminal's CSI): they act on a terminal instead of showing, or break line-based tools;
 *   - Unicode bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder
 *     how the rest is shown, so "photo\u202egpj.exe" reads "photoexe.jpg".
 *
 * Sanitised, never refused, when a file is downloaded (safeFileName): the name from the network
 * may be any of the above, and the download goes on under a name derived from it. Sanitising also
 * makes names portable, though sharing them is allowed (they are ordinary names where they were
 * shared from): Windows device names (CON, NUL, COM1..., with any extension, which reach a device
 * instead of a file there), trailing dots and spaces (which Windows drops, so the name changes),
 * and `< > : " | ? *` (forbidden on Windows and FAT; `name:x` opens an NTFS stream of `name`).
 * A download is named the same on every system, and lands safely on a FAT or SMB volume too.
 */
import { MAX_FILE_NAME_BYTES, MAX_KEPT_EXTENSION_BYTES, MAX_QUOTED_NAME_CHARS } from '../constants.js';
import { SwarmError } from '../errors.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
const DOTS_AND_SPACES = /^[. ]+$/;
const DRIVE_PREFIX = /^[a-zA-Z]:/;

/** Everything safeFileName replaces with `_`: separators, controls, bidi controls, Windows' forbidden. */
// eslint-disable-next-line no-control-regex
const REPLACED = /[/\\\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069<>:"|?*]/g;
const TRAILING_DOTS_AND_SPACES = /[. ]+$/;
/** Windows device names: the part before the first dot, any case, trailing spaces ignored. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³]) *(\.|$)/i;

/** Why `name` cannot be published or typed as a file name, or null if it can (see the top). */
export function fileNameProblem(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES)
    return `the name is over ${MAX_FILE_NAME_BYTES} bytes`;
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  if (DOTS_AND_SPACES.test(name)) return 'the name is only dots and spaces';
  if (name.includes('/') || name.includes('\\')) return 'the name contains a path separator';
  if (DRIVE_PREFIX.test(name)) return 'the name starts with a drive letter';
  if (CONTROL.test(name)) return 'the name contains a control character';
  if (BIDI_CONTROL.test(name)) return 'the name contains a bidirectional text control';
  return null;
}

/** Throws ERR_BAD_NAME unless `name` is a safe single file name. */
export function assertFileName(name: string): void {
  const problem = fileNameProblem(name);
  if (problem) throw new SwarmError('ERR_BAD_NAME', `bad file name ${quoteName(name)}: ${problem}`);
}

/**
 * The name a file from the network is saved under: `name` itself when it is safe and portable,
 * otherwise a name derived from it. A drive prefix is dropped; separators, controls, bidi controls
 * and `< > : " | ? *` become `_`; trailing dots and spaces go; a Windows device name gets a `_` in
 * front; a name over MAX_FILE_NAME_BYTES is cut on a code point boundary, keeping a short extension.
 * When nothing is left (an empty name, `.`, `..`, dots and spaces only), `fallback` is used, which
 * must itself be safe and portable (a name made of the file id is). Applying it twice changes
 * nothing more.
 */
export function safeFileName(name: string, fallback: string): string {
  const fit = (text: string): string =>
    dropTrailingDotsAndSpaces(cutToBytes(dropTrailingDotsAndSpaces(text), MAX_FILE_NAME_BYTES));
  let safe = fit(name.replace(DRIVE_PREFIX, '').replace(REPLACED, '_'));
  // A device name is looked for in what is left once cut and trimmed; with a `_` in front, no
  // further cut or trim can make it one again.
  if (WINDOWS_DEVICE.test(safe)) safe = fit(`_${safe}`);
  if (safe.length === 0) safe = fallback;
  assertFileName(safe);
  return safe;
}

function dropTrailingDotsAndSpaces(text: string): string {
  return text.replace(TRAILING_DOTS_AND_SPACES, '');
}

/**
 * `name` cut to at most `maxBytes` UTF-8 bytes on a code point boundary. An extension of up to
 * MAX_KEPT_EXTENSION_BYTES is kept (`long….pdf` still opens as a PDF); the part before it is cut.
 */
export function cutToBytes(name: string, maxBytes: number): string {
  if (Buffer.byteLength(name, 'utf8') <= maxBytes) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const extensionBytes = Buffer.byteLength(extension, 'utf8');
  const keep = extensionBytes <= MAX_KEPT_EXTENSION_BYTES ? extension : '';
  const stem = keep ? name.slice(0, dot) : name;
  let room = maxBytes - Buffer.byteLength(keep, 'utf8');
  let cut = '';
  // Whole code points only: never half of a surrogate pair, never a broken UTF-8 sequence.
  for (const codePoint of stem) {
    room -= Buffer.byteLength(codePoint, 'utf8');
    if (room < 0) break;
    cut += codePoint;
  }
  return cut + keep;
}

/**
 * A name quoted for a message: JSON-quoted (controls shown as escapes) and cut to
 * MAX_QUOTED_NAME_CHARS, so an error about a hostile name neither carries it whole nor acts on
 * whoever reads it. Printing still goes through escapeForTerminal, which also shows what JSON
 * leaves as it is (C1 and bidi controls).
 */
export function quoteName(name: string): string {
  const codePoints = Array.from(name);
  if (codePoints.length <= MAX_QUOTED_NAME_CHARS) return JSON.stringify(name);
  return `${JSON.stringify(codePoints.slice(0, MAX_QUOTED_NAME_CHARS).join(''))}...`;
}
