/**
 * Issue 7, finding 9 (trust), through the HTTP routes: the worker protocol
 * takes only the worker credential and each worker's own secret; only the
 * holder of an attempt completes it; the coordinator names the files reduces
 * read and publishes reduce outputs itself; outputs go only where allowed;
 * job sizes are bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, json, makeEnv, registerWorker } from './helper.ts';

test('the worker protocol takes the worker credential only, and the job API the client token only', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { token: 'client-tok', workerToken: 'worker-tok' });
  const client = { authorization: 'Bearer client-tok' };
  const worker = { authorization: 'Bearer worker-tok' };
  const body = { pid: 1, host: 'h', slots: 1 };
  const byClient = await json(app, 'POST', '/v1/workers', body, client);
  assert.equal(byClient.status, 401);
  assert.match(byClient.body.message, /MR_WORKER_TOKEN/);
  assert.equal((await json(app, 'POST', '/v1/workers', body)).status, 401);
  assert.equal((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 }, worker)).status, 401);
  assert.equal((await json(app, 'GET', '/v1/jobs', undefined, worker)).status, 401);
  const w = await registerWorker(app, 'worker-tok');
  assert.equal((await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, { ...client, 'x-mr-worker-secret': w.secret })).status, 401);
  assert.equal((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 }, client)).status, 201);
  const a = await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers);
  assert.equal(a.body.type, 'map');
  // Status readers use the client token.
  assert.equal((await json(app, 'GET', '/v1/workers', undefined, client)).body.workers.length, 1);
});

test('a worker acts only for itself: other secrets and unregistered ids are refused, and create no worker', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const w1 = await registerWorker(app);
  const w2 = await registerWorker(app);
  const j1 = (await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 })).body.id as string;
  const a = (await json(app, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  const ref = { jobId: j1, taskId: a.taskId, attempt: a.attempt };
  const files = [`${a.outputDir}/mr-0-0`];
  for (const [what, headers] of [['w2 secret', w2.headers], ['no secret', {}], ['made-up secret', { 'x-mr-worker-secret': 'guess' }]] as const) {
    for (const [route, b] of [['poll', {}], ['heartbeat', { tasks: [ref] }], ['complete', { ...ref, durationMs: 1, files }], ['fail', { ...ref, error: 'x', retryable: false }]] as const) {
      const r = await json(app, 'POST', `/v1/workers/${w1.id}/${route}`, b, headers);
      assert.equal(r.status, 403, `${route} with ${what}`);
      assert.equal(r.body.code, 'MR_ERR_WORKER_SECRET');
    }
  }
  for (const id of ['w9', 'ghost']) {
    const hb = await json(app, 'POST', `/v1/workers/${id}/heartbeat`, { tasks: [] }, w1.headers);
    assert.equal(hb.status, 404);
    assert.equal(hb.body.code, 'MR_ERR_WORKER_UNKNOWN');
    assert.equal((await json(app, 'POST', `/v1/workers/${id}/complete`, { ...ref, durationMs: 1, files }, w1.headers)).status, 404);
  }
  const workers = (await json(app, 'GET', '/v1/workers')).body.workers;
  assert.deepEqual(workers.map((w: { id: string }) => w.id), [w1.id, w2.id], 'no worker was created by a contact');
  // Another registered worker cannot complete or fail w1's attempt.
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w2.id}/complete`, { ...ref, durationMs: 1, files }, w2.headers)).body, { accepted: false, reason: 'not-lease-holder' });
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w2.id}/fail`, { ...ref, error: 'x', retryable: false }, w2.headers)).body, { accepted: false, reason: 'not-lease-holder' });
  const job = (await json(app, 'GET', `/v1/jobs/${j1}`)).body;
  assert.equal(job.state, 'running');
  assert.deepEqual(job.tasks.map, { total: 2, pending: 1, running: 1, done: 0 });
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w1.id}/complete`, { ...ref, durationMs: 1, files }, w1.headers)).body, { accepted: true });
});

test('the coordinator names the files: declared map outputs outside the attempt are refused; reduces read only coordinator-named files', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const w = await registerWorker(app);
  const secret = join(env.dir, 'secret.txt');
  writeFileSync(secret, 'api_key 12345\n');
  const j1 = (await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 2, output: env.out })).body.id as string;
  const a = (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
  const ref = { jobId: j1, taskId: a.taskId, attempt: a.attempt, durationMs: 1 };
  for (const files of [[secret, `${a.outputDir}/mr-0-1`], [`${a.outputDir}/../../../../secret.txt`], [`${a.outputDir}/mr-0-2`], [`${a.outputDir}/mr-1-0`]]) {
    const r = await json(app, 'POST', `/v1/workers/${w.id}/complete`, { ...ref, files }, w.headers);
    assert.equal(r.status, 400, JSON.stringify(files));
    assert.equal(r.body.code, 'MR_ERR_BAD_COMPLETION');
  }
  assert.equal((await json(app, 'GET', `/v1/jobs/${j1}`)).body.tasks.map.done, 0, 'nothing changed');
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w.id}/complete`, { ...ref, files: [`${a.outputDir}/mr-0-0`, `${a.outputDir}/mr-0-1`] }, w.headers)).body, { accepted: true });
  const r0 = (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
  assert.deepEqual(r0.inputs, [`${a.outputDir}/mr-0-0`]);
  assert.ok(r0.outputDir.startsWith(join(env.data, 'jobs', j1, 'work')), 'reduces write into the job work dir, not the output');
  // A reduce completion's files are ignored; an attempt that wrote nothing cannot make the job succeed (empty output).
  const forged = await json(app, 'POST', `/v1/workers/${w.id}/complete`, { jobId: j1, taskId: r0.taskId, attempt: r0.attempt, durationMs: 1, files: [secret] }, w.headers);
  assert.deepEqual(forged.body, { accepted: true });
  const job = (await json(app, 'GET', `/v1/jobs/${j1}`)).body;
  assert.equal(job.state, 'failed');
  assert.match(job.error, /could not publish its output: the attempt's output .* does not exist/);
  assert.doesNotMatch(job.error, /api_key/);
  assert.ok(!existsSync(join(env.out, 'mr-out-0')));
});

test('a reduce output appears in the output dir only through the accept; a late attempt cannot touch it', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { taskTimeoutMs: 200 });
  // The driver's tick timer is unref'd and inject() holds no socket: keep the loop alive while polls are parked.
  const alive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(alive));
  const w1 = await registerWorker(app);
  const w2 = await registerWorker(app);
  const j1 = (await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 1, output: env.out })).body.id as string;
  const m = (await json(app, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  await json(app, 'POST', `/v1/workers/${w1.id}/complete`, { jobId: j1, taskId: m.taskId, attempt: m.attempt, durationMs: 1, files: [] }, w1.headers);
  const late = (await json(app, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  mkdirSync(late.outputDir, { recursive: true });
  writeFileSync(join(late.outputDir, 'mr-out-0'), 'stale 1\n');
  // The lease runs out; the task goes to w2 (w1 keeps heartbeating: it is not lost, only late).
  let again;
  for (;;) {
    await json(app, 'POST', `/v1/workers/${w1.id}/heartbeat`, { tasks: [] }, w1.headers);
    again = (await json(app, 'POST', `/v1/workers/${w2.id}/poll`, {}, w2.headers)).body;
    if (again.type === 'reduce') break;
  }
  assert.notEqual(again.outputDir, late.outputDir);
  mkdirSync(again.outputDir, { recursive: true });
  writeFileSync(join(again.outputDir, 'mr-out-0'), 'fresh 1\n');
  assert.deepEqual((await json(app, 'POST', `/v1/workers/${w2.id}/complete`, { jobId: j1, taskId: again.taskId, attempt: again.attempt, durationMs: 1, files: [] }, w2.headers)).body, { accepted: true });
  assert.equal((await json(app, 'GET', `/v1/jobs/${j1}`)).body.state, 'succeeded');
  assert.equal(readFileSync(join(env.out, 'mr-out-0'), 'utf8'), 'fresh 1\n');
  const refused = await json(app, 'POST', `/v1/workers/${w1.id}/complete`, { jobId: j1, taskId: late.taskId, attempt: late.attempt, durationMs: 1, files: [] }, w1.headers);
  assert.equal(refused.body.accepted, false);
  assert.equal(readFileSync(join(env.out, 'mr-out-0'), 'utf8'), 'fresh 1\n');
});

test('outputs go only under the output roots, never into the data dir, an input root, a non-empty dir or an unfinished job\'s output', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { outputRoots: [env.dir] });
  const base = { app: 'wc', inputs: env.files, reduces: 1 };
  const full = join(env.dir, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'mr-out-0'), 'someone else\n');
  const cases: [string, string, number, string][] = [
    ['outside the output roots', '/tmp', 403, 'MR_ERR_OUTPUT_NOT_ALLOWED'],
    ['the data dir', env.data, 403, 'MR_ERR_OUTPUT_NOT_ALLOWED'],
    ['inside the data dir', join(env.data, 'jobs', 'x'), 403, 'MR_ERR_OUTPUT_NOT_ALLOWED'],
    ['an input root', env.root, 403, 'MR_ERR_OUTPUT_NOT_ALLOWED'],
    ['around an input root', env.dir, 403, 'MR_ERR_OUTPUT_NOT_ALLOWED'],
    ['a non-empty dir', full, 409, 'MR_ERR_OUTPUT_NOT_EMPTY'],
  ];
  for (const [what, output, status, code] of cases) {
    const r = await json(app, 'POST', '/v1/jobs', { ...base, output });
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, code, what);
  }
  assert.equal((await json(app, 'POST', '/v1/jobs', { ...base, output: env.out })).status, 201);
  for (const output of [env.out, join(env.out, 'sub')]) {
    const r = await json(app, 'POST', '/v1/jobs', { ...base, output });
    assert.equal(r.status, 409, output);
    assert.equal(r.body.code, 'MR_ERR_OUTPUT_IN_USE');
  }
  assert.equal((await json(app, 'GET', '/v1/jobs')).body.jobs.length, 1);
});

test('maps x reduces and queued work are bounded', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { maxIntermediatesPerJob: 4, maxQueuedTasks: 7 });
  const big = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 3 });
  assert.equal(big.status, 400);
  assert.equal(big.body.code, 'MR_ERR_JOB_TOO_BIG');
  assert.equal((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 2 })).status, 201);
  const more = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 2 });
  assert.equal(more.status, 429);
  assert.equal(more.body.code, 'MR_ERR_TOO_MANY_JOBS');
  assert.equal((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 2 })).status, 201);
});
