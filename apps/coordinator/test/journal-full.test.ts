import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build, json, makeEnv } from './helper.ts';

// A full disk under the journal (injected ENOSPC, as a drill does with --drill-unsafe): the
// coordinator does not stop; new work is refused with 507 while reads are served; the write that
// met the full disk waits and is acknowledged once space returns; nothing refused is ever created.
test('journal disk full: new work refused with 507, reads served, the waiting submission acknowledged when space returns; a restart has exactly the acknowledged jobs', async (t) => {
  const env = makeEnv(t);
  const opts = { drillUnsafe: true, journalSpaceRetryMs: 50 };
  const app = await build(t, env, opts);
  const submit = (name: string) => json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: `${env.out}-${name}`, name });
  const a = await submit('a');
  assert.equal(a.status, 201);

  assert.equal((await json(app, 'GET', '/v1/drill/disk')).status, 200);
  const put = await app.inject({ method: 'PUT', url: '/v1/drill/disk', payload: { error: 'ENOSPC' } });
  assert.equal(put.statusCode, 200);
  // The first write after the fault meets the full disk: its submission is not answered yet.
  let bAnswered = false;
  const b = submit('b').then((r) => { bAnswered = true; return r; });
  for (let i = 0; i < 200 && !(await json(app, 'GET', '/healthz')).body?.journal; i++) await new Promise((r) => setTimeout(r, 10));
  const health = await json(app, 'GET', '/healthz');
  assert.match(String(health.body.journal), /full \(ENOSPC\)/);
  assert.equal(bAnswered, false, 'a submission whose record is not durable is not acknowledged');

  const c = await submit('c');
  assert.equal(c.status, 507);
  assert.equal(c.body.code, 'MR_ERR_JOURNAL_FULL');
  const cancel = await json(app, 'DELETE', `/v1/jobs/${a.body.id}`);
  assert.equal(cancel.status, 507);
  const list = await json(app, 'GET', '/v1/jobs');
  assert.equal(list.status, 200, 'reads are served');
  assert.equal((await json(app, 'GET', `/v1/jobs/${a.body.id}`)).body.state, 'queued');
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  assert.match(metrics.body, /^mr_journal_full(\{[^}]*\})? 1$/m);

  // Space returns: the waiting submission is written and answered; new work is taken again.
  assert.equal((await app.inject({ method: 'PUT', url: '/v1/drill/disk', payload: {} })).statusCode, 200);
  const bDone = await b;
  assert.equal(bDone.status, 201);
  const d = await submit('d');
  assert.equal(d.status, 201);
  assert.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^mr_journal_full(\{[^}]*\})? 0$/m);

  // What a restart finds is exactly what was acknowledged.
  await app.close();
  const again = await build(t, env, opts);
  const names = (await json(again, 'GET', '/v1/jobs')).body.jobs.map((j: { name: string }) => j.name).sort();
  assert.deepEqual(names, ['a', 'b', 'd']);
});

test('disk faults cannot be injected without --drill-unsafe, and bad settings are refused', async (t) => {
  const env = makeEnv(t);
  const plain = await build(t, env);
  assert.equal((await plain.inject({ method: 'PUT', url: '/v1/drill/disk', payload: { error: 'ENOSPC' } })).statusCode, 404);
  const env2 = makeEnv(t);
  const drill = await build(t, env2, { drillUnsafe: true });
  for (const bad of [{ error: 'EPERM' }, { writeDelayMs: -1 }, { syncDelayMs: 10 ** 9 }, { other: 1 }]) {
    const r = await drill.inject({ method: 'PUT', url: '/v1/drill/disk', payload: bad });
    assert.equal(r.statusCode, 400, JSON.stringify(bad));
  }
  assert.deepEqual((await json(drill, 'GET', '/v1/drill/disk')).body, {});
});
