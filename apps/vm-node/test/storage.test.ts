import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '@mr/observability';
import { MAX_EPOCH } from '@mr/vmft-protocol';
import { checkOpenApi } from '@mr/service-kit/testing';
import { buildStorageApp, type StorageAppOptions } from '../src/storage/app.ts';

async function build(t: { after(fn: () => unknown): void }, dir?: string, more: Partial<StorageAppOptions> = {}) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'vm-storage-'));
  const app = await buildStorageApp({ dataDir, registry: createRegistry({ service: 'vm-storage', defaultMetrics: false }), logLevel: false, blockSize: 64, blocks: 16, ...more });
  t.after(async () => {
    await app.close();
    if (!dir) rmSync(dataDir, { recursive: true, force: true });
  });
  return app;
}

type App = Awaited<ReturnType<typeof buildStorageApp>>;
const tas = (app: App, node: string, epoch: number, vm = 'vm1') => app.inject({ method: 'POST', url: `/v1/vms/${vm}/tas`, payload: { nodeId: node, epoch } });

test('test-and-set: the next epoch wins, the current one by another node and an older one lose (data), a gap is refused', async (t) => {
  const app = await build(t);
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 0, owner: '' });
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: true, epoch: 1, owner: 'a' });
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: true, epoch: 1, owner: 'a' }, 'a retry by the owner still wins');
  assert.deepEqual((await tas(app, 'b', 1)).json(), { won: false, epoch: 1, owner: 'a' });
  assert.deepEqual((await tas(app, 'b', 2)).json(), { won: true, epoch: 2, owner: 'b' });
  const stale = await tas(app, 'a', 1);
  assert.equal(stale.statusCode, 200, 'an older epoch is a loss, answered as data');
  assert.deepEqual(stale.json(), { won: false, epoch: 2, owner: 'b' });
  const gap = await tas(app, 'a', 4);
  assert.equal(gap.statusCode, 409);
  assert.equal(gap.json().code, 'FT_ERR_EPOCH_GAP');
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 2, owner: 'b' });
  assert.deepEqual((await app.inject({ url: '/v1/vms/other/tas' })).json(), { epoch: 0, owner: '' }, 'flags are per VM');
});

test('fence (an epoch arbitrated at etcd): may skip epochs, never goes back, registered nodes only; older epochs\' writes are refused after it', async (t) => {
  const app = await build(t, undefined, { vms: new Map([['vm1', ['a', 'b']]]) });
  const fence = (node: string, epoch: number) => app.inject({ method: 'POST', url: '/v1/vms/vm1/fence', payload: { nodeId: node, epoch } });
  assert.deepEqual((await fence('a', 1)).json(), { won: true, epoch: 1, owner: 'a' });
  const block = Buffer.alloc(64, 7).toString('base64');
  const write = (node: string, epoch: number) => app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/0', payload: { nodeId: node, epoch, data: block } });
  assert.equal((await write('a', 1)).statusCode, 200);
  assert.deepEqual((await fence('b', 3)).json(), { won: true, epoch: 3, owner: 'b' }, 'a gap: the winner of 2 crashed before fencing');
  assert.deepEqual((await fence('b', 3)).json(), { won: true, epoch: 3, owner: 'b' }, "the owner's retry");
  assert.deepEqual((await fence('a', 2)).json(), { won: false, epoch: 3, owner: 'b' });
  assert.deepEqual((await fence('a', 3)).json(), { won: false, epoch: 3, owner: 'b' });
  assert.equal((await write('a', 1)).json().code, 'FT_ERR_STALE_EPOCH', 'the deposed primary cannot write');
  assert.equal((await write('b', 3)).statusCode, 200);
  assert.equal((await fence('c', 4)).statusCode, 403, 'unregistered node');
  assert.equal((await fence('b', MAX_EPOCH + 1)).statusCode, 400);
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 3, owner: 'b' }, 'refusals changed nothing');
});

test('epoch 4294967295 (or anything past MAX_EPOCH) is refused and does not brick the VM', async (t) => {
  const app = await build(t);
  await tas(app, 'a', 1);
  for (const epoch of [4294967295, 4294967296, MAX_EPOCH + 1]) {
    const r = await tas(app, 'b', epoch);
    assert.equal(r.statusCode, 400, String(epoch));
  }
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 1, owner: 'a' }, 'unchanged');
  assert.deepEqual((await tas(app, 'b', 2)).json(), { won: true, epoch: 2, owner: 'b' }, 'the next failover still works');
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
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: false, epoch: 2, owner: 'b' });
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

test('configured VMs: unknown VM ids cost nothing, only registered node ids may claim', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = await build(t, dir, { vms: new Map([['vm1', ['a', 'b']]]) });
  const hijack = await tas(app, 'evil', 1);
  assert.equal(hijack.statusCode, 403);
  assert.equal(hijack.json().code, 'FT_ERR_NODE_NOT_REGISTERED');
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas' })).json(), { epoch: 0, owner: '' }, 'nothing changed');
  assert.deepEqual((await tas(app, 'a', 1)).json(), { won: true, epoch: 1, owner: 'a' });
  assert.equal((await tas(app, 'evil', 2)).json().code, 'FT_ERR_NODE_NOT_REGISTERED', 'a foreign id never wins, not even the next epoch');
  const write = await app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/0', payload: { nodeId: 'evil', epoch: 1, data: Buffer.alloc(64, 9).toString('base64') } });
  assert.equal(write.json().code, 'FT_ERR_NOT_OWNER');
  for (let i = 0; i < 200; i++) {
    const vm = `probe${i}`;
    const r = await (i % 4 === 0 ? tas(app, 'a', 1, vm) : i % 4 === 1 ? app.inject({ url: `/v1/vms/${vm}/disk/0` }) : i % 4 === 2 ? app.inject({ url: `/v1/vms/${vm}/tas` }) : app.inject({ url: `/v1/vms/${vm}` }));
    assert.equal(r.statusCode, 404, `${vm}: ${r.body}`);
    assert.equal(r.json().code, 'FT_ERR_UNKNOWN_VM');
  }
  assert.equal(app.store.vmCount, 1);
  assert.ok(app.store.openFiles <= 1, `open files: ${app.store.openFiles}`);
  assert.deepEqual(readdirSync(dir).sort(), ['vm1.tas.json'], 'no file for any unknown VM id');
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1' })).json(), { vmId: 'vm1', epoch: 1, owner: 'a', blocks: 16 });
});

test('dev mode (no configured VMs): any ids, but at most maxOpenVms VMs and no state for a VM nobody claimed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = await build(t, dir, { maxOpenVms: 3 });
  for (let i = 0; i < 100; i++) assert.deepEqual((await app.inject({ url: `/v1/vms/probe${i}/tas` })).json(), { epoch: 0, owner: '' });
  for (const vm of ['v1', 'v2', 'v3']) assert.equal((await tas(app, 'a', 1, vm)).json().won, true);
  const full = await tas(app, 'a', 1, 'v4');
  assert.equal(full.statusCode, 409);
  assert.equal(full.json().code, 'FT_ERR_TOO_MANY_VMS');
  assert.equal((await tas(app, 'b', 2, 'v2')).json().won, true, 'the VMs it holds go on');
  assert.equal(app.store.vmCount, 3);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tas.json')).length, 3);
});

test('every storage route requires the peer credential; the client token is refused', async (t) => {
  const app = await build(t, undefined, { token: 'client-secret', peerToken: 'peer-secret', vms: new Map([['vm1', ['a', 'b']]]) });
  const routes = [
    { method: 'GET' as const, url: '/v1/storage' },
    { method: 'GET' as const, url: '/v1/vms/vm1' },
    { method: 'GET' as const, url: '/v1/vms/vm1/tas' },
    { method: 'POST' as const, url: '/v1/vms/vm1/tas', payload: { nodeId: 'a', epoch: 1 } },
    { method: 'GET' as const, url: '/v1/vms/vm1/disk/0' },
    { method: 'PUT' as const, url: '/v1/vms/vm1/disk/0', payload: { nodeId: 'a', epoch: 1, data: Buffer.alloc(64).toString('base64') } },
    { method: 'GET' as const, url: '/v1/version' },
    { method: 'GET' as const, url: '/v1/openapi.json' },
  ];
  for (const r of routes) {
    for (const auth of [undefined, 'Bearer client-secret', 'Bearer wrong']) {
      const res = await app.inject({ ...r, headers: auth ? { authorization: auth } : {} });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url} with ${auth}`);
      assert.equal(res.json().code, 'MR_ERR_UNAUTHORIZED');
    }
  }
  assert.deepEqual((await app.inject({ url: '/v1/vms/vm1/tas', headers: { authorization: 'Bearer peer-secret' } })).json(), { epoch: 0, owner: '' }, 'no claim got through');
  const ok = await app.inject({ method: 'POST', url: '/v1/vms/vm1/tas', payload: { nodeId: 'a', epoch: 1 }, headers: { authorization: 'Bearer peer-secret' } });
  assert.deepEqual(ok.json(), { won: true, epoch: 1, owner: 'a' });
  assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  const { missing } = await checkOpenApi(app, { authorization: 'Bearer peer-secret' });
  assert.deepEqual(missing, [], 'the OpenAPI document (peer credential) lists every storage route');
  assert.equal((await app.inject({ url: '/v1/version', headers: { authorization: 'Bearer peer-secret' } })).json().name, 'vm-storage');
});
