/**
 * A task stuck on a live worker: its thread spins forever while the worker's
 * main thread keeps heartbeating (so the lease is renewed). The progress the
 * heartbeats carry stops growing, and after --task-progress-timeout the
 * coordinator abandons the attempt: the worker terminates the task's thread
 * and goes on with other work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../src/cluster.ts';

const PLUGINS = `
export default [
  {
    name: 'stuck', description: 'map spins forever (a bug in user code); the worker process stays alive',
    map() { for (;;); },
    reduce: (_k, v) => String(v.length),
  },
];
`;

test('an attempt without progress is abandoned after --task-progress-timeout (its thread stopped, the task re-issued); the worker goes on with the next job', async (t) => {
  const c = new Cluster(t, PLUGINS);
  await c.start(['--task-progress-timeout', '3s', '--max-attempts', '2', '--heartbeat-timeout', '5s'], 1);
  const [worker] = (await c.api('GET', '/v1/workers')).body.workers;
  const stuck = await c.submit({ app: 'stuck', inputs: [c.lab.corpus[0]], reduces: 1, output: `${c.lab.root}/out-stuck` });
  const t0 = Date.now();
  const job = await c.finished(stuck, 30_000);
  // Two attempts, each abandoned ~3 s after it started: the job fails with the reason.
  assert.equal(job.state, 'failed');
  assert.match(job.error, /map-0 gave up after 2 attempts \(last: no progress for \d+ ticks\)/);
  assert.ok(Date.now() - t0 >= 6000, 'each attempt had its 3 s');
  // The same worker (its stuck thread terminated and replaced) runs the next job.
  const wc = await c.submit({ app: 'wc', inputs: c.lab.corpus, reduces: 2, output: `${c.lab.root}/out-wc` });
  const done = await c.finished(wc);
  assert.equal(done.state, 'succeeded', `${done.error}\n${c.lab.describe()}`);
  const after = (await c.api('GET', '/v1/workers')).body.workers;
  assert.deepEqual(after.map((w: { id: string }) => w.id), [worker.id], 'the worker was never lost');
});
