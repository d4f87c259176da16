import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry } from '@mr/observability';
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
  const r = await app.inject(req({ clientId: 'c', requestId: 'r', op: 'incr', key: 'x' }));
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
  const cases: [unknown, number, string?][] = [
    [{ clientId: 'c', requestId: 'r', op: 'incr' }, 400],
    [{ clientId: 'c', requestId: 'r', op: 'nope', key: 'x' }, 400],
    [{ clientId: '', requestId: 'r', op: 'incr', key: 'x' }, 400],
    [{ clientId: 'c', requestId: 'r', op: 'incr', key: 'x', extra: 1 }, 400],
    [{ clientId: 'c', requestId: 'r', op: 'put', key: 'x' }, 400],
    [{ clientId: 'c', requestId: 'r', op: 'incr', key: 'x' }, 404, 'other'],
  ];
  for (const [body, status, vm] of cases) {
    const r = await app.inject(req(body, vm));
    assert.equal(r.statusCode, status, JSON.stringify(body));
    assert.ok(r.json().message);
  }
  const garbage = await app.inject({ method: 'POST', url: '/v1/vms/vm1/requests', headers: { 'content-type': 'application/json' }, payload: '{"op":' });
  assert.equal(garbage.statusCode, 400);
  assert.equal((await app.inject({ url: '/v1/vms/other' })).statusCode, 404);
  const log = await app.inject({ method: 'POST', url: '/v1/vms/vm1/log', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from([0, 0, 0, 1, 77]) });
  assert.equal(log.statusCode, 400);
  assert.equal(log.json().code, 'FT_ERR_BAD_FRAME');
});

test('a primary alone serves kv requests once it wins test-and-set; retries are applied once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  const { app, driver } = await node(t, { role: 'primary', storageUrl: storage.url });
  const early = await app.inject(req({ clientId: 'c', requestId: 'r0', op: 'get', key: 'x' }));
  assert.equal(early.statusCode, 503, 'not live before test-and-set');
  await driver.start('http://127.0.0.1:1');
  while (!driver.core.live) await sleep(5);
  const incr = (id: string) => app.inject(req({ clientId: 'c', requestId: id, op: 'incr', key: 'x' })).then((r) => r.json().value);
  assert.equal(await incr('r1'), 1);
  assert.equal(await incr('r2'), 2);
  assert.equal(await incr('r1'), 1, 'a retried request id gets the remembered answer');
  assert.equal(await incr('r3'), 3);
  const put = await app.inject(req({ clientId: 'c', requestId: 'p', op: 'put', key: 'name', value: 'vm' }));
  assert.deepEqual(put.json(), { value: 'vm' });
  assert.deepEqual((await app.inject(req({ clientId: 'c', requestId: 'g', op: 'get', key: 'missing' }))).json(), { value: null });
  const s = (await app.inject({ url: '/v1/vms/vm1' })).json();
  assert.equal(s.live, true);
  assert.equal(s.epoch, 1);
  assert.equal(s.peer.state, 'none');
  assert.equal(s.outputs.released, 6, 'six answers left the guest (the early 503 never reached it)');
});
