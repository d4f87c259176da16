/**
 * The coordinator's metrics: counters exported at 0 from the start, the job
 * duration histogram, and the invariant monitors (CommitLedger) that check
 * every commit the scheduler core makes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { SchedulerEvent } from '@mr/mapreduce-core';
import { CommitLedger } from '../src/plugins/app/metrics.ts';
import { build, json, makeEnv } from './helper.ts';

const assigned = (taskId: string, attempt: number, workerId: string): SchedulerEvent => ({ type: 'task-assigned', jobId: 'j', taskId, phase: 'map', attempt, workerId, reissue: attempt > 1 });
const committed = (taskId: string, attempt: number, workerId: string): SchedulerEvent => ({ type: 'task-committed', jobId: 'j', taskId, phase: 'map', attempt, workerId, durationMs: 1, counters: {} });

test('CommitLedger: commits the core could never explain are named (crafted events the core refuses to produce)', () => {
  const l = new CommitLedger();
  assert.deepEqual(l.observe(assigned('map-0', 1, 'w1')), []);
  assert.deepEqual(l.observe(committed('map-0', 1, 'w1')), [], 'the holder of the live lease commits: fine');
  assert.deepEqual(l.observe(committed('map-0', 1, 'w1')), ['task-committed-twice']);

  l.observe(assigned('map-1', 1, 'w1'));
  l.observe({ type: 'lease-expired', jobId: 'j', taskId: 'map-1', phase: 'map', attempt: 1, workerId: 'w1' });
  l.observe(assigned('map-1', 2, 'w2'));
  assert.deepEqual(l.observe(committed('map-1', 1, 'w1')), ['stale-attempt-accepted'], 'attempt 1 lost its lease');

  // The core lets an attempt's holder complete it after its lease ran out, until the task is handed out again.
  l.observe(assigned('map-7', 1, 'w1'));
  l.observe({ type: 'lease-expired', jobId: 'j', taskId: 'map-7', phase: 'map', attempt: 1, workerId: 'w1' });
  assert.deepEqual(l.observe(committed('map-7', 1, 'w1')), [], 'expired but not superseded: the core accepts it (Task.holder)');
  l.observe(assigned('map-8', 1, 'w1'));
  l.observe({ type: 'lease-expired', jobId: 'j', taskId: 'map-8', phase: 'map', attempt: 1, workerId: 'w1' });
  assert.deepEqual(l.observe(committed('map-8', 1, 'w2')), ['non-holder-accepted']);

  l.observe(assigned('map-2', 1, 'w1'));
  assert.deepEqual(l.observe(committed('map-2', 1, 'w2')), ['non-holder-accepted'], 'w2 never held attempt 1');

  assert.deepEqual(l.observe(committed('map-3', 1, 'w1')), ['stale-attempt-accepted'], 'never handed out');

  // Backup attempts (two live leases of one task): the first to commit is fine.
  l.observe(assigned('map-4', 1, 'w1'));
  l.observe(assigned('map-4', 2, 'w2'));
  assert.deepEqual(l.observe(committed('map-4', 2, 'w2')), []);

  // A restarted coordinator learns the running leases (journaled) from the core.
  const r = new CommitLedger();
  r.seed([{ jobId: 'j', taskId: 'map-5', attempt: 3, workerId: 'w3' }], []);
  assert.deepEqual(r.observe(committed('map-5', 3, 'w3')), []);

  assert.ok(l.size > 0);
  l.observe({ type: 'job-finished', jobId: 'j', state: 'succeeded', workDir: '/w', output: '/o' });
  assert.equal(l.size, 0, 'a finished job is forgotten');
});

test('a job through the worker protocol: counters start at 0, the job duration is observed, no invariant monitor moves', async (t) => {
  const env = makeEnv(t);
  const app = await build(t, env);
  const before = (await app.inject('/metrics')).body;
  for (const outcome of ['committed', 'reissued', 'expired', 'stale-attempt', 'not-lease-holder']) {
    assert.match(before, new RegExp(`mr_tasks_total\\{phase="map",outcome="${outcome}",service="mr-coordinator"\\} 0`), outcome);
  }
  for (const inv of ['task-committed-twice', 'stale-attempt-accepted', 'non-holder-accepted']) {
    assert.match(before, new RegExp(`mr_invariant_violations_total\\{invariant="${inv}",service="mr-coordinator"\\} 0`), inv);
  }
  assert.match(before, /mr_job_duration_seconds_count\{[^}]*state="failed"[^}]*\} 0/);
  assert.match(before, /mr_build_info\{version="[^"]+",nodejs="v[\d.]+",service="mr-coordinator"\} 1/);

  const reg = await json(app, 'POST', '/v1/workers', { pid: 1, host: 'h', slots: 1 });
  const w = reg.body.workerId as string;
  const h = { 'x-mr-worker-secret': reg.body.secret as string };
  assert.equal((await json(app, 'POST', '/v1/jobs', { app: 'wc', inputs: env.files, reduces: 1, output: env.out })).status, 201);
  for (;;) {
    const a = (await json(app, 'POST', `/v1/workers/${w}/poll`, {}, h)).body;
    if (a.type === 'map') {
      const files = [`${a.outputDir}/mr-${a.index}-0`];
      assert.deepEqual((await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, durationMs: 5, files }, h)).body, { accepted: true });
      // The same completion again: answered as accepted (idempotent), not a second commit.
      assert.deepEqual((await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, durationMs: 5, files }, h)).body, { accepted: true });
    } else if (a.type === 'reduce') {
      mkdirSync(a.outputDir, { recursive: true });
      writeFileSync(`${a.outputDir}/mr-out-${a.index}`, 'x 1\n');
      await json(app, 'POST', `/v1/workers/${w}/complete`, { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, durationMs: 5, files: [] }, h);
      break;
    } else assert.fail(`unexpected ${JSON.stringify(a)}`);
  }
  for (let i = 0; i < 100 && (await json(app, 'GET', '/v1/jobs')).body.jobs[0].state !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 10));
  const after = (await app.inject('/metrics')).body;
  assert.match(after, /mr_job_duration_seconds_count\{[^}]*state="succeeded"[^}]*\} 1/);
  assert.match(after, /mr_tasks_total\{phase="map",outcome="committed",service="mr-coordinator"\} 2/);
  assert.doesNotMatch(after, /mr_invariant_violations_total\{[^}]*\} [1-9]/, 'no invariant monitor moved');
  assert.match(after, /http_request_duration_seconds_count\{[^}]*route="\/v1\/workers\/:workerId\/complete"[^}]*status_code="200"[^}]*\} [1-9]/);
  const nf = await app.inject('/no/such/route/12345');
  assert.equal(nf.statusCode, 404);
  assert.match((await app.inject('/metrics')).body, /http_request_duration_seconds_count\{[^}]*route="\(unmatched\)"[^}]*status_code="404"[^}]*\} 1/, 'unknown URLs share one route label');
});
