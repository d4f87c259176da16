import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ProtobufTraceSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { buildDashboard } from '../src/app.ts';
import { TraceStore } from '../src/otlp/store.ts';
import type { SpanRecord } from '../src/otlp/decode.ts';

/** Real spans from the OTel SDK: a root with a child (attributes of every kind, an event, an error). */
function sdkSpans(service = 'svc-a') {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': service, 'process.pid': 4242 }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('test');
  const root = tracer.startSpan('vm.failover', { attributes: { 'ft.epoch': 3 } });
  const ctx = trace.setSpan(context.active(), root);
  const child = tracer.startSpan('detect', { attributes: { s: 'x<script>', i: 7, b: true, d: 1.5 } }, ctx);
  child.addEvent('suspected');
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'peer silent' });
  child.end();
  root.end();
  return exporter.getFinishedSpans();
}

async function dashboard(t: { after(fn: () => Promise<void>): void }, traceLimits = {}) {
  const d = await buildDashboard({ vmNodes: [], vmId: 'vm1', logLevel: false, traceLimits, otlpBodyMax: 64 * 1024 });
  t.after(() => d.app.close());
  return d;
}

function check(spans: SpanRecord[], sdk: ReturnType<typeof sdkSpans>) {
  assert.equal(spans.length, 2);
  const root = spans.find((s) => s.name === 'vm.failover')!;
  const child = spans.find((s) => s.name === 'detect')!;
  const sdkRoot = sdk.find((s) => s.name === 'vm.failover')!;
  assert.equal(root.traceId, sdkRoot.spanContext().traceId);
  assert.equal(root.spanId, sdkRoot.spanContext().spanId);
  assert.equal(root.parentSpanId, undefined);
  assert.equal(child.parentSpanId, root.spanId);
  assert.equal(root.service, 'svc-a');
  assert.equal(root.instance, 'pid 4242');
  assert.equal(root.attributes['ft.epoch'], 3);
  assert.deepEqual({ ...child.attributes }, { s: 'x<script>', i: 7, b: true, d: 1.5 });
  assert.deepEqual(child.status, { code: 2, message: 'peer silent' });
  assert.equal(child.events[0]!.name, 'suspected');
  const startUs = sdkRoot.startTime[0] * 1e6 + Math.floor(sdkRoot.startTime[1] / 1000);
  assert.equal(root.startUs, startUs);
  assert.ok(root.endUs >= root.startUs);
}

test('OTLP protobuf from the SDK serializer is decoded: ids, parents, attributes, status, events, times', async (t) => {
  const d = await dashboard(t);
  const sdk = sdkSpans();
  const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(sdk)!);
  const r = await d.app.inject({ method: 'POST', url: '/v1/traces', headers: { 'content-type': 'application/x-protobuf' }, payload: body });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'application/x-protobuf');
  check(d.traces.get(sdk[0]!.spanContext().traceId)!, sdk);
});

test('OTLP JSON from the SDK serializer is decoded the same way', async (t) => {
  const d = await dashboard(t);
  const sdk = sdkSpans();
  const body = Buffer.from(JsonTraceSerializer.serializeRequest(sdk)!);
  const r = await d.app.inject({ method: 'POST', url: '/v1/traces', headers: { 'content-type': 'application/json' }, payload: body });
  assert.equal(r.statusCode, 200, r.body);
  check(d.traces.get(sdk[0]!.spanContext().traceId)!, sdk);
});

test('bad OTLP payloads get a coded 4xx and store nothing', async (t) => {
  const d = await dashboard(t);
  const good = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(sdkSpans())!).toString()) as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
  const bad = (mutate: (s: Record<string, unknown>) => void) => {
    const copy = structuredClone(good);
    mutate(copy.resourceSpans[0]!.scopeSpans[0]!.spans[1]!);
    return JSON.stringify(copy);
  };
  const cases: [string, string, string | Buffer, number, string][] = [
    ['garbage protobuf', 'application/x-protobuf', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['a short trace id', 'application/json', bad((s) => (s['traceId'] = 'abcd')), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['a non-hex span id', 'application/json', bad((s) => (s['spanId'] = 'zzzzzzzzzzzzzzzz')), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['no start time', 'application/json', bad((s) => delete s['startTimeUnixNano']), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['spans not an array', 'application/json', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: 3 }] }] }), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['a bad kind', 'application/json', bad((s) => (s['kind'] = 99)), 400, 'DASH_ERR_OTLP_BAD_PAYLOAD'],
    ['not JSON', 'application/json', '{"resourceSpans": [', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
    ['text/plain', 'text/plain', 'hello', 415, 'DASH_ERR_OTLP_MEDIA_TYPE'],
    ['over the body limit', 'application/x-protobuf', Buffer.alloc(65 * 1024), 413, 'FST_ERR_CTP_BODY_TOO_LARGE'],
  ];
  for (const [what, ct, payload, status, code] of cases) {
    const r = await d.app.inject({ method: 'POST', url: '/v1/traces', headers: { 'content-type': ct }, payload });
    assert.equal(r.statusCode, status, `${what}: ${r.body}`);
    assert.equal((r.json() as { code: string }).code, code, `${what}: ${r.body}`);
    assert.deepEqual(d.traces.size, { traces: 0, spans: 0, bytes: 0 }, what);
  }
});

test('flood: the trace store stays within its bounds, dropping the oldest traces first', async (t) => {
  const limits = { maxTraces: 200, maxSpans: 400, maxBytes: 400 * 1024, maxSpansPerTrace: 20 };
  const d = await dashboard(t, limits);
  const traceIds: string[] = [];
  let sent = 0;
  // 400 requests of 25 spans: 5 traces of 5 spans each, 10,000 spans in all, with 1 KiB attributes.
  for (let r = 0; r < 400; r++) {
    const spans = [];
    for (let k = 0; k < 5; k++) {
      const traceId = (r * 5 + k + 1).toString(16).padStart(32, '0');
      traceIds.push(traceId);
      for (let i = 0; i < 5; i++) {
        spans.push({ traceId, spanId: (i + 1).toString(16).padStart(16, '0'), name: `op-${i}`, kind: 1, startTimeUnixNano: String(1e18 + r * 1e9), endTimeUnixNano: String(1e18 + r * 1e9 + 1e6), attributes: [{ key: 'blob', value: { stringValue: 'x'.repeat(1024) } }] });
        sent++;
      }
    }
    const res = await d.app.inject({ method: 'POST', url: '/v1/traces', headers: { 'content-type': 'application/json' }, payload: { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'flood' } }] }, scopeSpans: [{ spans }] }] } });
    assert.equal(res.statusCode, 200);
    const size = d.traces.size;
    assert.ok(size.traces <= limits.maxTraces && size.spans <= limits.maxSpans && size.bytes <= limits.maxBytes, `over a bound after request ${r}: ${JSON.stringify(size)}`);
  }
  const size = d.traces.size;
  assert.equal(d.traces.receivedSpans, sent);
  assert.equal(d.traces.droppedSpans, sent - size.spans, 'every span not held is counted as dropped');
  // The newest traces are the ones held; the oldest are gone.
  const held = traceIds.filter((id) => d.traces.get(id));
  assert.equal(held.length, size.traces);
  assert.deepEqual(held, traceIds.slice(traceIds.length - held.length));
  assert.equal(d.traces.get(traceIds[0]!), undefined);
  // The bound that bites here is bytes (each span carries 1 KiB of attribute).
  assert.ok(size.bytes > limits.maxBytes * 0.8, JSON.stringify(size));
  const metrics = await d.app.inject({ method: 'GET', url: '/metrics' });
  assert.match(metrics.body, new RegExp(`dashboard_otlp_spans_dropped_total\\{[^}]*\\} ${sent - size.spans}\\b`));
});

test('one trace over its span cap keeps its first spans and counts the rest as dropped', () => {
  const store = new TraceStore({ maxTraces: 10, maxSpans: 100, maxBytes: 1 << 20, maxSpansPerTrace: 3 });
  const span = (i: number): SpanRecord => ({ traceId: 'a'.repeat(32), spanId: i.toString(16).padStart(16, '0'), name: `s${i}`, kind: 1, service: 's', startUs: i, endUs: i + 1, attributes: {}, events: [], status: { code: 0 } });
  store.add([1, 2, 3, 4, 5].map(span), 0);
  assert.deepEqual(store.get('a'.repeat(32))!.map((s) => s.name), ['s1', 's2', 's3']);
  assert.equal(store.droppedSpans, 2);
});
