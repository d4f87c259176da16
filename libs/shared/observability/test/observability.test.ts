import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createRegistry, metricsPlugin, startTelemetry, tracer, inSpan, injectContext, extractContext } from '../src/index.ts';
import { trace } from '@opentelemetry/api';

test('each registry is its own: labels, default metrics, and no clash between two instances', async () => {
  const a = createRegistry({ service: 'svc-a' });
  const b = createRegistry({ service: 'svc-b', defaultMetrics: false });
  const ta = await a.metrics();
  assert.match(ta, /process_cpu_user_seconds_total\{service="svc-a"\}/);
  assert.doesNotMatch(await b.metrics(), /process_cpu/);
});

test('metricsPlugin serves /metrics and times routed requests', async (t) => {
  const registry = createRegistry({ service: 'svc', defaultMetrics: false });
  const app = Fastify();
  t.after(() => app.close());
  await app.register(metricsPlugin, { registry });
  app.get('/hello/:name', async () => 'hi');
  await app.inject('/hello/x');
  const res = await app.inject('/metrics');
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /text\/plain/);
  assert.match(res.body, /http_request_duration_seconds_count\{service="svc",method="GET",route="\/hello\/:name",status_code="200"\} 1/);
  assert.doesNotMatch(res.body, /route="\/metrics"/);
});

test('without an OTLP endpoint telemetry stays off and costs nothing', async () => {
  const h = await startTelemetry({ serviceName: 'x', env: {} });
  assert.equal(h.enabled, false);
  await h.shutdown();
});

test('with an OTLP endpoint spans are exported over OTLP/HTTP and context crosses a hop', async (t) => {
  const bodies: string[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.after(() => receiver.close());
  const port = (receiver.address() as AddressInfo).port;
  const h = await startTelemetry({
    serviceName: 'obs-test',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
  });
  assert.equal(h.enabled, true);
  let carrier: Record<string, string> = {};
  let parentTrace = '';
  await inSpan(tracer('obs-test'), 'job', { attributes: { app: 'wc' } }, async (span) => {
    parentTrace = span.spanContext().traceId;
    carrier = injectContext();
  });
  assert.match(carrier['traceparent'] ?? '', new RegExp(`^00-${parentTrace}-[0-9a-f]{16}-01$`));
  // The other side of the hop: a span started under the extracted context joins the trace.
  const child = tracer('obs-test').startSpan('task', {}, extractContext(carrier));
  assert.equal(child.spanContext().traceId, parentTrace);
  child.end();
  await h.shutdown();
  const all = bodies.join('\n');
  assert.match(all, /obs-test/);
  assert.match(all, /"name":"job"/);
  assert.match(all, /"name":"task"/);
  trace.disable();
});
