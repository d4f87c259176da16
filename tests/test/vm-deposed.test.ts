import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { VmClient } from '@mr/vmft-client';
import { VmCluster, vmStatus, until, waitProtected } from '../src/vm-cluster.ts';

/**
 * Status never lies: a primary stopped (SIGSTOP) while its backup takes over
 * reports live:false from the first answer it gives after SIGCONT (it counts
 * the time it was stopped before anything else), answers clients 503, and
 * then stops (it lost test-and-set).
 */
test('a primary stalled past failover says live:false and refuses clients from its first answer after SIGCONT', async (t) => {
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const client = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1' });
  t.after(() => client.close());
  for (let i = 1; i <= 20; i++) assert.equal((await client.incr('n')).value, i);
  const epoch = (await vmStatus(a.url))!.epoch;

  const t0 = performance.now();
  const at = (what: string) => t.diagnostic(`${what} at ${(performance.now() - t0).toFixed(0)} ms`);
  process.kill(a.proc.pid, 'SIGSTOP');
  let resumed = false;
  t.after(() => resumed || process.kill(a.proc.pid, 'SIGCONT'));
  await until('b to take over', 30_000, async () => {
    const s = await vmStatus(b.url);
    return s?.live && s.role === 'primary' && s.epoch === epoch + 1;
  });
  at('b live');
  // The new primary serves meanwhile.
  const atB = new VmClient({ nodes: [b.url], vmId: 'vm1' });
  t.after(() => atB.close());
  assert.equal((await atB.incr('n')).value, 21);

  // Resume a, and ask it at once (the requests wait in its socket while it is stopped).
  const asks = Array.from({ length: 5 }, (_, i) => i);
  const statusAtOnce = vmStatus(a.url);
  const requestAtOnce = request(`${a.url}/v1/vms/vm1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session: client.session, seq: 21, ackBelow: 21, op: 'incr', key: 'n' }),
  });
  at('incr at b answered');
  process.kill(a.proc.pid, 'SIGCONT');
  resumed = true;
  const first = await statusAtOnce;
  assert.equal(first?.live, false, `the first status after SIGCONT says live=false (role ${first?.role}, peer ${first?.peer.state}, reason ${first?.reason})`);
  const r = await requestAtOnce;
  const body = (await r.body.json()) as { code?: string; value?: unknown };
  assert.equal(r.statusCode, 503, `a client is not answered as live: ${JSON.stringify(body)}`);
  for (const _ of asks) {
    const s = await vmStatus(a.url);
    assert.equal(s?.live, false, 'never live again');
  }
  await until('a to stop (it lost test-and-set)', 10_000, async () => (await vmStatus(a.url))?.role === 'stopped');
  at('a stopped');
  const final = await vmStatus(a.url);
  assert.match(final?.reason ?? '', /lost test-and-set/);
  // The counter is exact: the probe sent to the deposed node was never applied.
  assert.equal((await atB.get('n')).value, '21');
});
