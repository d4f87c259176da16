import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { createRegistry, metricsPlugin, serveMetrics, startTelemetry, isUntracedRoute, otlpProtocol } from '../src/index.ts';

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

test('untraced routes: status polling, health, metrics, worker polls and the log stream; not requests or submits', () => {
  for (const [m, u] of [['GET', '/healthz'], ['GET', '/metrics'], ['GET', '/v1/vms/vm1'], ['GET', '/v1/jobs/01J?x=1'], ['GET', '/v1/jobs?state=running'],
    ['GET', '/v1/openapi.json'], ['GET', '/v1/version'], ['GET', '/v1/jobs/j1/tasks'], ['POST', '/v1/workers/w1/poll'], ['POST', '/v1/workers/w1/heartbeat'], ['POST', '/v1/vms/vm1/log'], ['GET', '/v1/jobs/j1/events']] as const) {
    assert.ok(isUntracedRoute(m, u), `${m} ${u}`);
  }
  for (const [m, u] of [['POST', '/v1/jobs'], ['POST', '/v1/vms/vm1/requests'], ['POST', '/v1/vms/vm1/sessions'], ['POST', '/v1/vms/vm1/tas'], ['POST', '/v1/workers/w1/complete'], ['DELETE', '/v1/jobs/j1']] as const) {
    assert.ok(!isUntracedRoute(m, u), `${m} ${u}`);
  }
});

test('OTLP protocol: http/protobuf by default, http/json on request, anything else is a coded error', () => {
  assert.equal(otlpProtocol({}), 'http/protobuf');
  assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), 'http/json');
  assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }), 'http/protobuf');
  assert.throws(() => otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), (e: { code?: string }) => e.code === 'MR_ERR_OTEL_CONFIG');
});

test('serveMetrics: a bare /metrics server for processes without HTTP of their own (the worker)', async (t) => {
  const registry = createRegistry({ service: 'mr-worker', defaultMetrics: false });
  const server = await serveMetrics(registry, { host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const m = await fetch(`${server.url}/metrics`);
  assert.equal(m.status, 200);
  assert.match(await m.text(), /^mr_build_info\{version="[^"]+",nodejs="v[\d.]+",service="mr-worker"\} 1$/m);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${server.url}/other`)).status, 404);
  assert.equal((await fetch(`${server.url}/metrics`, { method: 'POST' })).status, 405);
});
