/**
 * VM failover with arbitration on a three-member etcd cluster (`mr vm node
 * --storage etcd://… --disk STORAGE`), beside the same failover arbitrated by
 * the storage node: mid-load one etcd member and the primary are killed
 * (kill -9 both), the backup wins test-and-set exactly once and serves; every
 * unique incr is answered once (values 1..N). Each variant reports its
 * failover time (kill -> the backup live); the figures are under whatever load
 * the machine has, side by side in one run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '@mr/vmft-client';
import { VmCluster, vmStatus, until, waitProtected, oneTo } from '../src/vm-cluster.ts';
import { EtcdCluster, needEtcd } from '../src/etcd.ts';

const times: Record<string, number> = {};

for (const arbiter of ['storage', 'etcd'] as const) {
  test(`failover arbitrated by ${arbiter === 'etcd' ? 'a 3-member etcd cluster (one member killed with the primary)' : 'the storage node'}: the backup wins once, the history is 1..N`, async (t) => {
    if (arbiter === 'etcd' && !needEtcd(t)) return;
    const etcd = arbiter === 'etcd' ? await EtcdCluster.start(t, { members: 3 }) : undefined;
    const c = new VmCluster(t, { nodes: 2, ...(etcd ? { etcd: etcd.endpoints } : {}) });
    await c.storage();
    const b = await c.node('b', ['--role', 'backup']);
    const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
    await waitProtected(a.url, b.url);
    const epoch0 = (await vmStatus(a.url))!.epoch;
    assert.equal(epoch0, 1);

    const N = 400;
    let killedAt = 0;
    let failover: Promise<number> | undefined;
    const report = await runLoad({
      nodes: [a.url, b.url],
      vmId: 'vm1',
      requests: N,
      clients: 4,
      deadlineMs: 60_000,
      onAnswer: (done) => {
        if (done !== 150) return;
        etcd?.kill(0);
        a.proc.kill();
        killedAt = performance.now();
        failover = liveAfter(b.url, killedAt);
      },
    });
    assert.ok(killedAt > 0 && failover);
    const liveMs = await failover;
    const live = (await vmStatus(b.url))!;
    assert.deepEqual(report.errors, []);
    assert.deepEqual([...report.values].sort((x, y) => x - y), oneTo(N), 'every unique incr applied once');
    assert.equal(live.epoch, epoch0 + 1, 'the backup holds the next epoch');
    // Exactly one win by the backup (its log names each test-and-set outcome).
    const wins = b.proc.stdout.split('\n').filter((l) => l.includes('won test-and-set'));
    assert.equal(wins.length, 1, wins.join('\n'));
    if (etcd) assert.match(wins[0]!, /"arbiter":"etcd"/);
    times[arbiter] = Math.round(liveMs);
    t.diagnostic(`${arbiter}: kill -> backup live in ${liveMs.toFixed(0)} ms (measured under the machine's current load)`);
  });
}

test('failover times side by side', (t) => {
  t.diagnostic(`failover (kill -9 -> backup live), measured in one run: ${JSON.stringify(times)}`);
});

/** Polls the node every 10 ms from `since` (performance.now() at the kill) until it says it is live: the failover time. */
async function liveAfter(url: string, since: number): Promise<number> {
  await until('the backup to go live', 30_000, async () => (await vmStatus(url, 'vm1'))?.live);
  return performance.now() - since;
}
