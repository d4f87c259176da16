import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOURNAL_FORMAT, Scheduler, SchedulerAssertion, type PersistRecord } from '../src/index.ts';
import { testJobId } from './harness.ts';

const spec = (n: number) => ({ app: 'wc', inputs: ['/in/0'], reduces: 1, options: {}, output: `/out/${n}`, workDir: `/w/${n}` });

test('a journal of format 1 (j<N> ids, a snapshot whose jobSeq is the highest N) restores, and new jobs take ULIDs after it', () => {
  // As the coordinator wrote it before ULIDs: compacted with j1..j5 accepted, j1..j3 retired, then j6.
  const v1: PersistRecord[] = [
    { type: 'snapshot', boot: 1, jobSeq: 5, retired: { succeeded: 2, failed: 0, cancelled: 1 } },
    { type: 'job-summary', jobId: 'j4', summary: { spec: { app: 'wc', reduces: 1, options: {}, output: '/out/4', workDir: '/w/4' }, inputs: 1, state: 'succeeded', counts: { map: { total: 1, pending: 0, running: 0, done: 1 }, reduce: { total: 1, pending: 0, running: 0, done: 1 } }, attempts: { started: 2, reissued: 0, failed: 0 }, counters: {}, idempotency: { key: 'k4', fingerprint: 'f4' } } },
    { type: 'job-image', jobId: 'j5', image: { spec: { ...spec(5), inputs: ['/in/0'] }, state: 'queued', committed: [], attempts: { started: 0, reissued: 0, failed: 0 }, counters: {} } },
    { type: 'boot', boot: 2 },
    { type: 'job-accepted', jobId: 'j6', job: { ...spec(6), inputs: ['/in/0'] } },
  ];
  const s = Scheduler.restore({ retainJobs: 1 }, v1);
  assert.equal(s.boot, 3);
  assert.deepEqual(s.jobIds(), ['j4', 'j5', 'j6']);
  for (const id of ['j1', 'j2', 'j3']) assert.equal(s.isRetired(id), true, id);
  assert.equal(s.isRetired('j7'), false);
  assert.equal(s.jobForKey('k4')?.jobId, 'j4');
  // The next id is a ULID; j<N> ids stay retired or kept as they were.
  const a = testJobId(1);
  s.step({ type: 'submit', requestId: 'r1', jobId: a, job: spec(7) });
  assert.deepEqual(s.ready().replies[0]!.body, { kind: 'created', jobId: a, state: 'queued' });
  s.advance();
  assert.deepEqual(s.jobIds(), ['j4', 'j5', 'j6', a], 'submission order');
  // Its snapshot is format 2 and keeps the legacy bound.
  const snap = s.snapshot();
  assert.deepEqual(snap[0], { type: 'snapshot', format: JOURNAL_FORMAT, boot: 3, jobSeq: 7, retired: { succeeded: 2, failed: 0, cancelled: 1 }, legacySeq: 6, lastId: a });
  const again = Scheduler.restore({ retainJobs: 1 }, snap);
  assert.deepEqual(again.jobIds(), ['j4', 'j5', 'j6', a]);
  assert.equal(again.isRetired('j2'), true);
  assert.equal(again.isRetired('j7'), false);
  assert.equal(again.lastJobId(), a);
});

test('a new job id must be newer than every one accepted: the shell broke its promise otherwise (an assertion)', () => {
  const s = new Scheduler({});
  s.advance();
  s.step({ type: 'submit', requestId: 'r1', jobId: testJobId(5), job: spec(1) });
  s.advance();
  for (const stale of [testJobId(5), testJobId(4)]) {
    assert.throws(() => s.step({ type: 'submit', requestId: 'r2', jobId: stale, job: spec(2) }), (e: Error) => e instanceof SchedulerAssertion && /not newer/.test(e.message));
  }
  // An unusable id (neither a ULID nor j<N>) is refused the same way.
  const t = new Scheduler({});
  assert.throws(() => t.step({ type: 'submit', requestId: 'r1', jobId: 'job-1', job: spec(1) }), SchedulerAssertion);
});

test('a journal of a newer format is refused with a message that says so', () => {
  assert.throws(() => Scheduler.restore({}, [{ type: 'boot', boot: 1, format: JOURNAL_FORMAT + 1 }]), /format 3 is newer/);
});
