import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, json, makeEnv, registerWorker } from './helper.ts';

test('submit plans the map tasks from the files: a big file divided into splits, small files combined; workers get real paths and the names as given', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const big = join(env.root, 'big.txt');
  writeFileSync(big, 'x'.repeat(95) + '\n');
  // A symlink inside the root: the job is handed out by its real path, with the name as given.
  const link = join(env.root, 'link.txt');
  symlinkSync(big, link);
  const sub = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [link, ...env.files], reduces: 1, splitSize: 40 });
  assert.equal(sub.status, 201);
  const job = (await json(app, 'GET', `/v1/jobs/${sub.body.id}`)).body;
  assert.deepEqual(job.tasks.map, { total: 4, pending: 4, running: 0, done: 0 });
  const w = await registerWorker(app);
  const splits = [];
  for (let i = 0; i < 4; i++) splits.push((await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body.split);
  assert.deepEqual(splits, [
    [{ path: big, name: link, index: 0, start: 0, end: 40 }],
    [{ path: big, name: link, index: 0, start: 40, end: 80 }],
    [{ path: big, name: link, index: 0, start: 80 }],
    [{ path: env.files[0], name: env.files[0], index: 1, start: 0 }, { path: env.files[1], name: env.files[1], index: 2, start: 0 }],
  ]);
  // Whole-file apps (the lab's contract): one file, one map task.
  const lab = await json(app, 'POST', '/v1/jobs', { app: 'nocrash', inputs: [big, ...env.files], reduces: 1, splitSize: 40 });
  assert.equal((await json(app, 'GET', `/v1/jobs/${lab.body.id}`)).body.tasks.map.total, 3);
});

test('a bad split size, or inputs that would make too many map tasks, is a 400 naming the problem; no job is created', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const zero = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, splitSize: 0 });
  assert.equal(zero.status, 400);
  assert.match(zero.body.message, /splitSize/);
  const big = join(env.root, 'big.txt');
  writeFileSync(big, Buffer.alloc(200_001, 0x61));
  const many = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [big], splitSize: 2 });
  assert.equal(many.status, 400);
  assert.match(many.body.message, /100001 map tasks \(limit 100000\): give a bigger splitSize/);
  assert.deepEqual((await json(app, 'GET', '/v1/jobs')).body.jobs, []);
});
