import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOnePrimaryPerEpoch, checkCounter, vmRecovery, progressRecovery, renderSvg, checkSameLines, checkRecoveries, renderMarkdown, parseReport, buildSchedule, outcomeOf, ERR_BAD_REPORT, type NodeSample, type DrillReport } from '../src/index.ts';

const s = (atMs: number, node: string, live: boolean, epoch: number): NodeSample => ({ atMs, node, live, epoch, role: live ? 'primary' : 'backup' });

test('one live primary per epoch: a failover to the next epoch holds; a second node live in an epoch is caught even at another poll', () => {
  assert.equal(checkOnePrimaryPerEpoch([s(0, 'a', true, 1), s(0, 'b', false, 1), s(50, 'b', true, 2), s(60, 'a', true, 1)]).ok, true);
  const same = checkOnePrimaryPerEpoch([s(0, 'a', true, 1), s(10, 'b', true, 1)]);
  assert.equal(same.ok, false);
  assert.match(same.detail, /epoch 1 live on a .* and on b/);
  assert.equal(checkOnePrimaryPerEpoch([]).ok, false, 'no samples is not evidence');
});

test('counter: distinct answers 1..n hold; a duplicate, a lost ack or a double apply is caught', () => {
  assert.equal(checkCounter([3, 1, 2], 0, 3).ok, true);
  assert.equal(checkCounter([1, 3], 1, 3).ok, true, 'an unknown outcome may have applied');
  assert.equal(checkCounter([1, 2], 1, 2).ok, true, 'or not');
  assert.match(checkCounter([1, 2, 2], 0, 3).detail, /given twice/);
  assert.match(checkCounter([1, 2, 3], 0, 2).detail, /outside/);
  assert.match(checkCounter([1, 2], 0, 1).detail, /outside|lost/);
  assert.match(checkCounter([1, 2], 0, 4).detail, /applied twice/);
});

test('same lines: names the first difference', () => {
  assert.equal(checkSameLines(['a 1', 'b 2'], ['a 1', 'b 2']).ok, true);
  assert.match(checkSameLines(['a 1'], ['a 1', 'b 2']).detail, /line 2 .*<end>/);
  assert.match(checkSameLines(['a 2'], ['a 1']).detail, /line 1/);
});

test('recoveries: within the bound holds; late or never does not', () => {
  assert.equal(checkRecoveries([{ fault: 'f', what: 'w', recoveredMs: 900 }], 1000).ok, true);
  assert.equal(checkRecoveries([{ fault: 'f', what: 'w', recoveredMs: 1001 }], 1000).ok, false);
  assert.match(checkRecoveries([{ fault: 'f', what: 'w', recoveredMs: null }], 1000).detail, /never/);
  assert.equal(checkRecoveries([], 1000).ok, false);
});

test('a report round-trips through JSON and renders; a file that is not a report is refused', () => {
  const invariants = [{ id: 'linearizable', ok: true, detail: 'x' }, { id: 'job-succeeded', ok: false, detail: 'failed | badly' }];
  const r: DrillReport = {
    kind: 'mr-drill-report', schedule: buildSchedule('primary-stall', 5), startedAt: '2026-01-01T00:00:00.000Z', durationMs: 1234,
    outcome: outcomeOf(invariants), timeline: [{ atMs: 10, kind: 'fault', text: 'stop primary (node a, pid 1)' }], invariants,
    recoveries: [{ fault: '+10ms stop primary', what: 'b live', recoveredMs: 1500 }], stats: { requests: 10 },
  };
  assert.equal(r.outcome, 'failed');
  const back = parseReport(JSON.parse(JSON.stringify(r)));
  assert.deepEqual(back, r);
  const md = renderMarkdown(back);
  assert.match(md, /# Drill primary-stall: FAILED/);
  assert.match(md, /failed \\\| badly/);
  assert.match(md, /1500 ms/);
  for (const bad of [null, {}, { kind: 'mr-drill-report' }, { ...r, schedule: { ...r.schedule, version: 2 } }, { ...r, schedule: { ...r.schedule, faults: [{ atMs: -1, action: { type: 'kill' } }] } }]) {
    assert.throws(() => parseReport(bad), (e: { code: string }) => e.code === ERR_BAD_REPORT.code);
  }
});

test('vm recovery: the first answer from the node seen live in a newer epoch; without failover, the first answer after the fault ended', () => {
  const samples = [s(0, 'a', true, 1), s(100, 'a', true, 1), s(900, 'b', true, 2), s(950, 'b', true, 2)];
  const answers = [{ atMs: 90, node: 'a' }, { atMs: 850, node: 'a' }, { atMs: 1000, node: 'b' }];
  const r = vmRecovery('kill primary', 100, 100, 1, samples, answers);
  assert.equal(r.recoveredMs, 900);
  assert.equal(r.failoverMs, 800);
  assert.match(r.what, /b live in epoch 2/);
  const none = vmRecovery('stall', 100, 400, 1, [s(0, 'a', true, 1), s(500, 'a', true, 1)], [{ atMs: 300, node: 'a' }, { atMs: 450, node: 'a' }]);
  assert.equal(none.recoveredMs, 350);
  assert.equal(none.failoverMs, null);
  assert.equal(vmRecovery('kill', 100, 100, 1, samples, [{ atMs: 50, node: 'a' }]).recoveredMs, null);
});

test('progress recovery: the first completed task (or the end of the job) after the fault; unreachable polls do not count', () => {
  const p = [{ atMs: 0, done: 3, finished: false }, { atMs: 100, done: 4, finished: false }, { atMs: 200, done: undefined, finished: false }, { atMs: 300, done: 4, finished: false }, { atMs: 700, done: 5, finished: false }];
  assert.equal(progressRecovery('kill coordinator', 150, p).recoveredMs, 550);
  assert.equal(progressRecovery('kill', 750, p).recoveredMs, null);
  assert.equal(progressRecovery('kill', 720, [...p, { atMs: 800, done: 5, finished: true }]).recoveredMs, 80);
});

test('break-the-rule outcome: passes only when an expected invariant broke and the others held', () => {
  const v = (id: string, ok: boolean) => ({ id, ok, detail: '' });
  const expect = ['no-ack-lost-or-doubled', 'linearizable'];
  assert.equal(outcomeOf([v('no-ack-lost-or-doubled', false), v('linearizable', true), v('one-live-primary-per-epoch', true)], undefined, expect), 'passed');
  assert.equal(outcomeOf([v('no-ack-lost-or-doubled', true), v('linearizable', true)], undefined, expect), 'failed', 'anomaly not seen');
  assert.equal(outcomeOf([v('linearizable', false), v('one-live-primary-per-epoch', false)], undefined, expect), 'failed', 'an unexpected invariant broke');
  assert.equal(outcomeOf([v('linearizable', false)], 'crashed', expect), 'error');
  // Consequences the drill allows (two live primaries also split the clients' history).
  const tas = ['one-live-primary-per-epoch'];
  assert.equal(outcomeOf([v('one-live-primary-per-epoch', false), v('linearizable', false)], undefined, tas, ['linearizable']), 'passed');
  assert.equal(outcomeOf([v('one-live-primary-per-epoch', true), v('linearizable', false)], undefined, tas, ['linearizable']), 'failed', 'a consequence alone is not the anomaly');
  assert.equal(outcomeOf([v('one-live-primary-per-epoch', false), v('recovered-within-bound', false)], undefined, tas, ['linearizable']), 'failed');
});

test('the SVG timeline is well-formed and shows the faults, events and answers', () => {
  const r: DrillReport = {
    kind: 'mr-drill-report', schedule: buildSchedule('primary-kill-under-load', 5, 'short'), startedAt: '2026-01-01T00:00:00.000Z', durationMs: 5000, outcome: 'passed',
    timeline: [{ atMs: 0, kind: 'event', text: 'workload <started>' }, { atMs: 1200, kind: 'fault', text: '+1200ms kill primary: SIGKILL node a' }],
    invariants: [], recoveries: [{ fault: '+1200ms kill primary', what: 'b live', recoveredMs: 900 }], stats: {},
    history: [{ response: 100 }, { response: 150 }, { response: 2300 }, {}],
  };
  const svg = renderSvg(r);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, /SIGKILL node a/);
  assert.match(svg, /workload &lt;started&gt;/, 'text is escaped');
  assert.match(svg, /<title>2 answers<\/title>/, 'two answers in the first 250 ms');
  assert.match(svg, /b live after 900 ms/);
  assert.equal((svg.match(/<svg/g) ?? []).length, 1);
});

test('progress recovery with no progress known before the fault needs a completed task, not just an answer', () => {
  const p = [{ atMs: 100, done: undefined, finished: false }, { atMs: 500, done: 0, finished: false }, { atMs: 900, done: 1, finished: false }];
  assert.equal(progressRecovery('kill coordinator', 200, p).recoveredMs, 700);
});

test('invariant monitors: parsed from the exposition format, the highest value per process; any non-zero breaks the invariant', async () => {
  const { parseMonitors, checkMonitors } = await import('../src/index.ts');
  const text = [
    '# HELP ft_invariant_violations_total Invariant monitors, must stay 0',
    '# TYPE ft_invariant_violations_total counter',
    'ft_invariant_violations_total{invariant="output-released-before-ack",vm="vm1",node="a"} 3',
    'ft_invariant_violations_total{vm="vm1",invariant="state-hash-mismatch"} 0',
    'mr_invariant_violations_total{invariant="task-committed-twice"} 0',
    'ft_log_bytes_total{direction="sent"} 99',
  ].join('\n');
  assert.deepEqual(parseMonitors(text), [
    { metric: 'ft_invariant_violations_total', invariant: 'output-released-before-ack', value: 3 },
    { metric: 'ft_invariant_violations_total', invariant: 'state-hash-mismatch', value: 0 },
    { metric: 'mr_invariant_violations_total', invariant: 'task-committed-twice', value: 0 },
  ]);
  const r = (process: string, invariant: string, value: number) => ({ process, metric: 'ft_invariant_violations_total', invariant, value });
  assert.equal(checkMonitors([], 0).ok, false, 'nothing scraped is not a pass');
  const ok = checkMonitors([r('node a', 'x', 0), r('node b', 'x', 0), r('node b', 'y', 0)], 12);
  assert.ok(ok.ok);
  assert.match(ok.detail, /12 scrapes of 2 processes; all 0: x, y/);
  const bad = checkMonitors([r('node a', 'x', 0), r('node b', 'output-released-before-ack', 7)], 3);
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /ft_invariant_violations_total\{invariant="output-released-before-ack"\} = 7 on node b/);
});
