import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { authHeader } from '@mr/service-kit';
import { checkOpenApi } from '@mr/service-kit/testing';
import { isUlidJobId } from '@mr/mapreduce-protocol';
import { build, json, makeEnv, registerWorker } from './helper.ts';

test('a job runs end to end through the worker protocol and is visible in the job API', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const reg = await json(app, 'POST', '/v1/workers', { pid: 1, host: 'h', slots: 1 });
  assert.equal(reg.status, 201);
  const w = reg.body.workerId as string;
  assert.equal(reg.body.pollTimeoutMs, 10_000);
  assert.match(reg.body.secret, /^[A-Za-z0-9_-]{40,}$/);
  const h = { 'x-mr-worker-secret': reg.body.secret as string };

  // A poll before any job is parked, and answered the moment the job arrives.
  const parked = json(app, 'POST', `/v1/workers/${w}/poll`, {}, h);
  const sub = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 2, output: env.out, name: 'demo' });
  assert.equal(sub.status, 201);
  assert.equal(sub.body.state, 'queued');
  const id = sub.body.id as string;
  assert.ok(isUlidJobId(id), `a ULID: ${id}`);
  const a0 = (await parked).body;
  assert.equal(a0.type, 'map');
  assert.equal(a0.input, env.files[0]);
  assert.equal(a0.leaseMs, 10_000);
  assert.equal(a0.outputDir, join(env.data, 'jobs', id, 'work', 'm0-a1'));

  const a1 = (await json(app, 'POST', `/v1/workers/${w}/poll`, undefined, h)).body;
  assert.equal(a1.taskId, 'map-1');
  for (const a of [a0, a1]) {
    const files = [0, 1].map((r) => `${a.outputDir}/mr-${a.index}-${r}`);
    const ack = await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: id, taskId: a.taskId, attempt: a.attempt, durationMs: 12, files, counters: { records: 2 } }, h);
    assert.deepEqual(ack.body, { accepted: true });
  }
  // A stale attempt is answered as data.
  const stale = await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: id, taskId: 'map-0', attempt: 7, durationMs: 1, files: [] }, h);
  assert.deepEqual(stale.body, { accepted: false, reason: 'already-done' });

  const r0 = (await json(app, 'POST', `/v1/workers/${w}/poll`, {}, h)).body;
  assert.equal(r0.type, 'reduce');
  assert.deepEqual(r0.inputs, [`${a0.outputDir}/mr-0-0`, `${a1.outputDir}/mr-1-0`]);
  assert.equal(r0.outputDir, join(env.data, 'jobs', id, 'work', 'r0-a1'));
  const workers = await json(app, 'GET', '/v1/workers');
  assert.deepEqual(workers.body.workers[0].tasks, [{ jobId: id, taskId: 'reduce-0', attempt: 1 }]);
  const r1 = (await json(app, 'POST', `/v1/workers/${w}/poll`, {}, h)).body;
  for (const r of [r0, r1]) {
    // The worker writes into its attempt's directory; the coordinator's accept renames it into the output.
    mkdirSync(r.outputDir, { recursive: true });
    writeFileSync(`${r.outputDir}/mr-out-${r.index}`, `out ${r.index}\n`);
    await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: id, taskId: r.taskId, attempt: r.attempt, durationMs: 3, files: [] }, h);
  }
  assert.equal(readFileSync(join(env.out, 'mr-out-1'), 'utf8'), 'out 1\n');
  const job = (await json(app, 'GET', `/v1/jobs/${id}`)).body;
  assert.equal(job.state, 'succeeded');
  // ULIDs are case-insensitive: the lower-case form names the same job.
  assert.equal((await json(app, 'GET', `/v1/jobs/${id.toLowerCase()}`)).body.id, id);
  assert.equal(job.name, 'demo');
  assert.deepEqual(job.tasks.map, { total: 2, pending: 0, running: 0, done: 2 });
  assert.deepEqual(job.counters, { records: 4 });
  assert.deepEqual(job.outputFiles, [`${env.out}/mr-out-0`, `${env.out}/mr-out-1`]);
  assert.ok(job.startedAt && job.finishedAt);
  const list = await json(app, 'GET', '/v1/jobs');
  assert.equal(list.body.jobs.length, 1);

  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  assert.match(metrics.body, /mr_tasks_total\{phase="map",outcome="committed",service="mr-coordinator"\} 2/);
  assert.match(metrics.body, /mr_jobs\{state="succeeded",service="mr-coordinator"\} 1/);
  assert.match(metrics.body, /mr_task_duration_seconds_count\{service="mr-coordinator",phase="reduce"\} 2/);
  assert.match(metrics.body, /mr_workers\{service="mr-coordinator"\} 1/);

  // Cancelling a finished job is refused and changes nothing.
  const del = await json(app, 'DELETE', `/v1/jobs/${id}`);
  assert.equal(del.status, 409);
  assert.equal(del.body.code, 'MR_ERR_JOB_FINISHED');
});

test('bad submissions get a clear 4xx and create no job', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { token: 's3cret', workerToken: 'w0rker' });
  const auth = { authorization: 'Bearer s3cret' };
  const outside = join(env.dir, 'outside.txt');
  writeFileSync(outside, 'x');
  symlinkSync(outside, join(env.root, 'link.txt'));
  mkdirSync(join(env.root, 'sub'));
  const good = { app: 'wc', inputs: env.files, reduces: 3, output: env.out };
  const cases: [string, unknown, number, string, RegExp][] = [
    ['unknown app', { ...good, app: 'nope' }, 400, 'MR_ERR_UNKNOWN_APP', /unknown app "nope" \(known: .*wc/],
    ['bad app options', { ...good, app: 'grep' }, 400, 'MR_ERR_BAD_OPTIONS', /grep needs option pattern/],
    ['relative input', { ...good, inputs: ['inputs/a.txt'] }, 400, 'MR_ERR_BAD_INPUT', /input 0 "inputs\/a.txt" is not an absolute path/],
    ['escaping input', { ...good, inputs: [`${env.root}/../outside.txt`] }, 400, 'MR_ERR_BAD_INPUT', /is not a normalized path/],
    ['input outside the roots', { ...good, inputs: [outside] }, 403, 'MR_ERR_INPUT_OUTSIDE_ROOTS', /is not under an allowed input root/],
    ['symlink escaping the root', { ...good, inputs: [join(env.root, 'link.txt')] }, 403, 'MR_ERR_INPUT_OUTSIDE_ROOTS', /link\.txt" is not under/],
    ['missing input', { ...good, inputs: [join(env.root, 'missing.txt')] }, 400, 'MR_ERR_BAD_INPUT', /missing\.txt" does not exist/],
    ['directory input', { ...good, inputs: [join(env.root, 'sub')] }, 400, 'MR_ERR_BAD_INPUT', /is not a regular file/],
    ['relative output', { ...good, output: 'out' }, 400, 'MR_ERR_BAD_OUTPUT', /output "out" is not an absolute path/],
    ['names not one per input', { ...good, names: ['a.txt', 'b.txt', 'c.txt'] }, 400, 'MR_ERR_BAD_INPUT', /names has 3 entries for \d+ inputs/],
    ['output is a file', { ...good, output: env.files[0] }, 400, 'MR_ERR_BAD_OUTPUT', /exists and is not a directory/],
    ['zero reduces', { ...good, reduces: 0 }, 400, 'MR_ERR_BAD_REQUEST', /reduces/],
    ['absurd reduces', { ...good, reduces: 1_000_000 }, 400, 'MR_ERR_BAD_REQUEST', /reduces/],
    ['no inputs', { ...good, inputs: [] }, 400, 'MR_ERR_BAD_REQUEST', /inputs/],
    ['unknown field', { ...good, extra: 1 }, 400, 'MR_ERR_BAD_REQUEST', /additional/],
    ['reduces as a string', { ...good, reduces: '3' }, 400, 'MR_ERR_BAD_REQUEST', /reduces/],
    ['reduces null', { ...good, reduces: null }, 400, 'MR_ERR_BAD_REQUEST', /reduces/],
    ['name null', { ...good, name: null }, 400, 'MR_ERR_BAD_REQUEST', /name/],
    ['inputs as a string', { ...good, inputs: env.files[0] }, 400, 'MR_ERR_BAD_REQUEST', /inputs/],
    ['output under a file', { ...good, output: `${env.files[0]}/out` }, 400, 'MR_ERR_BAD_OUTPUT', /under an existing file/],
    ['output segment over 255 bytes', { ...good, output: `${env.dir}/${'x'.repeat(256)}` }, 400, 'MR_ERR_BAD_OUTPUT', /longer than 255 bytes/],
  ];
  for (const [what, body, status, code, message] of cases) {
    const r = await json(app, 'POST', '/v1/jobs', body, auth);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, code, what);
    assert.match(r.body.message, message, what);
  }
  const big = await app.inject({ method: 'POST', url: '/v1/jobs', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ ...good, name: 'x'.repeat(5 * 1024 * 1024) }) });
  assert.equal(big.statusCode, 413);
  assert.equal(JSON.parse(big.body).code, 'FST_ERR_CTP_BODY_TOO_LARGE');
  const noToken = await json(app, 'POST', '/v1/jobs', good);
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.code, 'MR_ERR_UNAUTHORIZED');
  const wrongToken = await json(app, 'POST', '/v1/jobs', good, { authorization: 'Bearer nope' });
  assert.equal(wrongToken.status, 401);
  assert.equal((await json(app, 'GET', '/healthz')).status, 200);

  const list = await json(app, 'GET', '/v1/jobs', undefined, auth);
  assert.deepEqual(list.body.jobs, [], 'no job was created');
  const ok = await json(app, 'POST', '/v1/jobs', good, auth);
  assert.equal(ok.status, 201);
  assert.ok(isUlidJobId(ok.body.id));
  assert.equal((await json(app, 'GET', '/v1/jobs', undefined, auth)).body.jobs.length, 1);
});

test('without input roots every submission is refused with a message saying how to fix it', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { inputRoots: [] });
  const r = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files });
  assert.equal(r.status, 403);
  assert.equal(r.body.code, 'MR_ERR_NO_INPUT_ROOTS');
  assert.match(r.body.message, /--input-root/);
});

test('unknown job ids are 404; cancel stops a running job and its workers are told to abandon', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  assert.equal((await json(app, 'GET', '/v1/jobs/j9')).body.code, 'MR_ERR_JOB_NOT_FOUND');
  assert.equal((await json(app, 'DELETE', '/v1/jobs/j9')).status, 404);
  assert.equal((await json(app, 'GET', '/v1/jobs/bad$id')).status, 400);
  assert.equal((await json(app, 'GET', '/v1/jobs/01JDZ8Y00000000000000000AB')).status, 404, 'a ULID never handed out');
  const id = (await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 })).body.id as string;
  const wx = await registerWorker(app);
  const a = (await json(app, 'POST', `/v1/workers/${wx.id}/poll`, {}, wx.headers)).body;
  assert.equal(a.type, 'map');
  assert.equal(a.outputDir, join(env.data, 'jobs', id, 'work', 'm0-a1'));
  const del = await json(app, 'DELETE', `/v1/jobs/${id}`);
  assert.equal(del.status, 200);
  assert.equal(del.body.state, 'cancelled');
  const hb = await json(app, 'POST', `/v1/workers/${wx.id}/heartbeat`, { tasks: [{ jobId: id, taskId: a.taskId, attempt: a.attempt }] }, wx.headers);
  assert.deepEqual(hb.body.abandon, [{ jobId: id, taskId: a.taskId, attempt: a.attempt }]);
  const late = await json(app, 'POST', `/v1/workers/${wx.id}/complete`, { jobId: id, taskId: a.taskId, attempt: a.attempt, durationMs: 1, files: [] }, wx.headers);
  assert.deepEqual(late.body, { accepted: false, reason: 'job-not-running' });
  assert.equal((await json(app, 'GET', `/v1/jobs/${id}`)).body.output, join(env.data, 'jobs', id, 'out'));
});

test('a restarted coordinator still knows every accepted job and finishes unfinished ones', async (t) => {
  const env = makeEnv(t);
  const first = await build(t, env);
  const j1 = (await json(first, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: env.out })).body.id as string;
  const j2 = (await json(first, 'POST', '/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 1, output: `${env.out}2` })).body.id as string;
  assert.ok(j1 < j2, 'ids sort in submission order');
  const w1 = await registerWorker(first);
  const a = (await json(first, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  await json(first, 'POST', `/v1/workers/${w1.id}/complete`, { jobId: j1, taskId: a.taskId, attempt: a.attempt, durationMs: 1, files: [`${a.outputDir}/mr-0-0`] }, w1.headers);
  await json(first, 'DELETE', `/v1/jobs/${j2}`);
  await first.close();

  // No recovery hold: nothing of the previous boot is still running here.
  const second = await build(t, env, { recoveryMs: 0 });
  const jobs = (await json(second, 'GET', '/v1/jobs')).body.jobs;
  assert.deepEqual(jobs.map((j: any) => [j.id, j.state, j.tasks.map.done]), [[j1, 'running', 1], [j2, 'cancelled', 0]]);
  // The worker is still known after the restart (its registration is journaled); the task of the
  // previous boot's attempt that never reported runs again, with a new attempt number.
  const b = (await json(second, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  assert.equal(b.taskId, 'map-1');
  assert.ok(b.attempt > 1, 'attempt numbers never repeat across restarts');
  await json(second, 'POST', `/v1/workers/${w1.id}/complete`, { jobId: j1, taskId: 'map-1', attempt: b.attempt, durationMs: 1, files: [`${b.outputDir}/mr-1-0`] }, w1.headers);
  const r = (await json(second, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).body;
  assert.deepEqual(r.inputs, [`${a.outputDir}/mr-0-0`, `${b.outputDir}/mr-1-0`]);
  mkdirSync(r.outputDir, { recursive: true });
  writeFileSync(`${r.outputDir}/mr-out-0`, 'x 1\n');
  await json(second, 'POST', `/v1/workers/${w1.id}/complete`, { jobId: j1, taskId: 'reduce-0', attempt: r.attempt, durationMs: 1, files: [] }, w1.headers);
  const sub = await json(second, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 });
  const j3 = sub.body.id as string;
  assert.ok(j3 > j2, 'a restarted coordinator hands out newer ids');
  await second.close();

  const third = await build(t, env);
  const after = (await json(third, 'GET', '/v1/jobs')).body.jobs;
  assert.deepEqual(after.map((j: any) => [j.id, j.state]), [[j1, 'succeeded'], [j2, 'cancelled'], [j3, 'queued']]);
  assert.ok(after[0].submittedAt < after[0].finishedAt);
});

test('when the journal cannot be written the request fails, nothing is acknowledged, and the driver stops', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const fatal = new Promise((r) => app.scheduler.once('fatal', r));
  const w1 = await registerWorker(app);
  const parked = json(app, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers);
  await app.scheduler.journal.close();
  const r = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files });
  assert.equal(r.status, 500);
  assert.equal(r.body.code, 'MR_ERR_INTERNAL');
  assert.match(String(await fatal), /journal closed/);
  assert.equal((await parked).status, 500, 'a parked poll is not left hanging');
  assert.equal((await json(app, 'POST', `/v1/workers/${w1.id}/poll`, {}, w1.headers)).status, 500);
});

test('Idempotency-Key: a retry answers the job the key created (200), another body with the same key is a 422, a bad key a 400', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const body = { app: 'wc', inputs: env.files, reduces: 1, output: env.out };
  const first = await json(app, 'POST', '/v1/jobs', body, { 'idempotency-key': 'k-1' });
  assert.equal(first.status, 201);
  const again = await json(app, 'POST', '/v1/jobs', { output: env.out, reduces: 1, inputs: env.files, app: 'wc' }, { 'idempotency-key': 'k-1' });
  assert.deepEqual([again.status, again.body.id], [200, first.body.id]);
  const other = await json(app, 'POST', '/v1/jobs', { ...body, reduces: 2 }, { 'idempotency-key': 'k-1' });
  assert.deepEqual([other.status, other.body.code], [422, 'MR_ERR_IDEMPOTENCY_CONFLICT']);
  const bad = await json(app, 'POST', '/v1/jobs', body, { 'idempotency-key': 'has space' });
  assert.deepEqual([bad.status, bad.body.code], [400, 'MR_ERR_BAD_IDEMPOTENCY_KEY']);
  assert.equal((await json(app, 'GET', '/v1/jobs')).body.jobs.length, 1, 'nothing else was created');
  await app.close();
  // The key is in the journal: a restarted coordinator answers the same job.
  const second = await build(t, env);
  const after = await json(second, 'POST', '/v1/jobs', body, { 'idempotency-key': 'k-1' });
  assert.deepEqual([after.status, after.body.id], [200, first.body.id]);
});

test('finished jobs past --retain-jobs are retired: GET answers 410, the list keeps the newest, a restart agrees', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { retainJobs: 2 });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 });
    assert.equal(r.status, 201);
    ids.push(r.body.id);
    assert.equal((await json(app, 'DELETE', `/v1/jobs/${r.body.id}`)).status, 200);
  }
  assert.deepEqual((await json(app, 'GET', '/v1/jobs')).body.jobs.map((j: any) => j.id), ids.slice(2));
  const gone = await json(app, 'GET', `/v1/jobs/${ids[0]}`);
  assert.deepEqual([gone.status, gone.body.code], [410, 'MR_ERR_JOB_RETIRED']);
  assert.equal((await json(app, 'GET', '/v1/jobs/j9')).status, 404);
  assert.equal((await json(app, 'GET', '/v1/jobs/7ZZZZZZZZZZZZZZZZZZZZZZZZZ')).status, 404, 'a ULID newer than every retired one is unknown, not retired');
  await app.close();
  const second = await build(t, env, { retainJobs: 2 });
  assert.deepEqual((await json(second, 'GET', '/v1/jobs')).body.jobs.map((j: any) => j.id), ids.slice(2));
  assert.equal((await json(second, 'GET', `/v1/jobs/${ids[1]}`)).status, 410);
  const fifth = (await json(second, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1 })).body.id as string;
  assert.ok(fifth > ids[3]!);
  assert.deepEqual((await json(second, 'GET', '/v1/jobs')).body.jobs.map((j: any) => j.id), [...ids.slice(2), fifth]);
});

test('GET /v1/openapi.json documents every coordinator route and validates; GET /v1/version', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { token: 'client-token', workerToken: 'worker-token', build: { version: '9.9.9' } });
  const { document, missing } = await checkOpenApi(app, authHeader('client-token'));
  assert.deepEqual(missing, []);
  const paths = Object.keys(document.paths ?? {});
  for (const p of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/events', '/v1/workers', '/v1/workers/{workerId}/poll', '/v1/version', '/healthz', '/metrics']) assert.ok(paths.includes(p), p);
  assert.equal((await json(app, 'GET', '/v1/openapi.json', undefined, authHeader('worker-token'))).status, 401, 'only the client token reads the document');
  const v = await json(app, 'GET', '/v1/version', undefined, authHeader('client-token'));
  assert.deepEqual(v.body, { name: 'mr-coordinator', version: '9.9.9', node: process.versions.node });
  assert.equal((await json(app, 'GET', '/v1/version')).status, 401);
});

test('GET /v1/jobs/:id/tasks: every task with its attempts (worker, times, outcome, reason), paged; bad queries are 4xx', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env, { taskTimeoutMs: 300, tickMs: 50 });
  const w = await registerWorker(app);
  const sub = await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: env.out });
  const id = sub.body.id as string;
  const poll = async () => (await json(app, 'POST', `/v1/workers/${w.id}/poll`, {}, w.headers)).body;
  const done = (a: { jobId: string; taskId: string; attempt: number; outputDir: string; index: number }) =>
    json(app, 'POST', `/v1/workers/${w.id}/complete`, { jobId: id, taskId: a.taskId, attempt: a.attempt, durationMs: 5, files: [`${a.outputDir}/mr-${a.index}-0`] }, w.headers);

  const m0 = await poll();
  assert.equal((await json(app, 'POST', `/v1/workers/${w.id}/fail`, { jobId: id, taskId: m0.taskId, attempt: m0.attempt, error: 'disk full', retryable: true }, w.headers)).status, 200);
  const m0b = await poll();
  assert.deepEqual([m0b.taskId, m0b.attempt], [m0.taskId, m0.attempt + 1]);
  assert.deepEqual((await done(m0b)).body, { accepted: true });
  const m1 = await poll();
  assert.equal(m1.taskId, 'map-1');
  // map-1's lease runs out (300 ms) without a completion; its late completion is refused.
  await new Promise((r) => setTimeout(r, 600));
  const m1b = await poll();
  assert.deepEqual([m1b.taskId, m1b.attempt], ['map-1', m1.attempt + 1]);
  assert.deepEqual((await done(m1)).body, { accepted: false, reason: 'stale-attempt' });
  assert.deepEqual((await done(m1b)).body, { accepted: true });

  const page1 = await json(app, 'GET', `/v1/jobs/${id}/tasks?limit=2`);
  assert.equal(page1.status, 200);
  assert.equal(page1.body.total, 3);
  assert.equal(page1.body.detail, true);
  assert.deepEqual(page1.body.tasks.map((x: { id: string; state: string }) => [x.id, x.state]), [['map-0', 'done'], ['map-1', 'done']]);
  assert.equal(page1.body.next, 'map-1');
  const [t0, t1] = page1.body.tasks;
  assert.deepEqual(t0.attempts.map((a: { outcome: string; reason?: string; workerId: string }) => [a.outcome, a.reason, a.workerId]), [['failed', 'disk full', w.id], ['committed', undefined, w.id]]);
  assert.deepEqual(t1.attempts.map((a: { outcome: string; reason?: string }) => [a.outcome, a.reason]), [['expired', 'lease expired'], ['committed', undefined]]);
  assert.equal(t1.attemptCount, 2);
  for (const a of [...t0.attempts, ...t1.attempts]) assert.ok(Date.parse(a.endedAt) >= Date.parse(a.startedAt));
  assert.equal(t1.attempts[1].durationMs, 5);
  const page2 = await json(app, 'GET', `/v1/jobs/${id}/tasks?limit=2&after=${page1.body.next}`);
  assert.deepEqual(page2.body.tasks.map((x: { id: string; state: string; attempts: unknown[] }) => [x.id, x.state, x.attempts.length]), [['reduce-0', 'pending', 0]]);
  assert.equal(page2.body.next, undefined);

  const bad: [string, number, string][] = [
    ['?limit=0', 400, 'MR_ERR_BAD_REQUEST'],
    ['?limit=1001', 400, 'MR_ERR_BAD_REQUEST'],
    ['?limit=two', 400, 'MR_ERR_BAD_REQUEST'],
    ['?after=x-1', 400, 'MR_ERR_BAD_REQUEST'],
    ['?after=map-2', 400, 'MR_ERR_BAD_CURSOR'],
    ['?after=reduce-1', 400, 'MR_ERR_BAD_CURSOR'],
    ['?bogus=1', 400, 'MR_ERR_BAD_REQUEST'],
  ];
  for (const [q, status, code] of bad) {
    const r = await json(app, 'GET', `/v1/jobs/${id}/tasks${q}`);
    assert.deepEqual([r.status, r.body.code], [status, code], q);
  }
  assert.equal((await json(app, 'GET', '/v1/jobs/nope/tasks')).body.code, 'MR_ERR_JOB_NOT_FOUND');
});

test('GET /v1/jobs filters by state and pages (limit, after); bad queries are 4xx', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const ids: string[] = [];
  for (const n of [1, 2, 3]) ids.push((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: join(env.dir, `out${n}`) })).body.id);
  assert.equal((await json(app, 'DELETE', `/v1/jobs/${ids[1]}`)).status, 200);
  const list = async (q: string) => (await json(app, 'GET', `/v1/jobs${q}`)).body;
  assert.deepEqual((await list('')).jobs.map((j: { id: string }) => j.id), ids);
  assert.deepEqual((await list('?state=queued')).jobs.map((j: { id: string }) => j.id), [ids[0], ids[2]]);
  assert.deepEqual((await list('?state=cancelled')).jobs.map((j: { id: string }) => j.id), [ids[1]]);
  assert.deepEqual((await list('?state=cancelled&state=queued')).jobs.length, 3);
  assert.deepEqual((await list('?state=running')).jobs, []);
  const p1 = await list('?limit=2');
  assert.deepEqual([p1.jobs.map((j: { id: string }) => j.id), p1.next], [[ids[0], ids[1]], ids[1]]);
  const p2 = await list(`?limit=2&after=${p1.next}`);
  assert.deepEqual([p2.jobs.map((j: { id: string }) => j.id), p2.next], [[ids[2]], undefined]);
  const q1 = await list('?state=queued&limit=1');
  assert.deepEqual([q1.jobs[0].id, q1.next], [ids[0], ids[0]]);
  assert.deepEqual((await list(`?state=queued&limit=1&after=${q1.next}`)).jobs.map((j: { id: string }) => j.id), [ids[2]]);
  for (const [q, code] of [['?state=bogus', 'MR_ERR_BAD_REQUEST'], ['?limit=0', 'MR_ERR_BAD_REQUEST'], ['?limit=1001', 'MR_ERR_BAD_REQUEST'], ['?after=a%2Fb', 'MR_ERR_BAD_REQUEST'], ['?after=nope', 'MR_ERR_BAD_CURSOR'], ['?x=1', 'MR_ERR_BAD_REQUEST']]) {
    const r = await json(app, 'GET', `/v1/jobs${q}`);
    assert.deepEqual([r.status, r.body.code], [400, code], q);
  }
});
