/**
 * Short forms of three representative drills, end to end over real
 * processes: one MapReduce (workers killed during a wc job), one FT VM kill
 * (the primary killed under client load) and one FT VM stall (the primary
 * SIGSTOPped); each starts its own cluster and must pass every invariant; the
 * report must replay to the same schedule. Then every break-the-rule drill:
 * each must show its anomaly and have it caught by the invariant named.
 * break-dedup and break-attempt-fencing are event-driven (taps on fault
 * proxies: "the reply to an incr is in flight", "this task was handed to that
 * worker"), so their anomaly shows every run, whatever the machine's speed.
 * The controls (the same faults with the rule on: nothing lost) run with
 * `npm run drills` (`mr drill run all --control`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSchedule, renderMarkdown } from '@mr/chaos';
import { runDrill, writeReport, readReport } from '../src/index.ts';

function summary(r: Awaited<ReturnType<typeof runDrill>>): string {
  return `${r.outcome}${r.error ? `: ${r.error}` : ''}\n${renderMarkdown(r)}`;
}

test('worker-crash-storm (short): workers killed during a wc job; the output equals mr seq, the job recovered after every kill', { timeout: 180_000 }, async (t) => {
  const schedule = buildSchedule('worker-crash-storm', 11, 'short');
  const r = await runDrill({ schedule, log: (l) => t.diagnostic(l) });
  assert.equal(r.outcome, 'passed', summary(r));
  assert.deepEqual(r.invariants.map((i) => i.id), ['job-succeeded', 'output-equals-seq', 'monitors-zero', 'recovered-within-bound']);
  assert.match(r.invariants.find((i) => i.id === 'monitors-zero')!.detail, /all 0: .*task-committed-twice/);
  const kills = r.timeline.filter((e) => e.kind === 'fault' && / kill worker-\d+: SIGKILL/.test(e.text));
  assert.ok(kills.length >= 1, 'at least one worker was killed while the job ran');
  assert.equal(r.recoveries.length, kills.length);

  // The report is written, read back and replays the same schedule.
  const out = mkdtempSync(join(tmpdir(), 'mr-drill-report-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const files = writeReport(r, out);
  assert.deepEqual(readReport(files.json).schedule, schedule);
  assert.match(readFileSync(files.md, 'utf8'), /!\[timeline\]\(worker-crash-storm-seed11-.*\.svg\)/);
  assert.match(readFileSync(files.svg, 'utf8'), /^<svg /);
});

test('primary-kill-under-load (short): kill -9 the primary under load; no acknowledged answer lost or doubled, one live primary per epoch, failover in bound', { timeout: 180_000 }, async (t) => {
  const schedule = buildSchedule('primary-kill-under-load', 11, 'short');
  const r = await runDrill({ schedule, log: (l) => t.diagnostic(l) });
  assert.equal(r.outcome, 'passed', summary(r));
  for (const id of ['one-live-primary-per-epoch', 'no-ack-lost-or-doubled', 'monitors-zero', 'recovered-within-bound']) {
    assert.ok(r.invariants.find((i) => i.id === id)?.ok, `${id}\n${summary(r)}`);
  }
  assert.match(r.timeline.find((e) => e.kind === 'fault')!.text, /SIGKILL node a/);
  assert.ok(typeof r.stats['failover ms (fault -> a node live in a newer epoch)'] === 'number', 'the backup took over');
  assert.ok(Number(r.stats['incr answers']) > 0);
  assert.ok((r.history ?? []).length > 0);
});

test('break-output-rule (short): without the output rule a kill -9 of the primary loses acknowledged answers, and the invariants catch it', { timeout: 180_000 }, async (t) => {
  const schedule = buildSchedule('break-output-rule', 11, 'short');
  const r = await runDrill({ schedule, log: (l) => t.diagnostic(l) });
  assert.equal(r.outcome, 'passed', summary(r));
  const broken = r.invariants.filter((i) => !i.ok).map((i) => i.id);
  assert.ok(broken.includes('no-ack-lost-or-doubled') || broken.includes('linearizable'), summary(r));
  assert.ok(r.invariants.find((i) => i.id === 'one-live-primary-per-epoch')?.ok, 'still never two live primaries in one epoch');
  // The node's own monitor sees every answer released before the backup acknowledged it.
  assert.match(r.invariants.find((i) => i.id === 'monitors-zero')!.detail, /ft_invariant_violations_total\{invariant="output-released-before-ack"\} = \d+ on node a/);
});

test('primary-stall (short): SIGSTOP the primary under load, SIGCONT later; the backup takes over and the old primary never serves in its epoch again', { timeout: 180_000 }, async (t) => {
  const schedule = buildSchedule('primary-stall', 11, 'short');
  const r = await runDrill({ schedule, log: (l) => t.diagnostic(l) });
  assert.equal(r.outcome, 'passed', summary(r));
  assert.ok(r.invariants.every((i) => i.ok), summary(r));
  assert.match(r.timeline.find((e) => e.kind === 'fault')!.text, /SIGSTOP node a/);
  assert.ok(r.timeline.some((e) => e.kind === 'fault' && /SIGCONT node a/.test(e.text)), 'the stalled primary was continued');
  assert.ok(typeof r.stats['failover ms (fault -> a node live in a newer epoch)'] === 'number', 'the backup took over');
});

/** A break-the-rule drill passes when `id` broke (and nothing it does not allow to break). */
function assertCaught(r: Awaited<ReturnType<typeof runDrill>>, id: string): void {
  assert.equal(r.outcome, 'passed', summary(r));
  assert.ok(r.invariants.some((i) => i.id === id && !i.ok), `${id} must catch the anomaly\n${summary(r)}`);
}

test('break-test-and-set (short): a backup that goes live without test-and-set makes two live primaries in one epoch under a partition, and the check catches it', { timeout: 180_000 }, async (t) => {
  const r = await runDrill({ schedule: buildSchedule('break-test-and-set', 11, 'short'), log: (l) => t.diagnostic(l) });
  assertCaught(r, 'one-live-primary-per-epoch');
  assert.match(r.invariants.find((i) => i.id === 'one-live-primary-per-epoch')!.detail, /epoch \d+ live on [ab] .* and on [ab] /);
});


test('break-dedup (short): without deduplication a retry of an incr whose reply was lost (connection reset as it was in flight) is applied twice, and the counter check catches it', { timeout: 180_000 }, async (t) => {
  const r = await runDrill({ schedule: buildSchedule('break-dedup', 11, 'short'), log: (l) => t.diagnostic(l) });
  assertCaught(r, 'no-ack-lost-or-doubled');
  assert.match(r.invariants.find((i) => i.id === 'no-ack-lost-or-doubled')!.detail, /something was applied twice/);
  assert.ok(r.timeline.some((e) => e.kind === 'fault' && /reset the connection: seen on clients->a/.test(e.text)), 'the tap fired on the primary\'s link');
});

test('break-attempt-fencing (short): without fencing the completion of an attempt whose task was handed out again is accepted, and the commit ledger\'s monitor catches it', { timeout: 180_000 }, async (t) => {
  const r = await runDrill({ schedule: buildSchedule('break-attempt-fencing', 11, 'short'), log: (l) => t.diagnostic(l) });
  assertCaught(r, 'monitors-zero');
  assert.match(r.invariants.find((i) => i.id === 'monitors-zero')!.detail, /mr_invariant_violations_total\{invariant="stale-attempt-accepted"\} = [1-9]/);
  assert.ok(r.invariants.find((i) => i.id === 'output-equals-seq')?.ok, 'the bytes are still right: each attempt writes its own files');
});
