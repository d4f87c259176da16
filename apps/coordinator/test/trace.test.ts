// Telemetry must start before fastify is imported: everything else is imported dynamically below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test("assignments carry the job span's trace context, and the job span is exported when the job ends", async (t) => {
  // An OTLP/HTTP receiver on loopback (http/protobuf, the default protocol).
  const { startOtlpReceiver } = await import('@mr/observability/otlp');
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const spans = receiver.spans;

  // The SDK reads the standard variables from the process environment.
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = receiver.url;
  process.env['OTEL_BSP_SCHEDULE_DELAY'] = '50';
  const { startTelemetry } = await import('@mr/observability');
  const telemetry = await startTelemetry({ serviceName: 'mr-coordinator-test', env: process.env });
  assert.ok(telemetry.enabled);
  const { buildCoordinator } = await import('../src/index.ts');

  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mr-trace-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const input = join(dir, 'a.txt');
  writeFileSync(input, 'x y\n');
  const app = await buildCoordinator({ dataDir: join(dir, 'data'), inputRoots: [dir], logLevel: false, telemetry: true });
  await app.ready();
  let headers: Record<string, string> = {};
  const call = async (url: string, payload: object) => JSON.parse((await app.inject({ method: 'POST', url, payload, headers })).body);

  const { workerId: w1, secret } = await call('/v1/workers', { pid: 1, host: 'h', slots: 1 });
  headers = { 'x-mr-worker-secret': secret };
  await call('/v1/jobs', { app: 'wc', inputs: [input], reduces: 1 });
  const m = await call(`/v1/workers/${w1}/poll`, {});
  assert.match(m.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  await call(`/v1/workers/${w1}/complete`, { jobId: m.jobId, taskId: m.taskId, attempt: m.attempt, durationMs: 1, files: [`${m.outputDir}/mr-0-0`] });
  const r = await call(`/v1/workers/${w1}/poll`, {});
  assert.equal(r.traceparent, m.traceparent, 'every task of the job has the same parent: the job span');
  mkdirSync(r.outputDir, { recursive: true });
  writeFileSync(join(r.outputDir, 'mr-out-0'), 'x 1\ny 1\n');
  await call(`/v1/workers/${w1}/complete`, { jobId: r.jobId, taskId: r.taskId, attempt: r.attempt, durationMs: 1, files: [] });
  await app.close();
  await telemetry.shutdown();

  const [, traceId, spanId] = m.traceparent.split('-');
  const job = spans.find((s) => s.name === 'mr.job');
  assert.ok(job, `exported spans: ${spans.map((s) => s.name).join(', ')}`);
  assert.equal(job.traceId, traceId);
  assert.equal(job.spanId, spanId);
});
