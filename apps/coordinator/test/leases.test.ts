import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { build, json, makeEnv, registerWorker } from './helper.ts';

type W = Awaited<ReturnType<typeof registerWorker>>;
const poll = async (app: FastifyInstance, w: W) => (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
const complete = (app: FastifyInstance, w: W, a: { jobId: string; taskId: string; attempt: number; outputDir: string; index: number }) =>
  json(app, 'POST', `/v1/workers/${w.id}/complete`, { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, durationMs: 1, files: [`${a.outputDir}/mr-${a.index}-0`] }, w.headers);
const heartbeat = (app: FastifyInstance, w: W, tasks: object[]) => json(app, 'POST', `/v1/workers/${w.id}/heartbeat`, { tasks }, w.headers);

test('after a restart a journaled lease is only its holder\'s: another worker cannot take the attempt over; the holder\'s completion from the outage is accepted', async (t) => {
  const env = makeEnv(t);
  const first = await build(t, env);
  await json(first, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: env.out });
  const w1 = await registerWorker(first);
  const w2 = await registerWorker(first);
  const a = await poll(first, w1);
  const b = await poll(first, w1);
  assert.deepEqual([a.taskId, b.taskId], ['map-0', 'map-1']);
  // The lease records are lazy: the close writes them (as a later durable write or the next tick would).
  await first.close();

  const second = await build(t, env);
  const view = (await json(second, 'GET', '/v1/workers')).body.workers;
  assert.deepEqual(view.find((w: any) => w.id === w1.id).tasks.map((r: any) => r.taskId), ['map-0', 'map-1']);
  // w2 is registered and has the worker credential, but it did not hold the lease.
  assert.deepEqual((await complete(second, w2, a)).body, { accepted: false, reason: 'not-lease-holder' });
  assert.deepEqual((await heartbeat(second, w2, [{ jobId: b.jobId, taskId: b.taskId, attempt: b.attempt }])).body.abandon, [{ jobId: b.jobId, taskId: b.taskId, attempt: b.attempt }]);
  // Nothing is handed out again while the holder's leases are valid.
  const idle = json(second, 'POST', `/v1/workers/${w2.id}/poll`, {}, w2.headers);
  // The holder: its completion (finished during the outage) is accepted, its heartbeat renews the other lease.
  assert.deepEqual((await complete(second, w1, a)).body, { accepted: true });
  assert.deepEqual((await heartbeat(second, w1, [{ jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, progress: 10 }])).body.abandon, []);
  assert.deepEqual((await complete(second, w1, b)).body, { accepted: true });
  const r = (await idle).body;
  assert.equal(r.taskId, 'reduce-0', 'the parked poll got the reduce, not a map again');
});

test('a worker declared lost stays lost after a restart: its leases are released and its reports refused', async (t) => {
  const env = makeEnv(t);
  const first = await build(t, env, { tickMs: 20, heartbeatTimeoutMs: 200 });
  await json(first, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: env.out });
  const w1 = await registerWorker(first);
  const w2 = await registerWorker(first);
  const a = await poll(first, w1);
  const parked = json(first, 'POST', `/v1/workers/${w2.id}/poll`, {}, w2.headers);
  const b = (await parked).body;
  assert.equal(b.taskId, 'map-1');
  // w1 falls silent (w2 heartbeats): after the heartbeat timeout w1 is lost and its task goes to w2.
  while ((await json(first, 'GET', '/v1/workers')).body.workers.some((w: any) => w.id === w1.id)) {
    await heartbeat(first, w2, [{ jobId: b.jobId, taskId: b.taskId, attempt: b.attempt }]);
    await sleep(20);
  }
  const c = await poll(first, w2);
  assert.deepEqual([c.taskId, c.attempt > a.attempt], ['map-0', true]);
  await first.close();

  const second = await build(t, env, { tickMs: 20, heartbeatTimeoutMs: 200 });
  assert.deepEqual((await json(second, 'GET', '/v1/workers')).body.workers.map((w: any) => w.id), [w2.id]);
  const late = await complete(second, w1, a);
  assert.deepEqual([late.status, late.body.code], [404, 'MR_ERR_WORKER_UNKNOWN']);
  assert.deepEqual((await complete(second, w2, b)).body, { accepted: true });
  assert.deepEqual((await complete(second, w2, c)).body, { accepted: true });
});

test('--task-progress-timeout: an attempt whose heartbeats report no progress is abandoned (the worker is told to stop) and handed out again', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { tickMs: 20, heartbeatTimeoutMs: 2000, progressTimeoutMs: 300 });
  const j1 = (await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 1, output: env.out })).body.id as string;
  const w1 = await registerWorker(app);
  const w2 = await registerWorker(app);
  const a = await poll(app, w1);
  const ref = { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt };
  const parked = json(app, 'POST', `/v1/workers/${w2.id}/poll`, {}, w2.headers);
  // Growing progress keeps it for longer than the timeout.
  const t0 = Date.now();
  for (let p = 1; Date.now() - t0 < 600; p++) {
    assert.deepEqual((await heartbeat(app, w1, [{ ...ref, progress: p * 100 }])).body.abandon, []);
    await sleep(50);
  }
  assert.equal(app.scheduler.core.job(j1)!.tasks.map.running, 1);
  // Then the count stops growing while heartbeats go on: the attempt is abandoned and re-issued.
  let abandon: unknown[] = [];
  const stuck = Date.now();
  while (abandon.length === 0) {
    assert.ok(Date.now() - stuck < 5000, 'a stuck attempt is abandoned');
    abandon = (await heartbeat(app, w1, [{ ...ref, progress: 1 }])).body.abandon;
    await sleep(50);
  }
  assert.deepEqual(abandon, [ref]);
  const b = (await parked).body;
  assert.deepEqual([b.taskId, b.attempt], ['map-0', a.attempt + 1]);
  assert.deepEqual((await complete(app, w1, a)).body, { accepted: false, reason: 'stale-attempt' });
  assert.deepEqual((await complete(app, w2, b)).body, { accepted: true });
});
