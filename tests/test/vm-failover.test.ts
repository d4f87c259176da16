import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad, VmClient } from '@mr/vmft-client';
import { createRng, seedFromEnv } from '@mr/sim';
import { VmCluster, vmStatus, waitProtected, oneTo, printed } from '../src/vm-cluster.ts';
import { runMr } from '../src/procs.ts';

test('kill -9 of the primary mid-workload: the backup takes over; every request is answered exactly once', async (t) => {
  const seed = seedFromEnv(process.env, Date.now() % 100_000);
  const rng = createRng(seed);
  t.diagnostic(`seed ${seed} (SEED=${seed} replays the kill moment)`);
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const epoch0 = (await vmStatus(a.url))!.epoch;

  const N = 1500;
  const killAfter = rng.range(200, 1000);
  let killedAt = 0;
  const report = await runLoad({
    nodes: [a.url, b.url],
    vmId: 'vm1',
    requests: N,
    clients: 8,
    key: 'counter',
    deadlineMs: 60_000,
    onAnswer: (done) => {
      if (done === killAfter && !killedAt) {
        killedAt = performance.now();
        a.proc.kill();
      }
    },
  });
  t.diagnostic(`killed the primary after ${killAfter} answers; ${JSON.stringify({ ...report, values: undefined })}`);
  assert.ok(killedAt > 0, 'the primary was killed mid-workload');
  assert.deepEqual(report.errors, []);
  assert.equal(report.answered, N);
  assert.deepEqual([...report.values].sort((x, y) => x - y), oneTo(N), 'each incr applied once and answered once');
  const exit = await a.proc.exited;
  assert.equal(exit.signal, 'SIGKILL');

  const s = await vmStatus(b.url);
  assert.equal(s?.role, 'primary');
  assert.equal(s?.live, true);
  assert.equal(s?.epoch, epoch0 + 1, 'the backup won test-and-set for the next epoch');
  const client = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1' });
  t.after(() => client.close());
  assert.equal((await client.get('counter')).value, String(N), 'final counter equals the number of requests');
  await printed(b.proc, /backup went live/);

  // The mr command follows the live node too (the dead primary listed first).
  const got = await runMr(['vm', 'client', '--nodes', `${a.url},${b.url}`, 'get', 'counter'], { cwd: c.dir, env: process.env });
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout, `${N}\n`);
  const load = await runMr(['vm', 'client', '--nodes', `${a.url},${b.url}`, '--load', '40', '--clients', '2', '--key', 'other', '--json'], { cwd: c.dir, env: process.env });
  assert.equal(load.code, 0, load.stderr);
  const r = JSON.parse(load.stdout) as { answered: number; values: number[] };
  assert.equal(r.answered, 40);
  assert.deepEqual([...r.values].sort((x, y) => x - y), oneTo(40));
});
