import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, trace, type Context } from '@opentelemetry/api';
import { node, tracing } from '@opentelemetry/sdk-node';
import { BackupTraces, FailoverTrace, MAX_BACKUP_TRACES } from '../src/node/tracing.ts';

const exporter = new tracing.InMemorySpanExporter();
// The Node provider registers the AsyncLocalStorage context manager: context.with() really makes a span active.
const provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
provider.register();

const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

function failoverSpans() {
  const spans = exporter.getFinishedSpans();
  const root = spans.find((s) => s.name === 'vm.failover')!;
  const stages = spans.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId).sort((a, b) => ms(a.startTime) - ms(b.startTime));
  return { root, stages };
}

test('a takeover is a root trace whose five stages are back to back and add up to it, whatever context is active', () => {
  exporter.reset();
  const t0 = 1_800_000_000_000;
  // An unrelated active span (e.g. the old log stream's handler): the failover must not join it.
  const other = provider.getTracer('x').startSpan('log stream');
  const f = context.with(trace.setSpan(context.active(), other), () =>
    new FailoverTrace({ kind: 'takeover', vmId: 'vm1', nodeId: 'b', epoch: 1, lastHeardAt: t0, suspectedAt: t0 + 1000, silentTicks: 50 }),
  );
  other.end();
  assert.equal(f.stage, 'catch_up');
  f.event({ type: 'drained', seq: 9, icount: 100 }, t0 + 1003);
  f.event({ type: 'tas-requested', epoch: 2 }, t0 + 1003);
  assert.equal(f.stage, 'arbitrate');
  const inArbitrate: Context = f.context();
  assert.equal(trace.getSpan(inArbitrate)?.spanContext().traceId, f.root.spanContext().traceId);
  f.event({ type: 'live', epoch: 2, icount: 100 }, t0 + 1040);
  f.served(t0 + 1041.5);
  assert.equal(f.stage, 'reprotect');
  f.protectedAgain(t0 + 3000, 'http://127.0.0.1:9');
  assert.equal(f.ended, true);
  const { root, stages } = failoverSpans();
  assert.equal(root.parentSpanContext, undefined, 'a new root');
  assert.notEqual(root.spanContext().traceId, other.spanContext().traceId);
  assert.deepEqual(stages.map((s) => s.name), ['vm.failover.detect', 'vm.failover.catch_up', 'vm.failover.arbitrate', 'vm.failover.go_live', 'vm.failover.reprotect']);
  for (let i = 1; i < stages.length; i++) assert.equal(ms(stages[i]!.startTime), ms(stages[i - 1]!.endTime));
  const sum = stages.reduce((n, s) => n + ms(s.duration), 0);
  assert.ok(Math.abs(sum - ms(root.duration)) < 0.001, `${sum} vs ${ms(root.duration)}`);
  assert.ok(Math.abs(ms(root.duration) - 3000) < 0.001);
  assert.deepEqual([root.attributes['ft.failover.kind'], root.attributes['ft.epoch'], root.attributes['ft.failover.outcome']], ['takeover', 2, 'protected']);
  assert.deepEqual(f.durations(), { detect: 1000, catch_up: 3, arbitrate: 37, go_live: 1.5, reprotect: 1958.5 });
});

test('a primary that lost its backup: detect, arbitrate, reprotect; a lost test-and-set ends the trace as failed', () => {
  exporter.reset();
  const t0 = 1_800_000_000_000;
  const f = new FailoverTrace({ kind: 'alone', vmId: 'vm1', nodeId: 'a', epoch: 1, lastHeardAt: t0, suspectedAt: t0 + 300, silentTicks: 15 });
  assert.equal(f.stage, 'arbitrate');
  f.event({ type: 'tas-requested', epoch: 2 }, t0 + 300);
  f.event({ type: 'alone', epoch: 2 }, t0 + 320);
  f.protectedAgain(t0 + 900, undefined);
  const { root, stages } = failoverSpans();
  assert.deepEqual(stages.map((s) => s.name), ['vm.failover.detect', 'vm.failover.arbitrate', 'vm.failover.reprotect']);
  assert.ok(Math.abs(ms(root.duration) - 900) < 0.001);

  exporter.reset();
  const g = new FailoverTrace({ kind: 'takeover', vmId: 'vm1', nodeId: 'b', epoch: 1, lastHeardAt: t0, suspectedAt: t0 + 1000, silentTicks: 50 });
  g.event({ type: 'tas-requested', epoch: 2 }, t0 + 1001);
  g.event({ type: 'stopped', reason: 'lost test-and-set for epoch 2' }, t0 + 1010);
  const lost = failoverSpans();
  assert.equal(lost.root.status.code, 2);
  assert.equal(lost.root.attributes['ft.failover.outcome'], 'failed');
  assert.deepEqual(lost.stages.map((s) => [s.name, s.status.code]), [['vm.failover.detect', 0], ['vm.failover.catch_up', 0], ['vm.failover.arbitrate', 2]]);
});

test("a backup follows at most MAX_BACKUP_TRACES sampled entries; its spans join the request's trace", () => {
  exporter.reset();
  const b = new BackupTraces({ vmId: 'vm1', nodeId: 'b' });
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  for (let seq = 1; seq <= MAX_BACKUP_TRACES + 100; seq++) b.frame({ type: 'trace', seq, traceId, spanId: '00f067aa0ba902b7', flags: 1 }, 1000 + seq);
  assert.equal(b.size, MAX_BACKUP_TRACES);
  const last = MAX_BACKUP_TRACES + 100;
  b.buffered([{ seq: last, icount: 5 }], 5000, 5001);
  b.replayed(last, 5010);
  const spans = exporter.getFinishedSpans();
  assert.deepEqual(spans.map((s) => s.name), ['vm.backup.receive', 'vm.backup.ack', 'vm.backup.replay']);
  for (const s of spans) {
    assert.equal(s.spanContext().traceId, traceId);
    assert.equal(s.parentSpanContext?.spanId, '00f067aa0ba902b7');
  }
  b.replayed(Number.MAX_SAFE_INTEGER, 6000);
  assert.equal(b.size, 0);
});
