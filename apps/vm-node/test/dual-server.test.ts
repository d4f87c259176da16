import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H2CClient, request } from 'undici';
import { createRegistry } from '@mr/observability';
import { createService } from '@mr/service-kit';
import { connect } from 'node:net';
import { idleSockets } from './helpers/sockets.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { dualProtocolServerFactory, type ConnectionLimits, type DualServer } from '../src/dual-server.ts';

test('one port serves cleartext HTTP/2 (prior knowledge) and HTTP/1.1, and close() finishes with streams open', async () => {
  const app = await createService({
    name: 't',
    registry: createRegistry({ service: 't', defaultMetrics: false }),
    logLevel: false,
    fastify: { http2: true, forceCloseConnections: true, serverFactory: dualProtocolServerFactory({ http2SessionTimeoutMs: 600_000 }) },
  });
  app.get('/v', async (req) => ({ version: req.raw.httpVersion }));
  app.get('/hang', (_req, _reply) => new Promise(() => {}));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  const r1 = await request(`${url}/v`);
  assert.deepEqual(await r1.body.json(), { version: '1.1' });
  const h2 = new H2CClient(url);
  const r2 = await h2.request({ method: 'GET', path: '/v' });
  assert.deepEqual(await r2.body.json(), { version: '2.0' });
  const metrics = await request(`${url}/metrics`);
  assert.equal(metrics.statusCode, 200);
  await metrics.body.text();
  const hanging = h2.request({ method: 'GET', path: '/hang' }).catch((e: Error) => e);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await app.close();
  assert.ok(Date.now() - t0 < 2000, 'close() did not wait for the open stream');
  assert.ok((await hanging) instanceof Error);
  await h2.close().catch(() => {});
});


async function limitedService(t: { after(fn: () => unknown): void }, limits: Partial<ConnectionLimits>) {
  const app = await createService({
    name: 't',
    registry: createRegistry({ service: 't', defaultMetrics: false }),
    logLevel: false,
    fastify: { http2: true, forceCloseConnections: true, serverFactory: dualProtocolServerFactory({ http2SessionTimeoutMs: 600_000, limits }) },
  });
  app.get('/v', async (req) => ({ version: req.raw.httpVersion }));
  app.get('/hang', (_req, _reply) => new Promise(() => {}));
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const a = app.server.address();
  return { url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, server: app.server as unknown as DualServer };
}

test('connection cap: idle connections make room for a client that sends its request; the cap holds', async (t) => {
  const { url, server } = await limitedService(t, { maxConnections: 50, headersTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
  const idle = await idleSockets(url, 400);
  t.after(() => idle.sockets.forEach((s) => s.destroy()));
  // The kernel completes a handshake before the server accepts it: wait for the server to have seen them all.
  while (server.connectionStats().open + server.connectionStats().evicted < 400) await sleep(10);
  const st = server.connectionStats();
  assert.ok(st.open <= 50, `open ${st.open}`);
  assert.ok(st.evicted >= 350, `evicted ${st.evicted}`);
  const r = await request(`${url}/v`);
  assert.deepEqual(await r.body.json(), { version: '1.1' }, 'a request still gets through');
  assert.ok(server.connectionStats().open <= 50);
});

test('timeouts: silent and slowloris connections are cut at the header timeout, hanging HTTP/1.1 requests at the request timeout; an open HTTP/2 stream is never cut', async (t) => {
  const { url, server } = await limitedService(t, { maxConnections: 1000, headersTimeoutMs: 300, idleTimeoutMs: 600, requestTimeoutMs: 900 });
  const h2 = new H2CClient(url);
  t.after(() => h2.close().catch(() => {}));
  // A long-lived HTTP/2 stream (the log channel's shape): open past every timeout.
  let streamEnded = false;
  const hanging = h2.request({ method: 'GET', path: '/hang' }).then(() => (streamEnded = true), () => (streamEnded = true));
  const idle = await idleSockets(url, 300);
  t.after(() => idle.sockets.forEach((s) => s.destroy()));
  const { hostname, port } = new URL(url);
  // Slowloris: a request head that never ends, one byte at a time.
  const slow = connect({ host: hostname, port: Number(port) });
  slow.on('error', () => {});
  let slowClosed = false;
  slow.once('close', () => (slowClosed = true));
  slow.write('GET /v HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => slow.writable && slow.write('X'), 50);
  t.after(() => clearInterval(drip));
  // An HTTP/1.1 request that is never answered.
  const h1Hang = request(`${url}/hang`).then(() => 'answered', (e: Error) => e.message);
  await sleep(1500);
  assert.equal(idle.closed(), 300, 'every silent connection was closed');
  assert.equal(slowClosed, true, 'the slowloris connection was closed');
  assert.notEqual(await h1Hang, 'answered');
  assert.equal(streamEnded, false, 'the HTTP/2 stream is still open');
  assert.ok(server.connectionStats().timedOut >= 302, JSON.stringify(server.connectionStats()));
  const r = await h2.request({ method: 'GET', path: '/v' });
  assert.deepEqual(await r.body.json(), { version: '2.0' }, 'its session still serves');
  void hanging;
});
