import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H2CClient, request } from 'undici';
import { createRegistry } from '@mr/observability';
import { createService } from '@mr/service-kit';
import { dualProtocolServerFactory } from '../src/dual-server.ts';

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
