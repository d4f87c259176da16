import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { hasCode } from '@mr/errors';
import { StorageClient, startStorage } from '../src/index.ts';
import { PEER_TOKEN, TOKEN, startPair, waitProtected } from './helpers/pair.ts';

async function storage(t: { after(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = await startStorage({ port: 0, dataDir: dir, logLevel: false, token: TOKEN, peerToken: PEER_TOKEN, vms: new Map([['vm1', ['a', 'b']]]), blockSize: 512, blocks: 16 });
  t.after(() => s.close());
  return s;
}

test('StorageClient: outcomes as data (lost claim, fenced write), refusals as the storage node\'s coded errors', async (t) => {
  const s = await storage(t);
  const client = (nodeId: string, token = PEER_TOKEN, vmId = 'vm1') => {
    const c = new StorageClient({ url: s.url, vmId, nodeId, token });
    t.after(() => c.close());
    return c;
  };
  const a = client('a');
  const b = client('b');
  assert.deepEqual(await a.flag(), { epoch: 0, owner: '' });
  assert.deepEqual(await a.tas(1), { won: true, epoch: 1, owner: 'a' });
  assert.deepEqual(await b.tas(1), { won: false, epoch: 1, owner: 'a' });
  assert.deepEqual(await b.flag(), { epoch: 1, owner: 'a' }, 'any node of the VM reads who holds the epoch');
  const block = new Uint8Array(512).fill(5);
  assert.deepEqual(await a.write(0, block, 1), { refused: false });
  assert.deepEqual(await b.tas(2), { won: true, epoch: 2, owner: 'b' });
  assert.deepEqual(await a.write(0, new Uint8Array(512).fill(6), 1), { refused: true, epoch: 2, owner: 'b' }, 'a fenced write is data');
  assert.deepEqual(await a.tas(1), { won: false, epoch: 2, owner: 'b' }, 'an older epoch is a loss');
  assert.deepEqual(await b.read(0, 1), block, 'the fenced write changed nothing');
  const refusals: [() => Promise<unknown>, string][] = [
    [() => client('evil').tas(3), 'FT_ERR_NODE_NOT_REGISTERED'],
    [() => a.tas(7), 'FT_ERR_EPOCH_GAP'],
    [() => client('a', TOKEN).flag(), 'MR_ERR_UNAUTHORIZED'],
    [() => client('a', '').tas(3), 'MR_ERR_UNAUTHORIZED'],
    [() => client('a', PEER_TOKEN, 'vm2').tas(1), 'FT_ERR_UNKNOWN_VM'],
  ];
  for (const [p, code] of refusals) await assert.rejects(p(), (err) => hasCode(err, code), code);
  assert.deepEqual(await a.flag(), { epoch: 2, owner: 'b' }, 'no refusal changed the flag');
  const down = new StorageClient({ url: 'http://127.0.0.1:9', vmId: 'vm1', nodeId: 'a', token: PEER_TOKEN });
  await assert.rejects(down.flag(), (err) => hasCode(err, 'FT_ERR_STORAGE_UNAVAILABLE'));
  await down.close();
});

test('TAS hijack: a foreign node id, the client token, epoch 4294967295 and an epoch gap all fail; the pair stays protected and serving', async (t) => {
  const p = await startPair(t);
  const before = await waitProtected(p);
  assert.equal(await p.incr('k', 1), 1);
  const claim = async (nodeId: string, epoch: number, token: string) => {
    const r = await request(`${p.storageUrl}/v1/vms/vm1/tas`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ nodeId, epoch }),
    });
    return { status: r.statusCode, body: (await r.body.json()) as { code?: string; won?: boolean } };
  };
  const e = before.primary.epoch;
  const attempts = [
    { what: 'a foreign node id, next epoch', r: await claim('evil', e + 1, PEER_TOKEN), status: 403, code: 'FT_ERR_NODE_NOT_REGISTERED' },
    { what: 'the client token', r: await claim('b', e + 1, TOKEN), status: 401, code: 'MR_ERR_UNAUTHORIZED' },
    { what: 'epoch 4294967295', r: await claim('b', 4294967295, PEER_TOKEN), status: 400, code: undefined },
    { what: 'an epoch gap', r: await claim('b', e + 2, PEER_TOKEN), status: 409, code: 'FT_ERR_EPOCH_GAP' },
    { what: 'a foreign node id writing the disk', r: await (async () => {
      const w = await request(`${p.storageUrl}/v1/vms/vm1/disk/0`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${PEER_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ nodeId: 'evil', epoch: e, data: Buffer.alloc(512, 1).toString('base64') }),
      });
      return { status: w.statusCode, body: (await w.body.json()) as { code?: string } };
    })(), status: 409, code: 'FT_ERR_NOT_OWNER' },
  ];
  for (const a of attempts) {
    assert.equal(a.r.status, a.status, `${a.what}: ${JSON.stringify(a.r.body)}`);
    if (a.code) assert.equal(a.r.body.code, a.code, a.what);
  }
  const flag = await request(`${p.storageUrl}/v1/vms/vm1/tas`, { headers: { authorization: `Bearer ${PEER_TOKEN}` } });
  assert.deepEqual(await flag.body.json(), { epoch: e, owner: 'a' }, 'storage still names the primary');
  for (let i = 2; i <= 20; i++) assert.equal(await p.incr('k', i), i);
  const after = await waitProtected(p);
  assert.equal(after.primary.epoch, e, 'no failover happened');
  assert.equal(after.primary.nodeId, 'a');
});
