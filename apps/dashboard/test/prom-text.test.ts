import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parsePromText, sumOf, PromParseError } from '../src/scrape/prom-text.ts';

test('parses what prom-client writes: counters with labels (escapes included), gauges, histograms', async () => {
  const reg = new Registry();
  const c = new Counter({ name: 'mr_tasks_total', help: 'Task attempts', labelNames: ['phase', 'outcome'], registers: [reg] });
  c.inc({ phase: 'map', outcome: 'committed' }, 3);
  c.inc({ phase: 'reduce', outcome: 'committed' }, 2);
  c.inc({ phase: 'map', outcome: 'failed' });
  const g = new Gauge({ name: 'ft_backup_lag_instructions', help: 'lag', labelNames: ['note'], registers: [reg] });
  g.set({ note: 'a "quoted" \\ back\nslash' }, -12.5);
  const h = new Histogram({ name: 'ft_hold_seconds', help: 'hold', buckets: [0.1, 1], registers: [reg] });
  h.observe(0.05);
  h.observe(5);
  const e = parsePromText(await reg.metrics());
  assert.equal(e.types['mr_tasks_total'], 'counter');
  assert.equal(e.types['ft_hold_seconds'], 'histogram');
  assert.equal(sumOf(e.samples, 'mr_tasks_total'), 6);
  assert.equal(sumOf(e.samples, 'mr_tasks_total', { outcome: 'committed' }), 5);
  assert.equal(sumOf(e.samples, 'mr_tasks_total', { phase: 'map', outcome: 'failed' }), 1);
  const lag = e.samples.find((s) => s.name === 'ft_backup_lag_instructions')!;
  assert.equal(lag.value, -12.5);
  assert.equal(lag.labels['note'], 'a "quoted" \\ back\nslash');
  assert.equal(e.samples.find((s) => s.name === 'ft_hold_seconds_bucket' && s.labels['le'] === '+Inf')!.value, 2);
  assert.equal(sumOf(e.samples, 'ft_hold_seconds_count'), 2);
  assert.equal(sumOf(e.samples, 'absent'), undefined);
});

test('special values, timestamps and comments', () => {
  const e = parsePromText('# a comment\nx NaN\ny +Inf\nz -Inf 1700000000000\nw{a="1",} 2e3\n');
  assert.ok(Number.isNaN(e.samples[0]!.value));
  assert.equal(e.samples[1]!.value, Infinity);
  assert.equal(e.samples[2]!.value, -Infinity);
  assert.deepEqual({ ...e.samples[3]!, labels: { ...e.samples[3]!.labels } }, { name: 'w', labels: { a: '1' }, value: 2000 });
  // A label named __proto__ is a label, not a prototype.
  assert.equal(parsePromText('m{__proto__="x"} 1').samples[0]!.labels['__proto__'], 'x');
});

test('a line that is not the format is an error naming the line; a sample cap holds', () => {
  for (const bad of ['ok 1\n{a="b"} 1', 'm{a="b} 1', 'm{a=b} 1', 'm 1 2 3', 'm abc', 'm{1a="x"} 1']) {
    assert.throws(() => parsePromText(bad), (e: unknown) => e instanceof PromParseError && /line \d/.test(e.message), bad);
  }
  assert.throws(() => parsePromText('a 1\nb 2\nc 3', 2), /more than 2 samples/);
});
