/**
 * The hosts file: peers a person lists by hand, one `host:port` (or `[v6-address]:port`) per line,
 * `#` starting a comment. It is watched by polling its status (fs.watchFile) rather than with
 * fs.watch: editors save by writing a new file and renaming it over the old one, which an inode
 * watch loses, and polling also sees a file created after we started or deleted (no hosts then).
 * A bad line is a warning naming it, never a failure: the other lines still count.
 *
 *   # the lab
 *   10.0.0.5:6881
 *   files.lab.example:6881   # the NAS
 *   [fe80::1%eth0]:6881
 */
import fs from 'node:fs';
import { formatEndpoint, parseEndpoint, type Endpoint } from '../address.js';
import {
  HOSTS_FILE_DEBOUNCE_MS,
  HOSTS_FILE_POLL_MS,
  MAX_HOST_BYTES,
  MAX_HOSTS_FILE_BYTES,
  MAX_HOSTS_FILE_LINES,
} from '../constants.js';
import { errorCode, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';

export interface HostsFileWatcher {
  /** Stops watching. Idempotent; onChange is not called after it. */
  close(): void;
  /** The hosts the file lists now (a copy); the initial list as soon as watchHostsFile returns. */
  current(): Endpoint[];
}

export interface HostsFileOptions {
  logger?: Logger;
  /** How often the file's status is checked (default HOSTS_FILE_POLL_MS). */
  pollMs?: number;
}

/** A problem with one line of a hosts file (`line` counts from 1). */
export interface HostsFileProblem {
  line: number;
  text: string;
  reason: string;
}

/**
 * Reads the hosts file at `file` now, then watches it: `onChange` gets the full new list each
 * time the hosts it lists change (not for edits that change nothing, such as a comment), and an
 * empty list when the file is deleted. It is not called for the initial list: read current().
 * A file that does not exist (yet) lists no hosts.
 */
export function watchHostsFile(
  file: string,
  onChange: (hosts: Endpoint[]) => void,
  options: HostsFileOptions = {},
): HostsFileWatcher {
  const log = (options.logger ?? silentLogger()).child({ component: 'hosts-file', file });
  let hosts = readHostsFileSync(file, log, true);
  let closed = false;
  let debounce: NodeJS.Timeout | null = null;
  let reading = false;
  let readAgain = false;

  // One read at a time, and one more if the file changed meanwhile: the last read always wins.
  const reread = async (): Promise<void> => {
    if (reading) {
      readAgain = true;
      return;
    }
    reading = true;
    try {
      do {
        readAgain = false;
        const next = await readHostsFile(file, log);
        if (closed) return;
        if (sameHosts(hosts, next)) continue;
        hosts = next;
        log.info({ hosts: next.length }, 'hosts file changed');
        try {
          onChange(copyHosts(next));
        } catch (err) {
          log.error({ err: errorMessage(err) }, 'hosts file listener failed');
        }
      } while (readAgain && !closed);
    } finally {
      reading = false;
    }
  };

  const onStat = (): void => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void reread();
    }, HOSTS_FILE_DEBOUNCE_MS);
  };
  fs.watchFile(file, { interval: options.pollMs ?? HOSTS_FILE_POLL_MS, persistent: false }, onStat);

  return {
    close(): void {
      if (closed) return;
      closed = true;
      fs.unwatchFile(file, onStat);
      if (debounce) clearTimeout(debounce);
      debounce = null;
    },
    current: () => copyHosts(hosts),
  };
}

/**
 * Parses the text of a hosts file: the endpoints in order, each once, and a problem for each
 * bad line. Only the first MAX_HOSTS_FILE_LINES lines are read.
 */
export function parseHostsFile(text: string): { hosts: Endpoint[]; problems: HostsFileProblem[] } {
  const hosts: Endpoint[] = [];
  const problems: HostsFileProblem[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.replace(/#.*/, '').trim();
    if (!text) continue;
    if (i >= MAX_HOSTS_FILE_LINES) {
      problems.push({ line: i + 1, text, reason: `only the first ${MAX_HOSTS_FILE_LINES} lines are read` });
      break;
    }
    const problem = (reason: string): void => {
      problems.push({ line: i + 1, text: text.slice(0, 100), reason });
    };
    if (/\s/.test(text)) {
      problem('one address per line');
      continue;
    }
    let endpoint: Endpoint;
    try {
      endpoint = parseEndpoint(text);
    } catch (err) {
      problem(errorMessage(err));
      continue;
    }
    if (endpoint.port === 0) problem('port 0 is not a peer address');
    else if (Buffer.byteLength(endpoint.host) > MAX_HOST_BYTES) problem('the host name is too long');
    else {
      const key = formatEndpoint(endpoint);
      if (seen.has(key)) continue;
      seen.add(key);
      hosts.push(endpoint);
    }
  }
  return { hosts, problems };
}

// ---- Reading ---------------------------------------------------------------------------------

type FileText = { text: string; truncated: boolean } | 'missing';

function readHostsFileSync(file: string, log: Logger, initial: boolean): Endpoint[] {
  let content: FileText | { error: unknown };
  try {
    content = readBoundedSync(file);
  } catch (error) {
    content = { error };
  }
  return toHosts(file, log, content, initial);
}

async function readHostsFile(file: string, log: Logger): Promise<Endpoint[]> {
  let content: FileText | { error: unknown };
  try {
    content = await readBounded(file);
  } catch (error) {
    content = { error };
  }
  return toHosts(file, log, content, false);
}

/** The hosts of a file's content, its problems logged; a file we cannot read lists none. */
function toHosts(
  file: string,
  log: Logger,
  content: FileText | { error: unknown },
  initial: boolean,
): Endpoint[] {
  if (content === 'missing') {
    if (initial) log.warn('the hosts file does not exist (yet): watching for it');
    else log.info('the hosts file is gone: no hosts from it');
    return [];
  }
  if ('error' in content) {
    log.warn({ err: errorMessage(content.error) }, 'cannot read the hosts file: no hosts from it');
    return [];
  }
  let text = content.text;
  if (content.truncated) {
    text = text.slice(0, text.lastIndexOf('\n') + 1); // a cut line is no address
    log.warn(`the hosts file is over ${MAX_HOSTS_FILE_BYTES} bytes: only its beginning is read`);
  }
  const { hosts, problems } = parseHostsFile(text);
  for (const { line, text: lineText, reason } of problems) {
    log.warn({ line, text: lineText }, `hosts file ${file} line ${line}: ${reason}`);
  }
  return hosts;
}

/** At most MAX_HOSTS_FILE_BYTES of the file: a huge file costs no more than that. */
async function readBounded(file: string): Promise<FileText> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (err) {
    if (isMissing(err)) return 'missing';
    throw err;
  }
  try {
    const buffer = Buffer.alloc(MAX_HOSTS_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    return decode(buffer, length);
  } finally {
    await handle.close();
  }
}

function readBoundedSync(file: string): FileText {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (isMissing(err)) return 'missing';
    throw err;
  }
  try {
    const buffer = Buffer.alloc(MAX_HOSTS_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const bytesRead = fs.readSync(fd, buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    return decode(buffer, length);
  } finally {
    fs.closeSync(fd);
  }
}

function decode(buffer: Buffer, length: number): FileText {
  const truncated = length > MAX_HOSTS_FILE_BYTES;
  return { text: buffer.toString('utf8', 0, Math.min(length, MAX_HOSTS_FILE_BYTES)), truncated };
}

function isMissing(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function sameHosts(a: Endpoint[], b: Endpoint[]): boolean {
  return a.length === b.length && a.every((host, i) => formatEndpoint(host) === formatEndpoint(b[i]!));
}

function copyHosts(hosts: Endpoint[]): Endpoint[] {
  return hosts.map(({ host, port }) => ({ host, port }));
}
