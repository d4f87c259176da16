/**
 * Exactly once with client sessions, over real processes: a request whose
 * answer the client lost is retried after more than 1,024 other requests and a
 * kill -9 failover, and again after a new backup joined by state transfer and
 * a second kill -9: every retry gets the remembered answer and the request is
 * applied once. (The kv guest before sessions remembered only the last 1,024
 * requests, so this retry was applied twice.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad, VmClient } from '@mr/vmft-client';
import { VmCluster, vmStatus, until, waitProtected, printed } from '../src/vm-cluster.ts';

test('sessions: a retry of a lost answer after 1,024+ other requests, a kill -9 failover and a join is applied once', async (t) => {
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);

  // The request whose answer is "lost": the primary released it (the backup acknowledged it), the client never saw it.
  const lost = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1', retryDelayMs: 10 });
  t.after(() => lost.close({ keepSession: true }));
  const first = await lost.incr('x');
  assert.deepEqual({ value: first.value, seq: first.seq }, { value: 1, seq: 1 });
  const retry = () => lost.requestAt({ session: first.session, seq: 1, ackBelow: 1 }, { op: 'incr', key: 'x' });

  // 1,100 other requests from 4 other clients, each in its own session.
  const others = 1100;
  const load = await runLoad({ nodes: [a.url, b.url], vmId: 'vm1', requests: others, clients: 4, key: 'x', deadlineMs: 60_000 });
  assert.deepEqual(load.errors, []);
  assert.equal(Math.max(...load.values), others + 1);

  // kill -9 the primary; b finishes the log, wins test-and-set and goes live.
  a.proc.kill();
  await until('b to go live', 30_000, async () => (await vmStatus(b.url))?.live);
  const r1 = await retry();
  assert.equal(r1.node, b.url);
  assert.equal(r1.value, 1, 'the retry at the new primary gets the remembered answer');
  const check = new VmClient({ nodes: [b.url], vmId: 'vm1' });
  t.after(() => check.close());
  assert.equal((await check.get('x')).value, String(others + 1), 'applied once');

  // A new backup joins b by state transfer (the session table is guest memory: it travels in the snapshot).
  const n = await c.node('c', ['--join', b.url]);
  await waitProtected(b.url, n.url);
  await printed(n.proc, /snapshot installed/);
  b.proc.kill();
  await until('c to go live', 30_000, async () => (await vmStatus(n.url))?.live);
  const lost2 = new VmClient({ nodes: [n.url], vmId: 'vm1', retryDelayMs: 10 });
  t.after(() => lost2.close({ keepSession: true }));
  const r2 = await lost2.requestAt({ session: first.session, seq: 1, ackBelow: 1 }, { op: 'incr', key: 'x' });
  assert.equal(r2.value, 1, 'the backup that joined by state transfer remembers the answer too');
  const check2 = new VmClient({ nodes: [n.url], vmId: 'vm1' });
  t.after(() => check2.close());
  assert.equal((await check2.get('x')).value, String(others + 1), 'still applied once');

  // Acknowledging seq 1 (seq 2 says it has the answer) makes the guest forget it: a later retry is refused, not applied.
  assert.equal((await lost2.requestAt({ session: first.session, seq: 2, ackBelow: 2 }, { op: 'get', key: 'x' })).value, String(others + 1));
  await assert.rejects(lost2.requestAt({ session: first.session, seq: 1, ackBelow: 1 }, { op: 'incr', key: 'x' }), (e: { message: string; outcome: string }) => /FT_ERR_SEQ_ACKED/.test(e.message) && e.outcome === 'unknown');
  assert.equal((await check2.get('x')).value, String(others + 1));
});
