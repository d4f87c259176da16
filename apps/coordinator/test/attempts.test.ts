import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptLog, MAX_ATTEMPTS_PER_TASK, MAX_FINISHED_WITH_DETAIL } from '../src/plugins/app/attempts.ts';

const at = (s: number) => new Date(s * 1000).toISOString();
const assigned = (jobId: string, taskId: string, attempt: number, workerId = 'w1') => ({ type: 'task-assigned' as const, jobId, taskId, phase: 'map' as const, attempt, workerId, reissue: attempt > 1 });
const finished = (jobId: string, state: 'succeeded' | 'failed' | 'cancelled') => ({ type: 'job-finished' as const, jobId, state, workDir: '/w', output: '/o' });

test('attempt log: a lost worker, a cancelled job, a superseded attempt', () => {
  const log = new AttemptLog();
  log.observe({ type: 'job-accepted', jobId: 'a' }, at(0));
  log.observe(assigned('a', 'map-0', 1, 'w1'), at(1));
  log.observe(assigned('a', 'map-0', 2, 'w2'), at(2));
  log.observe({ type: 'task-committed', jobId: 'a', taskId: 'map-0', phase: 'map', attempt: 2, workerId: 'w2', durationMs: 3, counters: {} }, at(3));
  log.observe(assigned('a', 'map-1', 1, 'w1'), at(4));
  log.observe({ type: 'worker-lost', workerId: 'w1', released: 1 }, at(5));
  log.observe(assigned('a', 'map-1', 2, 'w2'), at(6));
  log.observe(finished('a', 'cancelled'), at(7));
  assert.deepEqual(log.task('a', 'map-0')!.attempts.map((x) => [x.attempt, x.outcome]), [[1, 'superseded'], [2, 'committed']]);
  assert.deepEqual(log.task('a', 'map-1')!.attempts.map((x) => [x.outcome, x.reason, x.endedAt]), [['lost', 'worker w1 lost', at(5)], ['cancelled', 'job cancelled', at(7)]]);
});

test(`attempt log is bounded: ${MAX_ATTEMPTS_PER_TASK} attempts per task, a total, ${MAX_FINISHED_WITH_DETAIL} finished jobs`, () => {
  const log = new AttemptLog(50);
  log.observe({ type: 'job-accepted', jobId: 'a' }, at(0));
  for (let i = 1; i <= 20; i++) log.observe(assigned('a', 'map-0', i), at(i));
  const t = log.task('a', 'map-0')!;
  assert.equal(t.count, 20);
  assert.deepEqual(t.attempts.map((x) => x.attempt), [13, 14, 15, 16, 17, 18, 19, 20]);
  assert.equal(log.size, 8);
  log.observe(finished('a', 'failed'), at(30));
  assert.equal(log.task('a', 'map-0')!.attempts.at(-1)!.outcome, 'abandoned');
  // A running job needing room evicts finished jobs first; past the total, attempts are counted, not listed.
  log.observe({ type: 'job-accepted', jobId: 'b' }, at(31));
  for (let i = 0; i < 60; i++) log.observe(assigned('b', `map-${i}`, 1), at(32));
  assert.equal(log.has('a'), false);
  assert.equal(log.size, 50);
  assert.deepEqual(log.task('b', 'map-59'), { count: 1, attempts: [] });
  const many = new AttemptLog();
  for (let j = 0; j <= MAX_FINISHED_WITH_DETAIL; j++) {
    many.observe({ type: 'job-accepted', jobId: `j${j}` }, at(j));
    many.observe(finished(`j${j}`, 'succeeded'), at(j));
  }
  assert.equal(many.has('j0'), false);
  assert.equal(many.has('j1'), true);
});
