import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '@mr/observability';
import { buildStorageApp } from '../src/storage/app.ts';

async function build(t: { after(fn: () => unknown): void }, dir?: string) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'vm-storage-'));
  const app = await buildStorageApp({ dataDir, registry: createRegistry({ service: 'vm-storage', defaultMetrics: false }), logLevel: false, blockSize: 64, blocks: 16 });
  t.after(async () => {
    await app.close();
    if (!dir) rmSync(dataDir, { recursive: true, force: true });
  });
  return app;
}

const tas = (app: Awaited<ReturnType<typeof build>>, node: string, epoch: number, vm = 'vm1') =>
  app.inject({ method: 'POST', url: `/v1/vms/${vm}/tas`, payload: { nodeId: node, epoch } });

test('test-and-set: the first claim of an epoch wins, the second loses, an older epoch is refused', async (t) => {
  const app = await build(t);
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 0, owner: '' });
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: true, epoch: 1, owner: 'a' });
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: true, epoch: 1, owner: 'a' }, 'a retry by the owner still wins');
  assert.deepEqual((await tas(app, 'b', 1)).json(), { won: false, epoch: 1, owner: 'a' });
  assert.deepEqual((await tas(app, 'b', 2)).json(), { won: true, epoch: 2, owner: 'b' });
  const stale = await tas(app, 'a', 1);
  assert.equal(stale.statusCode, 409);
  assert.equal(stale.json().code, 'FT_ERR_STALE_EPOCH');
  assert.match(stale.json().message, /epoch 1 is older than the current epoch 2/);
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 2, owner: 'b' });
  assert.deepEqual((await app.inject({ url: '/v1/vms/other/tas' })).json(), { epoch: 0, owner: '' }, 'flags are per VM');
});

test('a restarted storage node still knows who won which epoch, and keeps the disk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const block = Buffer.alloc(64, 7).toString('base64');
  {
    const app = await buildStorageApp({ dataDir: dir, registry: createRegistry({ service: 's', defaultMetrics: false }), logLevel: false, blockSize: 64, blocks: 16 });
    assert.equal((await tas(app, 'a', 1)).json().won, true);
    assert.equal((await tas(app, 'b', 2)).json().won, true);
    const w = await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/3', payload: { nodeId: 'b', epoch: 2, data: block } });
    assert.equal(w.statusCode, 200);
    await app.close();
  }
  const app = await build(t, dir);
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 2, owner: 'b' });
  assert.equal((await tas(app, 'a', 2)).json().won, false);
  assert.equal((await tas(app, 'a', 1)).statusCode, 409);
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/3' })).json().data, block);
});

test('disk: reads zeros where nothing was written; writes are fenced by epoch and owner', async (t) => {
  const app = await build(t);
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/0' })).statusCode, 404, 'unknown VM');
  await tas(app, 'a', 1);
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/5' })).json().data, Buffer.alloc(64).toString('base64'));
  const data = Buffer.alloc(64, 1).toString('base64');
  assert.equal((await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/5', payload: { nodeId: 'a', epoch: 1, data } })).statusCode, 200);
  await tas(app, 'b', 2);
  const stale = await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/5', payload: { nodeId: 'a', epoch: 1, data: Buffer.alloc(64, 9).toString('base64') } });
  assert.equal(stale.statusCode, 409);
  assert.equal(stale.json().code, 'FT_ERR_STALE_EPOCH');
  const notOwner = await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/5', payload: { nodeId: 'a', epoch: 2, data } });
  assert.equal(notOwner.json().code, 'FT_ERR_NOT_OWNER');
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/5' })).json().data, data, 'refused writes changed nothing');
  const two = Buffer.concat([Buffer.alloc(64, 2), Buffer.alloc(64, 3)]).toString('base64');
  assert.equal((await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/14', payload: { nodeId: 'b', epoch: 2, data: two } })).statusCode, 200);
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/14?count=2' })).json().data, two, 'multi-block read and write');
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/15?count=2' })).statusCode, 400, 'past the end of the disk');
});

test('bad input gets a clear 4xx and changes nothing', async (t) => {
  const app = await build(t);
  await tas(app, 'a', 1);
  const cases = [
    { method: 'POST' as const, url: '/v1/vms/vm1/tas', payload: { nodeId: 'x' } },
    { method: 'POST' as const, url: '/v1/vms/vm1/tas', payload: { nodeId: 'x', epoch: -1 } },
    { method: 'POST' as const, url: '/v1/vms/..%2Fetc/tas', payload: { nodeId: 'x', epoch: 5 } },
    { method: 'POST' as const, url: '/v1/vms/vm1/tas', payload: 'garbage', headers: { 'content-type': 'application/json' } },
    { method: 'PUT' as const, url: '/v1/vms/vm1/disk/99', payload: { nodeId: 'a', epoch: 1, data: Buffer.alloc(64).toString('base64') } },
    { method: 'PUT' as const, url: '/v1/vms/vm1/disk/1', payload: { nodeId: 'a', epoch: 1, data: Buffer.alloc(10).toString('base64') } },
    { method: 'PUT' as const, url: '/v1/vms/vm1/disk/1', payload: { nodeId: 'a', epoch: 1, data: '!!not base64!!' } },
    { method: 'GET' as const, url: '/v1/vms/vm1/disk/abc' },
  ];
  for (const c of cases) {
    const r = await app.inject(c);
    assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${c.method} ${c.url} ${JSON.stringify(c.payload)} -> ${r.statusCode}`);
    assert.equal(typeof r.json().message, 'string');
  }
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 1, owner: 'a' });
  assert.equal((await app.inject({ url: '/v1/vms/vm1/disk/1' })).json().data, Buffer.alloc(64).toString('base64'));
});
