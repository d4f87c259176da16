import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry } from '@mr/observability';
import { checkOpenApi } from '@mr/service-kit/testing';
import { buildNodeApp, startStorage } from '../src/index.ts';

type T = { after(fn: () => unknown): void };

async function node(t: T, opts: { role: 'primary' | 'backup'; storageUrl?: string; peerUrl?: string }) {
  const { app, driver } = await buildNodeApp({
    vmId: 'vm1',
    nodeId: opts.role === 'primary' ? 'a' : 'b',
    role: opts.role,
    guest: 'kv',
    storageUrl: opts.storageUrl ?? 'http://127.0.0.1:9',
    peerUrl: opts.peerUrl,
    registry: createRegistry({ service: 'vm-node', defaultMetrics: false }),
    logLevel: false,
  });
  t.after(() => app.close());
  return { app, driver };
}

const req = (body: unknown, vm = 'vm1') => ({ method: 'POST' as const, url: `/v1/vms/${vm}/requests`, payload: body as Record<string, unknown> });

test('a backup answers clients 503 naming the live node and why; reports its status', async (t) => {
  const { app } = await node(t, { role: 'backup', peerUrl: 'http://127.0.0.1:7081' });
  const r = await app.inject(req({ session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'x' }));
  assert.equal(r.statusCode, 503);
  assert.deepEqual(
    { code: r.json().code, live: r.json().live, role: r.json().role },
    { code: 'FT_ERR_NOT_PRIMARY', live: 'http://127.0.0.1:7081', role: 'backup' },
  );
  const s = await app.inject({ url: '/v1/vms/vm1' });
  assert.equal(s.statusCode, 200);
  assert.equal(s.json().role, 'backup');
  assert.equal(s.json().live, false);
  assert.equal(s.json().guest, 'kv');
  assert.equal(typeof s.json().hash.value, 'string');
  const join = await app.inject({ method: 'POST', url: '/v1/vms/vm1/join', payload: { nodeId: 'c', url: 'http://127.0.0.1:7081' } });
  assert.equal(join.statusCode, 503, 'only the live primary takes a joining backup');
  const foreign = await app.inject({ method: 'POST', url: '/v1/vms/vm1/join', payload: { nodeId: 'c', url: 'http://127.0.0.1:7083' } });
  assert.equal(foreign.statusCode, 403, 'and only from a configured peer');
  assert.equal(foreign.json().code, 'FT_ERR_PEER_NOT_ALLOWED');
  const metrics = await app.inject({ url: '/metrics' });
  assert.match(metrics.body, /ft_role\{role="backup"[^}]*\} 1/);
});

test('bad client requests and unknown VMs get a clear 4xx', async (t) => {
  const { app } = await node(t, { role: 'backup' });
  const cases: [unknown, number, string?, string?][] = [
    [{ session: 256, seq: 1, ackBelow: 1, op: 'incr' }, 400],
    [{ session: 256, seq: 1, ackBelow: 1, op: 'nope', key: 'x' }, 400],
    [{ session: 0, seq: 1, ackBelow: 1, op: 'incr', key: 'x' }, 400],
    [{ session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'x', extra: 1 }, 400],
    [{ session: 256, seq: 1, ackBelow: 1, op: 'put', key: 'x' }, 400],
    [{ clientId: 'c', requestId: 'r', op: 'incr', key: 'x' }, 400],
    [{ op: 'incr', key: 'x' }, 400, 'vm1', 'FT_ERR_NO_SESSION'],
    [{ op: 'get', key: 'x', seq: 1 }, 400, 'vm1', 'FT_ERR_NO_SESSION'],
    [{ session: 256, seq: 2, op: 'incr', key: 'x' }, 400, 'vm1', 'FT_ERR_NO_SESSION'],
    [{ session: 256, seq: 2, ackBelow: 3, op: 'incr', key: 'x' }, 400, 'vm1', 'FT_ERR_NO_SESSION'],
    [{ session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'x' }, 404, 'other'],
  ];
  for (const [body, status, vm, code] of cases) {
    const r = await app.inject(req(body, vm));
    assert.equal(r.statusCode, status, JSON.stringify(body));
    assert.ok(r.json().message);
    if (code) assert.equal(r.json().code, code, JSON.stringify(body));
  }
  const garbage = await app.inject({ method: 'POST', url: '/v1/vms/vm1/requests', headers: { 'content-type': 'application/json' }, payload: '{"op":' });
  assert.equal(garbage.statusCode, 400);
  assert.equal((await app.inject({ url: '/v1/vms/other' })).statusCode, 404);
  const log = await app.inject({ method: 'POST', url: '/v1/vms/vm1/log', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from([0, 0, 0, 1, 77]) });
  assert.equal(log.statusCode, 400);
  assert.equal(log.json().code, 'FT_ERR_BAD_FRAME');
});

test('GET /v1/openapi.json documents every node route (log channel and join included) and validates; GET /v1/version', async (t) => {
  const { app } = await node(t, { role: 'backup' });
  const { document, missing } = await checkOpenApi(app);
  assert.deepEqual(missing, []);
  for (const p of ['/v1/vms/{id}/requests', '/v1/vms/{id}/sessions/{session}', '/v1/vms/{id}', '/v1/vms/{id}/join', '/v1/vms/{id}/log']) assert.ok(document.paths?.[p], p);
  const v = (await app.inject({ url: '/v1/version' })).json();
  assert.equal(v.name, 'vm-node');
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test('a primary alone serves kv requests once it wins test-and-set; retries are applied once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  const { app, driver } = await node(t, { role: 'primary', storageUrl: storage.url });
  const early = await app.inject(req({ op: 'get', key: 'x' }));
  assert.equal(early.statusCode, 503, 'not live before test-and-set');
  assert.equal((await app.inject({ method: 'POST', url: '/v1/vms/vm1/sessions' })).statusCode, 503);
  await driver.start('http://127.0.0.1:1');
  while (!driver.core.live) await sleep(5);
  const opened = await app.inject({ method: 'POST', url: '/v1/vms/vm1/sessions' });
  assert.equal(opened.statusCode, 201);
  assert.deepEqual(opened.json(), { session: 256, maxOutstanding: 8, maxSessions: 256 }, 'the first session: generation 1, slot 0');
  const session = opened.json().session as number;
  const incr = (seq: number, ackBelow = seq) => app.inject(req({ session, seq, ackBelow, op: 'incr', key: 'x' })).then((r) => r.json().value);
  assert.equal(await incr(1), 1);
  assert.equal(await incr(2, 1), 2);
  assert.equal(await incr(1), 1, 'a retried (session, seq) gets the remembered answer');
  assert.equal(await incr(3), 3);
  const acked = await app.inject(req({ session, seq: 1, ackBelow: 1, op: 'incr', key: 'x' }));
  assert.equal(acked.statusCode, 409, 'seq 1 was acknowledged by seq 3');
  assert.equal(acked.json().code, 'FT_ERR_SEQ_ACKED');
  const ahead = await app.inject(req({ session, seq: 11, ackBelow: 3, op: 'incr', key: 'x' }));
  assert.equal(ahead.statusCode, 429);
  assert.equal(ahead.json().code, 'FT_ERR_TOO_MANY_OUTSTANDING');
  const put = await app.inject(req({ session, seq: 4, ackBelow: 4, op: 'put', key: 'name', value: 'vm' }));
  assert.deepEqual(put.json(), { value: 'vm' });
  assert.deepEqual((await app.inject(req({ op: 'get', key: 'missing' }))).json(), { value: null });
  assert.deepEqual((await app.inject(req({ op: 'get', key: 'x' }))).json(), { value: '3' }, 'applied three times, not four');
  assert.equal((await app.inject({ method: 'DELETE', url: `/v1/vms/vm1/sessions/${session}` })).statusCode, 204);
  const closed = await app.inject(req({ session, seq: 5, ackBelow: 5, op: 'incr', key: 'x' }));
  assert.equal(closed.statusCode, 410);
  assert.equal(closed.json().code, 'FT_ERR_SESSION_EXPIRED');
  assert.match(closed.json().message, /open a new session/);
  assert.equal((await app.inject({ method: 'DELETE', url: `/v1/vms/vm1/sessions/${session}` })).statusCode, 410);
  assert.equal((await app.inject({ method: 'DELETE', url: '/v1/vms/vm1/sessions/0' })).statusCode, 400);
  const s = (await app.inject({ url: '/v1/vms/vm1' })).json();
  assert.equal(s.live, true);
  assert.equal(s.epoch, 1);
  assert.equal(s.peer.state, 'none');
  assert.equal(s.outputs.released, 13, 'thirteen answers left the guest (the early 503s and the 400 never reached it)');
});
