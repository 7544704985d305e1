/** The dashboards from the command line: --http-port, --http-host, --http-token, in real processes. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { runCli, startCli } from '../helpers/cli.js';
import { errorCodeOf, request, tempDir } from './fixtures.js';

const T = { timeout: 30_000 };

test('swarmshare tracker --http-port 0: the dashboard URL is printed, the API answers', T, async (t) => {
  const proc = startCli(t, ['tracker', '--host', '127.0.0.1', '--port', '0', '--http-port', '0']);
  const [, url] = await proc.waitForOutput(/swarmshare tracker dashboard at (http:\/\/127\.0\.0\.1:\d+\/)\n/);
  const summary = await request(`${url}api/summary`);
  assert.equal(summary.status, 200);
  assert.deepEqual(Object.keys(summary.json as object).sort(), [
    'connections',
    'files',
    'peers',
    'startedAt',
  ]);
  assert.equal((await request(`${url}metrics`)).status, 200);
});

test('swarmshare peer with --http-token: the token is in the URL printed, and required', T, async (t) => {
  const dir = await tempDir(t);
  const proc = startCli(t, [
    'peer',
    '--dir',
    dir,
    '--no-tracker',
    '--no-lan',
    '--host',
    '127.0.0.1',
    '--name',
    'cli-peer',
    '--http-port',
    '0',
    '--http-host',
    '127.0.0.2',
    '--http-token',
    's3cret',
  ]);
  const [, base] = await proc.waitForOutput(
    /peer dashboard at (http:\/\/127\.0\.0\.2:\d+\/)\?token=s3cret\n/,
  );
  assert.match(proc.stdout, /keep it private/);
  const refused = await request(`${base}api/status`);
  assert.equal(refused.status, 401);
  assert.equal(errorCodeOf(refused), 'ERR_UNAUTHORIZED');
  const status = await request(`${base}api/status`, { headers: { authorization: 'Bearer s3cret' } });
  assert.equal(status.status, 200);
  assert.equal((status.json as { name: string }).name, 'cli-peer');
  // The end of piped input does not end a peer that has a dashboard.
  proc.child.stdin.end();
  await proc.waitForOutput(/end of input: the peer keeps running/);
  const again = await request(`${base}api/status`, { headers: { authorization: 'Bearer s3cret' } });
  assert.equal(again.status, 200);
});

test('a dashboard port already taken: the command fails with one line and exit code 1', T, async (t) => {
  const blocker = net.createServer();
  t.after(() => blocker.close());
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const result = await runCli(['tracker', '--host', '127.0.0.1', '--port', '0', '--http-port', String(port)]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /swarmshare: .*EADDRINUSE/);
  const usage = await runCli(['tracker', '--http-port', 'nope']);
  assert.equal(usage.code, 2);
});
