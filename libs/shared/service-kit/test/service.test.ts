import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { Type } from 'typebox';
import { createRegistry } from '@mr/observability';
import { createError } from '@mr/errors';
import { createService, checkBind, credentialsFromEnv, authHeader, buildInfo } from '../src/index.ts';
import { checkOpenApi } from '../src/testing.ts';

const ERR_TEAPOT = createError<[string]>('MR_ERR_TEAPOT', 'no coffee: %s', 418);

async function build(token?: string) {
  const app = await createService({ name: 'test', token, registry: createRegistry({ service: 'test', defaultMetrics: false }), logLevel: false, bodyLimit: 1024 });
  app.post('/echo', { schema: { body: Type.Object({ n: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), response: { 200: Type.Object({ n: Type.Integer() }) } } }, async (req) => ({ n: req.body.n, secret: 'filtered' }));
  app.get('/teapot', async () => { throw ERR_TEAPOT('decaf'); });
  app.get('/boom', async () => { throw new Error('db password is hunter2'); });
  await app.ready();
  return app;
}

test('healthz and metrics are open, routes need the token', async (t) => {
  const app = await build('s3cret');
  t.after(() => app.close());
  await request(app.server).get('/healthz').expect(200, { status: 'ok', service: 'test' });
  const m = await request(app.server).get('/metrics').expect(200);
  assert.match(m.text, /http_request_duration_seconds/);
  const r = await request(app.server).post('/echo').send({ n: 2 }).expect(401);
  assert.equal(r.body.code, 'MR_ERR_UNAUTHORIZED');
  await request(app.server).post('/echo').set('authorization', 'Bearer wrong!').send({ n: 2 }).expect(401);
  await request(app.server).post('/echo').set('authorization', 'Bearer s3cret').send({ n: 2 }).expect(200, { n: 2 });
});

test('schema errors, coded errors, hidden internal errors, 404s, oversized bodies', async (t) => {
  const app = await build();
  t.after(() => app.close());
  const bad = await request(app.server).post('/echo').send({ n: 0 }).expect(400);
  assert.equal(bad.body.code, 'MR_ERR_BAD_REQUEST');
  assert.match(bad.body.message, /n/);
  await request(app.server).post('/echo').send({ n: 1, extra: true }).expect(400);
  const tea = await request(app.server).get('/teapot').expect(418);
  assert.deepEqual(tea.body, { statusCode: 418, code: 'MR_ERR_TEAPOT', error: 'Error', message: 'no coffee: decaf' });
  const boom = await request(app.server).get('/boom').expect(500);
  assert.doesNotMatch(boom.text, /hunter2/);
  const nf = await request(app.server).get('/nope').expect(404);
  assert.equal(nf.body.code, 'MR_ERR_ROUTE_NOT_FOUND');
  const big = await request(app.server).post('/echo').set('content-type', 'application/json').send(JSON.stringify({ n: 1, pad: 'x'.repeat(5000) })).expect(413);
  assert.equal(big.body.statusCode, 413);
});

test('no token means loopback only', () => {
  assert.equal(checkBind('127.0.0.1', undefined), undefined);
  assert.match(checkBind('0.0.0.0', undefined)!, /MR_TOKEN/);
  assert.equal(checkBind('0.0.0.0', 'tok'), undefined);
});

async function buildRoles(token: string | undefined, roleTokens: { worker?: string; peer?: string }) {
  const app = await createService({ name: 'roles', token, roleTokens, registry: createRegistry({ service: 'roles', defaultMetrics: false }), logLevel: false });
  app.get('/client', async () => ({ ok: 'client' }));
  app.get('/worker', { config: { auth: 'worker' } }, async () => ({ ok: 'worker' }));
  app.get('/peer', { config: { auth: 'peer' } }, async () => ({ ok: 'peer' }));
  app.get('/open', { config: { auth: 'public' } }, async () => ({ ok: 'open' }));
  await app.ready();
  return app;
}

test('each role accepts only its own credential', async (t) => {
  const app = await buildRoles('client-tok', { worker: 'worker-tok', peer: 'peer-tok' });
  t.after(() => app.close());
  const as = (tok: string | undefined, path: string) => {
    const r = request(app.server).get(path);
    return tok ? r.set('authorization', `Bearer ${tok}`) : r;
  };
  for (const [path, good] of [['/client', 'client-tok'], ['/worker', 'worker-tok'], ['/peer', 'peer-tok']] as const) {
    await as(good, path).expect(200);
    for (const bad of ['client-tok', 'worker-tok', 'peer-tok', undefined]) {
      if (bad === good) continue;
      const r = await as(bad, path).expect(401);
      assert.equal(r.body.code, 'MR_ERR_UNAUTHORIZED');
    }
  }
  const wrong = await as('client-tok', '/worker').expect(401);
  assert.match(wrong.body.message, /MR_WORKER_TOKEN/);
  await as(undefined, '/open').expect(200);
  await as(undefined, '/healthz').expect(200);
  await as(undefined, '/metrics').expect(200);
  await as('worker-tok', '/nope').expect(401); // unknown routes are client routes
});

test('a role route without its token while a client token is set is refused at registration', async () => {
  await assert.rejects(buildRoles('client-tok', { peer: 'peer-tok' }), (err: Error & { code?: string }) => err.code === 'MR_ERR_AUTH_CONFIG' && /worker/.test(err.message));
});

test('no tokens at all: dev mode, every route open', async (t) => {
  const app = await buildRoles(undefined, {});
  t.after(() => app.close());
  await request(app.server).get('/worker').expect(200);
  await request(app.server).get('/peer').expect(200);
});

test('credentialsFromEnv: MR_TOKEN needs the role tokens this process uses, and they must differ', () => {
  assert.deepEqual(credentialsFromEnv({}, ['worker']), { token: undefined, roleTokens: { worker: undefined } });
  assert.match(String(credentialsFromEnv({ MR_TOKEN: 'a' }, ['worker']).error), /MR_WORKER_TOKEN/);
  assert.match(String(credentialsFromEnv({ MR_TOKEN: 'a', MR_PEER_TOKEN: 'a' }, ['peer']).error), /differ/);
  assert.deepEqual(credentialsFromEnv({ MR_TOKEN: 'a', MR_PEER_TOKEN: 'b' }, ['peer']), { token: 'a', roleTokens: { peer: 'b' } });
  assert.deepEqual(authHeader('x'), { authorization: 'Bearer x' });
  assert.deepEqual(authHeader(undefined), {});
});

test('JSON bodies are not coerced ("3" and null are refused); URL params and query strings are', async (t) => {
  const app = await createService({ name: 'test', registry: createRegistry({ service: 'test', defaultMetrics: false }), logLevel: false });
  app.post('/n', { schema: { body: Type.Object({ n: Type.Integer(), s: Type.Optional(Type.String()), list: Type.Optional(Type.Array(Type.String())) }, { additionalProperties: false }) } }, async (req) => req.body);
  app.get('/b/:block', { schema: { params: Type.Object({ block: Type.Integer({ minimum: 0 }) }), querystring: Type.Object({ count: Type.Optional(Type.Integer({ minimum: 1 })) }) } }, async (req) => ({ params: req.params, query: req.query }));
  await app.ready();
  t.after(() => app.close());
  const refused: unknown[] = [{ n: '3' }, { n: null }, { n: 1, s: 7 }, { n: 1, s: null }, { n: true }, { n: 1, list: 'a' }];
  for (const body of refused) {
    const r = await app.inject({ method: 'POST', url: '/n', payload: body as object });
    assert.equal(r.statusCode, 400, JSON.stringify(body));
    assert.equal(JSON.parse(r.body).code, 'MR_ERR_BAD_REQUEST');
  }
  assert.deepEqual(JSON.parse((await app.inject({ method: 'POST', url: '/n', payload: { n: 3, list: ['a'] } })).body), { n: 3, list: ['a'] });
  const g = await app.inject({ method: 'GET', url: '/b/7?count=2' });
  assert.deepEqual(JSON.parse(g.body), { params: { block: 7 }, query: { count: 2 } });
  assert.equal((await app.inject({ method: 'GET', url: '/b/x' })).statusCode, 400);
});

test('GET /v1/openapi.json: a valid OpenAPI 3 document of every route with its credential; GET /v1/version', async (t) => {
  const app = await createService({
    name: 'docs', token: 'c', roleTokens: { worker: 'w' }, registry: createRegistry({ service: 'docs', defaultMetrics: false }), logLevel: false, build: { version: '1.2.3', commit: 'abcdef0' },
  });
  app.post('/v1/things/:id', { schema: { params: Type.Object({ id: Type.String() }), body: Type.Object({ n: Type.Integer() }), response: { 200: Type.Object({ n: Type.Integer() }) } } }, async (req) => ({ n: req.body.n }));
  app.get('/v1/work', { config: { auth: 'worker' } }, async () => ({}));
  await app.ready();
  t.after(() => app.close());
  assert.equal((await app.inject({ url: '/v1/openapi.json' })).statusCode, 401, 'the document needs the client token');
  const { document, missing } = await checkOpenApi(app, authHeader('c'));
  assert.deepEqual(missing, []);
  const routes = app.registeredRoutes.map((r) => `${r.method} ${r.url} ${r.auth}`).sort();
  assert.deepEqual(routes, ['GET /healthz public', 'GET /metrics public', 'GET /v1/openapi.json client', 'GET /v1/version client', 'GET /v1/work worker', 'POST /v1/things/:id client']);
  const doc = JSON.parse(JSON.stringify(document)) as { info: { version: string }; paths: Record<string, Record<string, { security: unknown[] }>> };
  assert.equal(doc.info.version, '1.2.3');
  assert.deepEqual(doc.paths['/v1/things/{id}']!['post']!.security, [{ client: [] }]);
  assert.deepEqual(doc.paths['/v1/work']!['get']!.security, [{ worker: [] }]);
  assert.deepEqual(doc.paths['/healthz']!['get']!.security, []);
  // The check fails for a route the document does not list.
  const unlisted = await createService({ name: 'u', registry: createRegistry({ service: 'u', defaultMetrics: false }), logLevel: false });
  unlisted.get('/v1/hidden', { schema: { hide: true } }, async () => ({}));
  await unlisted.ready();
  t.after(() => unlisted.close());
  assert.deepEqual((await checkOpenApi(unlisted)).missing, ['GET /v1/hidden']);
  const v = await app.inject({ url: '/v1/version', headers: authHeader('c') });
  assert.deepEqual(v.json(), { name: 'docs', version: '1.2.3', commit: 'abcdef0', node: process.versions.node });
});

test('buildInfo: the package version, a commit only when MR_GIT_COMMIT is a git hash', () => {
  const pkg = new URL('../package.json', import.meta.url);
  assert.deepEqual(buildInfo(pkg, {}), { version: '0.1.0' });
  assert.deepEqual(buildInfo(pkg, { MR_GIT_COMMIT: '0123456789abcdef0123456789abcdef01234567' }), { version: '0.1.0', commit: '0123456789abcdef0123456789abcdef01234567' });
  assert.deepEqual(buildInfo(pkg, { MR_GIT_COMMIT: 'not a hash; rm -rf' }), { version: '0.1.0' });
});
