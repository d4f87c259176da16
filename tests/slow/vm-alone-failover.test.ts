/**
 * The pair's second failure: the backup is already gone (the primary won
 * test-and-set and runs alone, not protected), then the primary dies too.
 * What a user sees: no node answers as primary (no split brain, a clear
 * error from `mr vm client`), the storage node still holds the dead
 * primary's epoch and refuses that epoch's writes once a new primary took
 * the next one, and a new primary + joined backup make a protected pair again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { VmClient } from '@mr/vmft-client';
import { VmCluster, vmStatus, waitProtected, until } from '../src/vm-cluster.ts';
import { runMr } from '../src/procs.ts';

test('the primary running alone (backup gone) is killed: no live node, storage keeps its epoch and fences it, a new primary and backup protect the VM again', async (t) => {
  const c = new VmCluster(t, { nodes: 4 });
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const e0 = (await vmStatus(a.url))!.epoch;
  const client = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1', deadlineMs: 10_000 });
  t.after(() => client.close());
  for (let i = 0; i < 5; i++) await client.incr('n');

  // The backup dies: the primary asks test-and-set and goes on alone, unprotected.
  b.proc.kill();
  const alone = await until('the primary goes on alone', 15_000, async () => {
    const s = await vmStatus(a.url);
    return s?.live && s.epoch === e0 + 1 && s.peer.state !== 'connected' ? s : undefined;
  });
  assert.equal(alone.role, 'primary');
  for (let i = 0; i < 3; i++) assert.equal((await client.incr('n')).value, 6 + i, 'served alone');

  // Now the primary dies too.
  a.proc.kill();
  await a.proc.exited;
  const t0 = performance.now();
  const got = await runMr(['vm', 'client', '--nodes', `${a.url},${b.url}`, '--deadline', '2s', 'get', 'n'], { cwd: c.dir, env: process.env });
  t.diagnostic(`mr vm client with both nodes dead: exit ${got.code} after ${Math.round(performance.now() - t0)} ms: ${got.stderr.trim().split('\n').at(-1)}`);
  assert.notEqual(got.code, 0, 'no answer is made up');
  assert.equal(got.stdout, '');
  const flag = (await (await request(`${c.storageUrl}/v1/vms/vm1/tas`)).body.json()) as { epoch: number; owner: string };
  assert.deepEqual(flag, { epoch: e0 + 1, owner: 'a' }, "the storage node still holds the dead primary's epoch");

  // A new primary takes the next epoch; the dead primary's epoch is fenced at the storage node.
  const p = await c.node('c', ['--role', 'primary']);
  const live = await until('the new primary is live', 15_000, async () => {
    const s = await vmStatus(p.url);
    return s?.live ? s : undefined;
  });
  assert.equal(live.epoch, e0 + 2);
  const geometry = (await (await request(`${c.storageUrl}/v1/storage`)).body.json()) as { blockSize: number };
  const stale = await request(`${c.storageUrl}/v1/vms/vm1/disk/0`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nodeId: 'a', epoch: e0 + 1, data: Buffer.alloc(geometry.blockSize).toString('base64') }),
  });
  const refusal = (await stale.body.json()) as { code: string; message: string };
  assert.ok(stale.statusCode >= 400 && stale.statusCode < 500, `a write at the old epoch is refused (${stale.statusCode} ${refusal.code})`);
  const tas = await request(`${c.storageUrl}/v1/vms/vm1/tas`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nodeId: 'a', epoch: e0 + 2 }) });
  const tasBody = (await tas.body.json()) as { won?: boolean; owner?: string };
  assert.ok(tas.statusCode !== 200 || tasBody.won === false, `the old primary cannot win the new epoch (${tas.statusCode} ${JSON.stringify(tasBody)})`);

  // A new backup joins by state transfer: protected again, one live node.
  const d = await c.node('d', ['--join', p.url]);
  await waitProtected(p.url, d.url);
  const [sp, sd] = await Promise.all([vmStatus(p.url), vmStatus(d.url)]);
  assert.deepEqual([sp?.live, sd?.live], [true, false], 'one live node');
  const again = new VmClient({ nodes: [a.url, b.url, p.url, d.url], vmId: 'vm1', deadlineMs: 10_000 });
  t.after(() => again.close());
  const n = (await again.get('n')).value;
  // The guest's memory died with both nodes: report what the new pair holds (the kv guest keeps no state on disk).
  t.diagnostic(`after the double failure the new pair answers n=${JSON.stringify(n)} (the dead pair had answered 8)`);
  await again.incr('n');
});
