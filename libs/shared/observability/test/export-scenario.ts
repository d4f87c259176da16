/**
 * One process's telemetry, end to end, through a real OTLP/HTTP receiver:
 * resource conventions, context across an HTTP hop, untraced polling, trace
 * ids in log lines. Run once per protocol (each in its own test process: the
 * SDK registers process-wide).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver } from '../src/otlp.ts';
import { startTelemetry, tracer, inSpan, injectContext, extractContext, loggerOptions, type OtlpProtocol } from '../src/index.ts';

export async function exportScenario(t: { after(fn: () => unknown): void }, protocol: OtlpProtocol | undefined): Promise<void> {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const telemetry = await startTelemetry({
    serviceName: 'obs-test',
    instanceId: 'i-7',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...(protocol ? { OTEL_EXPORTER_OTLP_PROTOCOL: protocol } : {}) },
  });
  assert.equal(telemetry.enabled, true);
  assert.equal(telemetry.protocol, protocol ?? 'http/protobuf');
  // Imported after the SDK started, so that http and undici are instrumented.
  const { request } = await import('undici');
  const { pino } = await import('pino');

  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ traceparent: req.headers['traceparent'] ?? null }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const lines: string[] = [];
  const log = pino(loggerOptions({ service: 'obs-test' }), new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  log.info('outside any span');

  let rootTrace = '';
  let carrier: Record<string, string> = {};
  await inSpan(tracer('obs-test'), 'job', { attributes: { 'mr.job.id': 'j1' } }, async (span) => {
    rootTrace = span.spanContext().traceId;
    carrier = injectContext();
    log.info('inside the job span');
    // A traced call and a status poll, both from inside the span.
    await (await request(`${base}/v1/jobs`, { method: 'POST', body: '{}' })).body.text();
    const polled = (await (await request(`${base}/v1/jobs/j1`)).body.json()) as { traceparent: string | null };
    // The poll's client span is dropped: what reaches the server says "not sampled".
    assert.ok(polled.traceparent === null || polled.traceparent.endsWith('-00'), `poll carried ${polled.traceparent}`);
  });
  for (let i = 0; i < 5; i++) await (await request(`${base}/healthz`)).body.text();
  const child = tracer('obs-test').startSpan('task', {}, extractContext(carrier));
  child.end();
  await telemetry.shutdown();

  const spans = receiver.spans;
  assert.ok(receiver.contentTypes.length > 0);
  for (const ct of receiver.contentTypes) assert.match(ct, protocol === 'http/json' ? /^application\/json/ : /^application\/x-protobuf/);
  const job = spans.find((s) => s.name === 'job');
  assert.ok(job, `spans: ${spans.map((s) => s.name).join(', ')}`);
  assert.equal(job.traceId, rootTrace);
  assert.equal(job.attributes['mr.job.id'], 'j1');
  assert.deepEqual(
    { name: job.resource['service.name'], id: job.resource['service.instance.id'], ns: job.resource['service.namespace'], v: typeof job.resource['service.version'] },
    { name: 'obs-test', id: 'i-7', ns: 'mr', v: 'string' },
  );
  const task = spans.find((s) => s.name === 'task');
  assert.equal(task?.traceId, rootTrace, 'context crosses a hop');
  assert.equal(task?.parentSpanId, job.spanId);
  const post = spans.filter((s) => s.attributes['url.path'] === '/v1/jobs' || s.attributes['http.target'] === '/v1/jobs');
  assert.ok(post.length >= 1 && post.every((s) => s.traceId === rootTrace), 'the traced call joins the job trace');
  const polls = spans.filter((s) => /\/v1\/jobs\/j1|\/healthz/.test(String(s.attributes['url.path'] ?? s.attributes['http.target'] ?? s.attributes['url.full'] ?? '')));
  assert.deepEqual(polls.map((s) => s.name), [], 'status polls and health checks make no spans');

  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(parsed[0]!['trace_id'], undefined, 'no trace id outside a span');
  assert.equal(parsed[1]!['trace_id'], rootTrace);
  assert.equal(parsed[1]!['span_id'], job.spanId);
}
