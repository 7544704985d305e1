/**
 * Text that came from the network or the disk (file and peer names, remote error messages, paths),
 * made safe to print on a terminal. Such text may hold characters that a terminal acts on instead
 * of showing: ESC starts sequences that move the cursor, recolour, retitle the window or write to
 * the clipboard; CR and BS overwrite what was printed; C1 controls (U+009B is CSI) do the same on
 * some terminals. Others hide or disguise text: bidi embeddings, overrides, isolates and marks
 * reorder what follows ("photo\u202egpj.exe" shows as "photoexe.jpg"), line and paragraph
 * separators break lines. Each is shown as an escape instead (`\x1b`, `\u202e`), which cannot act.
 * Everything else, any script or emoji, is printed as it is.
 *
 * Every line the command line prints that holds such text goes through escapeForTerminal, and every
 * log line through escapeJsonForTerminal: one rule for all output.
 */

/** C0 controls, DEL, C1 controls; the Arabic letter mark; LRM, RLM; U+2028-U+202E; U+2066-U+2069. */
// eslint-disable-next-line no-control-regex
const ACTIVE_OR_HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
/** The same, but for C0 controls, which JSON already escapes (JSON.stringify, pino). */
const LEFT_AS_IS_BY_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function hex(c: string, digits: number): string {
  return c.charCodeAt(0).toString(16).padStart(digits, '0');
}

/** `text` with every character that could act on a terminal or hide text shown as an escape. */
export function escapeForTerminal(text: string): string {
  return text.replace(ACTIVE_OR_HIDDEN, (c) => (c <= '\u00ff' ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** Text of several lines (a table): each line escaped, the line breaks kept. */
export function escapeLinesForTerminal(text: string): string {
  return text.split('\n').map(escapeForTerminal).join('\n');
}

/**
 * A JSON text (JSON.stringify's, a log line) with the characters JSON leaves as they are written as
 * `\u` escapes instead: still valid JSON that parses to the very same value.
 */
export function escapeJsonForTerminal(json: string): string {
  return json.replace(LEFT_AS_IS_BY_JSON, (c) => `\\u${hex(c, 4)}`);
}

/** JSON.stringify for output a person may read on a terminal (`--json`). */
export function jsonForTerminal(value: unknown): string {
  return escapeJsonForTerminal(JSON.stringify(value));
}
