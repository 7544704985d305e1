/** The event-stream hub and the throttle behind the dashboards' live updates. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { fastify } from 'fastify';
import { toErrorResponse } from '../../src/http/errors.js';
import { KeyedThrottle, SseHub } from '../../src/http/sse.js';
import { deferred } from '../helpers/peer-fixtures.js';
import { EventStream, errorCodeOf, request, waitFor } from './fixtures.js';

const T = { timeout: 30_000 };

/** A bare server with one event-stream route on a hub. */
async function hubServer(t: TestContext, hub: SseHub<string>): Promise<string> {
  const app = fastify();
  app.setErrorHandler((err, _request, reply) => {
    const { status, body } = toErrorResponse(err);
    return reply.status(status).send(body);
  });
  app.get<{ Querystring: { topic?: string } }>('/events', (request, reply) => {
    hub.open(request, reply, request.query.topic ?? '', {});
  });
  t.after(async () => {
    hub.close();
    await app.close();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address && typeof address !== 'string');
  return `http://127.0.0.1:${address.port}`;
}

test('events reach the clients that asked for them', T, async (t) => {
  const hub = new SseHub<string>();
  const url = await hubServer(t, hub);
  const a = new EventStream(t, `${url}/events?topic=a`);
  const b = new EventStream(t, `${url}/events?topic=b`);
  await waitFor(() => hub.size === 2, 'two streams');
  assert.equal(a.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(hub.send('news', { n: 1 }), 2);
  assert.equal(hub.send('only-a', { n: 2 }, { to: (topic) => topic === 'a' }), 1);
  assert.deepEqual(await a.next('news'), { n: 1 });
  assert.deepEqual(await b.next('news'), { n: 1 });
  assert.deepEqual(await a.next('only-a'), { n: 2 });
  assert.equal(b.count('only-a'), 0);
  a.close();
  await waitFor(() => hub.size === 1, 'the closed stream to be forgotten');
});

test('streams are bounded: one too many is refused with ERR_LIMIT', T, async (t) => {
  const hub = new SseHub<string>({ maxClients: 2 });
  const url = await hubServer(t, hub);
  new EventStream(t, `${url}/events`);
  new EventStream(t, `${url}/events`);
  await waitFor(() => hub.size === 2, 'two streams');
  const third = await request(`${url}/events`);
  assert.equal(third.status, 429);
  assert.equal(errorCodeOf(third), 'ERR_LIMIT');
});

test(
  'a client that does not read is dropped once its queue is full; it never grows past the bound',
  T,
  async (t) => {
    const hub = new SseHub<string>({ maxQueuedEvents: 4 });
    const url = await hubServer(t, hub);
    // A client that connects and then never reads.
    const target = new URL(`${url}/events`);
    const req = http.get({ host: target.hostname, port: target.port, path: target.pathname, agent: false });
    t.after(() => req.destroy());
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.pause();
    await waitFor(() => hub.size === 1, 'the stream');
    const big = 'x'.repeat(256 * 1024);
    // Updates of one thing replace each other in the queue: they never make it overflow.
    for (let i = 0; i < 200 && hub.size === 1; i++) hub.send('state', { big, i }, { key: 'same' });
    assert.equal(hub.size, 1, 'repeated updates of one key are coalesced, not queued');
    // Updates of many things do.
    for (let i = 0; i < 200 && hub.size === 1; i++) hub.send('state', { big, i }, { key: `k${i}` });
    assert.equal(hub.size, 0, 'the slow client was dropped');
  },
);

test('the throttle runs at once, folds triggers during its interval into one more run', async () => {
  const fired: string[] = [];
  const gate = deferred();
  const throttle = new KeyedThrottle(20, async (key) => {
    fired.push(key);
    if (fired.length === 1) await gate.promise;
  });
  for (let i = 0; i < 100; i++) throttle.trigger('a');
  throttle.trigger('b');
  assert.deepEqual(fired, [], 'runs start on the next tick');
  await waitFor(() => fired.length === 2, 'a and b to run');
  assert.deepEqual([...fired].sort(), ['a', 'b']);
  gate.resolve();
  await waitFor(() => fired.length === 3, 'one more run of a, for the 99 triggers folded');
  assert.equal(fired.filter((k) => k === 'a').length, 2);
  // Quiet keys are forgotten: a later trigger runs again.
  await waitFor(() => {
    throttle.trigger('b');
    return fired.filter((k) => k === 'b').length >= 2;
  }, 'b to run again');
  throttle.close();
});
