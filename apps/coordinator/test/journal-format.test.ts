import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUlidJobId } from '@mr/mapreduce-protocol';
import { build, json, makeEnv, registerWorker } from './helper.ts';

const fixture = new URL('./fixtures/journal-format1.jsonl', import.meta.url);

test('a journal written before ULID job ids (format 1, j<N>) still loads: its jobs, retirements and keys stay; new jobs get ULIDs after them', async (t) => {
  const env = makeEnv(t);
  mkdirSync(env.data, { recursive: true });
  writeFileSync(join(env.data, 'journal.jsonl'), readFileSync(fixture, 'utf8').replaceAll('@DIR@', env.dir));
  // The fixture's inputs, and the committed map output of its running job j5.
  mkdirSync(join(env.data, 'jobs', 'j5', 'work', 'm0-a1'), { recursive: true });
  writeFileSync(join(env.data, 'jobs', 'j5', 'work', 'm0-a1', 'mr-0-0'), 'y 1\n');
  const opts = { retainJobs: 2, recoveryMs: 0 };
  const app = await build(t, env, opts);

  const list = async (a = app) => (await json(a, 'GET', '/v1/jobs')).body.jobs.map((j: any) => [j.id, j.state]);
  assert.deepEqual(await list(), [['j3', 'cancelled'], ['j4', 'cancelled'], ['j5', 'running']]);
  for (const id of ['j1', 'j2']) assert.equal((await json(app, 'GET', `/v1/jobs/${id}`)).status, 410, `${id} was retired`);
  assert.equal((await json(app, 'GET', '/v1/jobs/j6')).status, 404, 'j6 never existed');
  const body = { app: 'wc', inputs: env.files, reduces: 1 };
  // Keys of kept jobs are still theirs (the fixture's requests named other paths, so here they
  // conflict, naming the job); the retired job's key is forgotten.
  for (const [key, id] of [['k-e', 'j5'], ['k-c', 'j3']]) {
    const r = await json(app, 'POST', '/v1/jobs', body, { 'idempotency-key': key! });
    assert.deepEqual([r.status, r.body.code], [422, 'MR_ERR_IDEMPOTENCY_CONFLICT']);
    assert.match(r.body.message, new RegExp(`\\(job ${id}\\)`));
  }
  const fresh = await json(app, 'POST', '/v1/jobs', body, { 'idempotency-key': 'k-a' });
  assert.equal(fresh.status, 201);
  const u = fresh.body.id as string;
  assert.ok(isUlidJobId(u), u);
  assert.deepEqual(await list(), [['j3', 'cancelled'], ['j4', 'cancelled'], ['j5', 'running'], [u, 'queued']], 'submission order, old ids first');
  // Paging crosses the change of form.
  const page = (await json(app, 'GET', '/v1/jobs?limit=2&after=j4')).body;
  assert.deepEqual([page.jobs.map((j: any) => j.id), page.next], [['j5', u], undefined]);

  // j5 finishes from where the old coordinator left it: map-0 stays committed, map-1 and the reduce run.
  const w = await registerWorker(app);
  const m = (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
  assert.deepEqual([m.jobId, m.taskId], ['j5', 'map-1']);
  mkdirSync(m.outputDir, { recursive: true });
  writeFileSync(join(m.outputDir, 'mr-1-0'), 'z 1\n');
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w.id}/complete`, { jobId: 'j5', taskId: 'map-1', attempt: m.attempt, durationMs: 1, files: [join(m.outputDir, 'mr-1-0')] }, w.headers)).body, { accepted: true });
  const r = (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
  assert.deepEqual([r.jobId, r.taskId], ['j5', 'reduce-0']);
  mkdirSync(r.outputDir, { recursive: true });
  writeFileSync(join(r.outputDir, 'mr-out-0'), 'y 1\nz 1\n');
  await json(app, 'POST', `/v1/workers/${w.id}/complete`, { jobId: 'j5', taskId: 'reduce-0', attempt: r.attempt, durationMs: 1, files: [] }, w.headers);
  assert.equal((await json(app, 'GET', '/v1/jobs/j5')).body.state, 'succeeded');
  assert.equal(readFileSync(join(env.dir, 'out-e', 'mr-out-0'), 'utf8'), 'y 1\nz 1\n');
  // j5's finish retired j3 (retain 2 finished jobs: j4, j5).
  assert.equal((await json(app, 'GET', '/v1/jobs/j3')).status, 410);

  // Compacted by this code (format 2), the journal loads again with the same answers.
  await app.scheduler.compactNow();
  const first = JSON.parse(readFileSync(join(env.data, 'journal.jsonl'), 'utf8').split('\n')[0]!);
  assert.deepEqual([first.type, first.format, first.legacySeq, first.lastId], ['snapshot', 2, 5, u]);
  await app.close();
  const again = await build(t, env, opts);
  assert.deepEqual(await list(again), [['j4', 'cancelled'], ['j5', 'succeeded'], [u, 'queued']]);
  for (const id of ['j1', 'j3']) assert.equal((await json(again, 'GET', `/v1/jobs/${id}`)).status, 410);
  assert.equal((await json(again, 'GET', '/v1/jobs/j6')).status, 404);
  const next = (await json(again, 'POST', '/v1/jobs', body)).body.id as string;
  assert.ok(isUlidJobId(next) && next > u, 'newer than every id the journal holds');
});
