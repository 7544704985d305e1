import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Endpoint } from '../../src/address.js';
import { MAX_HOSTS_FILE_LINES } from '../../src/constants.js';
import { parseHostsFile, watchHostsFile, type HostsFileWatcher } from '../../src/discovery/hosts-file.js';
import { tempDir, waitFor } from '../helpers/wait.js';

const T = { timeout: 20_000 };
const POLL_MS = 20;

interface LogRecord {
  level: number;
  msg: string;
  line?: number;
}

/** A pino logger that keeps its records. */
function capturingLogger(): { logger: pino.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(JSON.parse(chunk.toString()) as LogRecord);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records };
}

const WARN = 40;

/** A watcher on `file`, closed at teardown, recording each list onChange got. */
function watch(
  t: TestContext,
  file: string,
): { watcher: HostsFileWatcher; changes: Endpoint[][]; records: LogRecord[] } {
  const { logger, records } = capturingLogger();
  const changes: Endpoint[][] = [];
  const watcher = watchHostsFile(file, (hosts) => changes.push(hosts), { logger, pollMs: POLL_MS });
  t.after(() => watcher.close());
  return { watcher, changes, records };
}

/** Replaces the file the way editors save: a new file renamed over the old one. */
async function replaceFile(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, text);
  await fs.rename(temp, file);
}

test('parses addresses, [v6] addresses, comments and blank lines; once each, in order', () => {
  const text = [
    '# peers of the lab',
    '',
    '10.0.0.5:6881',
    '  files.lab.example:7000   # the NAS  ',
    '[::1]:6882',
    '[fe80::1%eth0]:6883',
    '10.0.0.5:6881',
    '\t',
    '6884',
  ].join('\r\n');
  assert.deepEqual(parseHostsFile(text), {
    hosts: [
      { host: '10.0.0.5', port: 6881 },
      { host: 'files.lab.example', port: 7000 },
      { host: '::1', port: 6882 },
      { host: 'fe80::1%eth0', port: 6883 },
      { host: '127.0.0.1', port: 6884 },
    ],
    problems: [],
  });
});

test('a bad line is a problem naming the line, and the other lines still count', () => {
  const text = [
    'a:1',
    'no-port',
    'b:99999',
    'two words:1',
    '::1:80',
    'c:0',
    'd:2',
    'e\u0000f:3',
    'g/h:4',
    '[\u001b]:5',
  ].join('\n');
  const { hosts, problems } = parseHostsFile(text);
  assert.deepEqual(hosts, [
    { host: 'a', port: 1 },
    { host: 'd', port: 2 },
  ]);
  assert.deepEqual(
    problems.map((p) => [p.line, p.text]),
    [
      [2, 'no-port'],
      [3, 'b:99999'],
      [4, 'two words:1'],
      [5, '::1:80'],
      [6, 'c:0'],
      [8, 'e\u0000f:3'],
      [9, 'g/h:4'],
      [10, '[\u001b]:5'],
    ],
  );
  for (const problem of problems) assert.ok(problem.reason.length > 0);
});

test(`only the first ${MAX_HOSTS_FILE_LINES} lines are read`, () => {
  const lines = Array.from({ length: MAX_HOSTS_FILE_LINES + 10 }, (_, i) => `h${i}:1`);
  const { hosts, problems } = parseHostsFile(lines.join('\n'));
  assert.equal(hosts.length, MAX_HOSTS_FILE_LINES);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, MAX_HOSTS_FILE_LINES + 1);
});

test('reads the file at once, then reports each edit with the full new list', T, async (t) => {
  const file = path.join(await tempDir(t), 'hosts');
  await fs.writeFile(file, '10.0.0.1:1\n10.0.0.2:2\n');
  const { watcher, changes } = watch(t, file);
  assert.deepEqual(watcher.current(), [
    { host: '10.0.0.1', port: 1 },
    { host: '10.0.0.2', port: 2 },
  ]);
  assert.deepEqual(changes, [], 'no call for the initial list');

  await replaceFile(file, '10.0.0.2:2\n10.0.0.3:3\n'); // one removed, one added
  await waitFor(() => changes.length === 1, 'the edit');
  assert.deepEqual(changes[0], [
    { host: '10.0.0.2', port: 2 },
    { host: '10.0.0.3', port: 3 },
  ]);
  assert.deepEqual(watcher.current(), changes[0]);

  // An edit that changes no host is not reported; the next real one is, written in place.
  await replaceFile(file, '# a comment\n10.0.0.2:2\n10.0.0.3:3\n');
  await fs.appendFile(file, '[::1]:4\n');
  await waitFor(() => changes.length >= 2, 'the in-place edit');
  assert.equal(changes.length, 2);
  assert.deepEqual(changes[1], [
    { host: '10.0.0.2', port: 2 },
    { host: '10.0.0.3', port: 3 },
    { host: '::1', port: 4 },
  ]);
});

test('bad lines are logged as warnings naming them, and the rest is used', T, async (t) => {
  const file = path.join(await tempDir(t), 'hosts');
  await fs.writeFile(file, 'good:1\nbad line\n');
  const { watcher, changes, records } = watch(t, file);
  assert.deepEqual(watcher.current(), [{ host: 'good', port: 1 }]);
  const warnings = () => records.filter((r) => r.level === WARN);
  assert.equal(warnings().length, 1);
  assert.equal(warnings()[0]!.line, 2);
  assert.match(warnings()[0]!.msg, /line 2/);

  await replaceFile(file, 'good:1\nalso-bad\ngood:2\n');
  await waitFor(() => changes.length === 1, 'the edit');
  assert.deepEqual(changes[0], [
    { host: 'good', port: 1 },
    { host: 'good', port: 2 },
  ]);
  assert.equal(warnings().length, 2);
  assert.equal(warnings()[1]!.line, 2);
});

test('a deleted file lists no hosts; created again, its hosts come back', T, async (t) => {
  const file = path.join(await tempDir(t), 'hosts');
  await fs.writeFile(file, '10.0.0.1:1\n');
  const { watcher, changes } = watch(t, file);
  await fs.rm(file);
  await waitFor(() => changes.length === 1, 'the deletion');
  assert.deepEqual(changes[0], []);
  assert.deepEqual(watcher.current(), []);
  await fs.writeFile(file, '10.0.0.9:9\n');
  await waitFor(() => changes.length === 2, 'the file created again');
  assert.deepEqual(changes[1], [{ host: '10.0.0.9', port: 9 }]);
});

test('a file that does not exist yet is watched until it appears', T, async (t) => {
  const file = path.join(await tempDir(t), 'later', 'hosts');
  const { watcher, changes, records } = watch(t, file);
  assert.deepEqual(watcher.current(), []);
  assert.ok(records.some((r) => r.level === WARN && /does not exist/.test(r.msg)));
  await fs.mkdir(path.dirname(file));
  await fs.writeFile(file, '10.0.0.1:1\n');
  await waitFor(() => changes.length === 1, 'the new file');
  assert.deepEqual(changes[0], [{ host: '10.0.0.1', port: 1 }]);
  watcher.close();
  watcher.close(); // idempotent
});

test('an unreadable path (a directory) lists no hosts, with a warning, and does not throw', T, async (t) => {
  const dir = await tempDir(t);
  const { watcher, records } = watch(t, dir);
  assert.deepEqual(watcher.current(), []);
  assert.ok(records.some((r) => r.level === WARN && /cannot read/.test(r.msg)));
});
