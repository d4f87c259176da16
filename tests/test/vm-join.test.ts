import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad, VmClient } from '@mr/vmft-client';
import { createRng, seedFromEnv } from '@mr/sim';
import { VmCluster, vmStatus, until, waitProtected, oneTo, printed } from '../src/vm-cluster.ts';

test('re-protection with --join: a new backup joins the survivor by state transfer, then a second failover loses nothing', async (t) => {
  const seed = seedFromEnv(process.env, Date.now() % 100_000);
  const rng = createRng(seed);
  t.diagnostic(`seed ${seed}`);
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const values: number[] = [];

  // 1. The primary dies mid-workload; b takes over and runs alone.
  const kill1 = rng.range(50, 400);
  const r1 = await runLoad({ nodes: [a.url, b.url], vmId: 'vm1', requests: 500, clients: 4, deadlineMs: 60_000, onAnswer: (n) => n === kill1 && a.proc.kill() });
  assert.deepEqual(r1.errors, []);
  values.push(...r1.values);
  const alone = await vmStatus(b.url);
  assert.equal(alone?.live, true);
  assert.equal(alone?.peer.state, 'none', 'unprotected until a backup joins');

  // 2. A new backup joins while a client keeps issuing requests.
  const client = new VmClient({ nodes: [b.url], vmId: 'vm1' });
  t.after(() => client.close());
  let joining = true;
  let maxPauseMs = 0;
  const during = (async () => {
    while (joining) {
      const t0 = performance.now();
      values.push(Number((await client.incr('counter')).value));
      maxPauseMs = Math.max(maxPauseMs, performance.now() - t0);
    }
  })();
  const n = await c.node('c', ['--join', b.url]);
  await waitProtected(b.url, n.url);
  joining = false;
  await during;
  t.diagnostic(`longest client request while c joined: ${maxPauseMs.toFixed(1)} ms`);
  const [sb, sc] = await Promise.all([vmStatus(b.url), vmStatus(n.url)]);
  assert.equal(sc?.role, 'backup');
  assert.equal(sc?.epoch, sb?.epoch);
  await printed(n.proc, /snapshot installed/);
  // Same state at the same instruction: the joined backup's checkpoint hash matches the primary's.
  await until('a common checkpoint', 10_000, async () => {
    const [p, q] = await Promise.all([vmStatus(b.url), vmStatus(n.url)]);
    return p && q && p.hash.icount === q.hash.icount && p.hash.value === q.hash.value;
  });

  // 3. The second failover: b dies mid-workload, c takes over.
  const epoch2 = (await vmStatus(b.url))!.epoch;
  const kill2 = rng.range(50, 400);
  const r3 = await runLoad({ nodes: [b.url, n.url], vmId: 'vm1', requests: 500, clients: 4, deadlineMs: 60_000, onAnswer: (k) => k === kill2 && b.proc.kill() });
  assert.deepEqual(r3.errors, []);
  values.push(...r3.values);
  const sc2 = await vmStatus(n.url);
  assert.equal(sc2?.live, true);
  assert.equal(sc2?.epoch, epoch2 + 1, 'c won test-and-set for the epoch after b');

  const total = values.length;
  assert.deepEqual([...values].sort((x, y) => x - y), oneTo(total), 'every request across both failovers applied and answered once');
  const check = new VmClient({ nodes: [n.url], vmId: 'vm1' });
  t.after(() => check.close());
  assert.equal((await check.get('counter')).value, String(total));
});
