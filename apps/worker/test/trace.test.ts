import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { propagation, trace } from '@opentelemetry/api';
import { tracing, core } from '@opentelemetry/sdk-node';
import type { PollReply } from '@mr/mapreduce-protocol';
import { Worker } from '../src/index.ts';
import { FakeCoordinator } from './fake-coordinator.ts';

test("each task attempt is a span whose parent is the assignment's trace context", async (t) => {
  const exporter = new tracing.InMemorySpanExporter();
  const provider = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  t.after(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
  });

  const dir = mkdtempSync(join(tmpdir(), 'mr-worker-trace-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.txt'), 'a b c a');
  const coord = await new FakeCoordinator().listen();
  t.after(() => coord.close());
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const jobSpanId = '00f067aa0ba902b7';
  const queue: PollReply[] = [
    {
      type: 'map', jobId: 'j9', taskId: 'map-0', index: 0, attempt: 2, app: 'wc', options: {}, reduces: 1, leaseMs: 10_000,
      input: join(dir, 'in.txt'), outputDir: join(dir, 'm'), traceparent: `00-${traceId}-${jobSpanId}-01`,
    },
    // No trace context: a root span of its own.
    { type: 'map', jobId: 'j9', taskId: 'map-1', index: 1, attempt: 1, app: 'wc', options: {}, reduces: 1, leaseMs: 10_000, input: join(dir, 'in.txt'), outputDir: join(dir, 'm1') },
  ];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'done' };
  const exit = await new Worker({ coordinator: coord.url, cwd: dir, log: () => {} }).run();
  assert.equal(exit.code, 0);

  const spans = exporter.getFinishedSpans().filter((s) => s.name.startsWith('mr.task.'));
  assert.equal(spans.length, 2);
  const [first, second] = spans;
  assert.equal(first!.name, 'mr.task.map');
  assert.equal(first!.spanContext().traceId, traceId);
  assert.equal(first!.parentSpanContext?.spanId, jobSpanId);
  assert.equal(first!.attributes['mr.task.attempt'], 2);
  assert.equal(first!.attributes['mr.job.id'], 'j9');
  assert.equal(first!.attributes['mr.task.outcome'], 'done');
  assert.notEqual(second!.spanContext().traceId, traceId);
  assert.equal(second!.parentSpanContext, undefined);
});
