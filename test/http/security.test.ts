/**
 * Who may use a dashboard: Host checks against DNS rebinding, Origin checks against cross-site
 * requests, the token beyond loopback. Against real dashboards on loopback.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { RequestGuard, isLoopbackHost } from '../../src/http/guard.js';
import { createHttpServer } from '../../src/http/server.js';
import { errorCodeOf, fileIn, request, startDashboardOf, startPeer, tempDir } from './fixtures.js';

const T = { timeout: 30_000 };

/** A peer (no tracker) sharing one file, with its dashboard. */
async function peerWithDashboard(t: Parameters<typeof tempDir>[0], options = {}) {
  const dir = await tempDir(t);
  await fileIn(dir, 'keep.bin', 1000);
  const node = await startPeer(t, { dir });
  const dashboard = await startDashboardOf(t, node, options);
  return { node, dir, ...dashboard };
}

describe('Host header (DNS rebinding)', () => {
  test('the bound address, localhost, 127.0.0.1 and [::1] with our port are answered', T, async (t) => {
    const { url, port } = await peerWithDashboard(t);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      const response = await request(`${url}/api/status`, { headers: { host } });
      assert.equal(response.status, 200, host);
    }
  });

  test('any other host name, or another port, is refused with ERR_BAD_HOST', T, async (t) => {
    const { url, port, node } = await peerWithDashboard(t);
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `127.0.0.1:${port + 1}`,
      `127.0.0.1`,
      'a:b:c',
    ]) {
      const response = await request(`${url}/api/status`, { headers: { host } });
      assert.equal(response.status, 421, host);
      assert.equal(errorCodeOf(response), 'ERR_BAD_HOST');
    }
    // A rebinding page cannot change anything either.
    const response = await request(`${url}/api/shared/keep.bin`, {
      method: 'DELETE',
      headers: { host: `attacker.example:${port}` },
    });
    assert.equal(errorCodeOf(response), 'ERR_BAD_HOST');
    assert.equal(node.sharedFiles().length, 1);
  });

  test('a request without a Host header is refused', T, async (t) => {
    const { port } = await peerWithDashboard(t);
    const socket = net.connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.end('GET /api/status HTTP/1.0\r\n\r\n');
    let reply = '';
    for await (const chunk of socket) reply += String(chunk);
    assert.match(reply, /^HTTP\/1\.[01] 421/);
    assert.match(reply, /ERR_BAD_HOST/);
  });

  test('bound to a wildcard address, IP literals and our host name pass, other names do not', () => {
    const guard = new RequestGuard('0.0.0.0', 8081, 'token');
    assert.equal(guard.hostAllowed('192.168.1.20:8081'), true);
    assert.equal(guard.hostAllowed('[fe80::1]:8081'), true);
    assert.equal(guard.hostAllowed('localhost:8081'), true);
    assert.equal(guard.hostAllowed('rebind.attacker.example:8081'), false);
    assert.equal(guard.hostAllowed('192.168.1.20:8082'), false);
    const bound = new RequestGuard('192.168.1.20', 80, null);
    assert.equal(bound.hostAllowed('192.168.1.20'), true, 'port 80 may be left out');
    assert.equal(bound.hostAllowed('10.0.0.1'), false);
  });
});

describe('Origin (cross-site requests)', () => {
  test('a state-changing request from another site is refused and changes nothing', T, async (t) => {
    const { url, node } = await peerWithDashboard(t);
    const attempts: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:1` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of attempts) {
      const unshare = await request(`${url}/api/shared/keep.bin`, { method: 'DELETE', headers });
      assert.equal(unshare.status, 403, JSON.stringify(headers));
      assert.equal(errorCodeOf(unshare), 'ERR_FORBIDDEN_ORIGIN');
      const download = await request(`${url}/api/downloads`, {
        method: 'POST',
        headers,
        body: { file: 'x' },
      });
      assert.equal(errorCodeOf(download), 'ERR_FORBIDDEN_ORIGIN');
    }
    assert.equal(node.sharedFiles().length, 1, 'nothing was unshared');
  });

  test('our own origin, or none (curl, scripts), may change things', T, async (t) => {
    const { url, port, node } = await peerWithDashboard(t);
    const own = await request(`${url}/api/downloads/${'ab'.repeat(32)}/pause`, {
      method: 'POST',
      headers: { origin: `http://localhost:${port}`, 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(errorCodeOf(own), 'ERR_NOT_FOUND', 'past the origin check: there is no such download');
    const none = await request(`${url}/api/shared/keep.bin`, { method: 'DELETE' });
    assert.equal(none.status, 200);
    assert.equal(node.sharedFiles().length, 0);
  });

  test('reads from another origin are not shared with it (no CORS headers)', T, async (t) => {
    const { url } = await peerWithDashboard(t);
    const response = await request(`${url}/api/status`, { headers: { origin: 'http://evil.example' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers['access-control-allow-origin'], undefined);
  });

  test('every response carries a strict content security policy and no-framing headers', T, async (t) => {
    const { url } = await peerWithDashboard(t);
    for (const path of ['/', '/api/status', '/nothing-here', '/assets/style.css']) {
      const response = await request(`${url}${path}`);
      assert.match(String(response.headers['content-security-policy']), /script-src 'self'/, path);
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/, path);
      assert.equal(response.headers['x-frame-options'], 'DENY', path);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', path);
    }
  });
});

describe('token', () => {
  test('required by default beyond loopback or when given; generated when not given', async () => {
    assert.equal(isLoopbackHost('127.0.0.2'), true);
    assert.equal(isLoopbackHost('::1'), true);
    assert.equal(isLoopbackHost('0.0.0.0'), false);
    assert.equal(isLoopbackHost('192.168.1.2'), false);
    const cases: [Parameters<typeof createHttpServer>[0], 'none' | 'generated' | 'given'][] = [
      [{ title: 't', description: 'd', host: '127.0.0.1' }, 'none'],
      [{ title: 't', description: 'd', host: '::1' }, 'none'],
      [{ title: 't', description: 'd', host: '0.0.0.0' }, 'generated'],
      [{ title: 't', description: 'd', host: '192.168.1.2', token: 'given-token' }, 'given'],
      [{ title: 't', description: 'd', host: '127.0.0.1', token: 'given-token' }, 'given'],
      [{ title: 't', description: 'd', host: '0.0.0.0', requireToken: false }, 'none'],
    ];
    for (const [options, expected] of cases) {
      const server = await createHttpServer(options); // not listening: nothing is bound
      if (expected === 'none') assert.equal(server.token, null, JSON.stringify(options));
      else if (expected === 'given') assert.equal(server.token, 'given-token');
      else assert.match(server.token ?? '', /^[A-Za-z0-9_-]{32}$/);
      await server.close();
    }
  });

  test('the constant-time comparison accepts the token only', () => {
    const guard = new RequestGuard('127.0.0.1', 1, 's3cret');
    assert.equal(guard.tokenMatches('s3cret'), true);
    assert.equal(guard.tokenMatches('s3cre'), false);
    assert.equal(guard.tokenMatches('s3cret '), false);
    assert.equal(guard.tokenMatches(''), false);
    assert.equal(new RequestGuard('127.0.0.1', 1, null).tokenMatches(''), false);
  });

  test(
    'beyond the default address: no token, no access; a bearer token or the cookie opens it',
    T,
    async (t) => {
      // 127.0.0.2 is loopback, but not the default: this dashboard is told to require a token.
      const { url, port, printedUrl, token, node } = await peerWithDashboard(t, {
        host: '127.0.0.2',
        requireToken: true,
      });
      assert.ok(token);
      assert.equal(printedUrl, `http://127.0.0.2:${port}/?token=${encodeURIComponent(token)}`);
      assert.equal(url, `http://127.0.0.2:${port}`);

      const wrongs: Record<string, string>[] = [
        {},
        { authorization: 'Bearer wrong' },
        { cookie: `swarmshare_token_${port}=wrong` },
      ];
      for (const headers of wrongs) {
        const response = await request(`${url}/api/status`, { headers });
        assert.equal(response.status, 401, JSON.stringify(headers));
        assert.equal(errorCodeOf(response), 'ERR_UNAUTHORIZED');
      }
      const unshare = await request(`${url}/api/shared/keep.bin`, { method: 'DELETE' });
      assert.equal(errorCodeOf(unshare), 'ERR_UNAUTHORIZED');
      assert.equal(node.sharedFiles().length, 1);

      const bearer = await request(`${url}/api/status`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(bearer.status, 200);

      // Opening the printed URL: the token goes into a cookie and out of the address bar.
      const opened = await request(printedUrl, { headers: { accept: 'text/html' } });
      assert.equal(opened.status, 303);
      assert.equal(opened.headers.location, '/');
      const cookie = String(opened.headers['set-cookie']);
      assert.match(cookie, new RegExp(`^swarmshare_token_${port}=`));
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const withCookie = await request(`${url}/`, { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(withCookie.status, 200);
      assert.match(withCookie.text, /<title>swarmshare peer/);

      // A wrong token in the URL is refused like any other.
      const wrong = await request(`${url}/?token=nope`, { headers: { accept: 'text/html' } });
      assert.equal(wrong.status, 401);
    },
  );
});
