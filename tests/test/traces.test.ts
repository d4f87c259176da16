/**
 * Traces of real processes, received by an in-test OTLP/HTTP receiver
 * (README "Traces"): a job is one trace across mr submit, the coordinator
 * and the workers; a VM request is one trace across the client, the primary
 * and the backup; a failover is a trace of its own whose stages add up to it;
 * idle clusters export (almost) nothing; log lines carry the trace id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startOtlpReceiver, type SpanRecord } from '@mr/observability/otlp';
import { Lab } from '../src/lab.ts';
import { runMr, sleep } from '../src/procs.ts';
import { VmCluster, waitProtected, vmStatus, until } from '../src/vm-cluster.ts';

const FLUSH = { OTEL_BSP_SCHEDULE_DELAY: '100' };

function names(spans: SpanRecord[]): string {
  return [...new Set(spans.map((s) => `${String(s.resource['service.name'])}:${s.name}${s.parentSpanId ? '' : ' (root)'}${s.attributes['url.path'] ? ` ${String(s.attributes['http.request.method'])} ${String(s.attributes['url.path'])}` : ''}`))].join(', ');
}

/** Spans received in `ms` from now, once what was under way has been flushed. */
async function quietSpans(receiver: { spans: SpanRecord[] }, ms: number): Promise<SpanRecord[]> {
  await sleep(500);
  const before = receiver.spans.length;
  await sleep(ms);
  return receiver.spans.slice(before);
}

test('a job is one trace across mr submit, the coordinator and the workers; an idle cluster exports no polling spans; log lines carry the trace id', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const lab = new Lab(t);
  Object.assign(lab.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...FLUSH });
  const inputs = ['a.txt', 'b.txt'].map((f, i) => {
    const p = join(lab.root, f);
    writeFileSync(p, `the quick brown fox ${i}\njumps over the lazy dog\n`);
    return p;
  });
  const { proc: coord, url } = await lab.coordinator(120_000);
  lab.worker(url, 120_000, ['--name', 'w-one']);
  await until('the worker to register', 60_000, async () => {
    if (!coord.alive) throw new Error(`the coordinator exited: ${lab.describe()}`);
    const res = await request(`${url}/v1/workers`, { headers: { authorization: `Bearer ${lab.env['MR_TOKEN']}` } });
    const body = (await res.body.json()) as { workers?: unknown[] };
    return (body.workers?.length ?? 0) >= 1;
  });

  // The registration is a traced request: wait until its spans are in (a loaded machine exports late).
  await receiver.waitFor('the registration spans', (spans) => spans.filter((x) => x.attributes['url.path'] === '/v1/workers').length >= 2);
  // Idle: a worker long-polling, nothing submitted.
  const idle = await quietSpans(receiver, 2000);
  assert.ok(idle.length <= 1, `an idle coordinator with a worker exported ${idle.length} spans in 2 s: ${names(idle)}`);

  const r = await runMr(['submit', '--coordinator', url, '--app', 'wc', '--reduces', '2', '--output', 'out', '--wait', ...inputs], { cwd: lab.cwd, env: lab.env });
  assert.equal(r.code, 0, r.stderr);
  const jobId = r.stdout.trim().split('\n')[0]!;
  await receiver.waitFor('the job span and its task spans', (s) => s.some((x) => x.name === 'mr.job') && s.filter((x) => x.name === 'mr.task.reduce').length >= 2);
  const job = receiver.spans.find((s) => s.name === 'mr.job')!;
  assert.equal(job.attributes['mr.job.id'], jobId);
  await receiver.waitFor('every span of the job trace', (s) => s.some((x) => x.traceId === job.traceId && x.resource['service.name'] === 'mr-cli'), 10_000);
  const inTrace = receiver.spans.filter((s) => s.traceId === job.traceId);
  const services = new Set(inTrace.map((s) => s.resource['service.name']));
  assert.deepEqual([...services].sort(), ['mr-cli', 'mr-coordinator', 'mr-worker'], `services in the job trace: ${names(inTrace)}`);
  const tasks = inTrace.filter((s) => s.name.startsWith('mr.task.'));
  // Small inputs share one split: one map task, and one task per reduce partition.
  assert.deepEqual(tasks.map((s) => s.name).sort(), ['mr.task.map', 'mr.task.reduce', 'mr.task.reduce']);
  for (const task of tasks) {
    assert.equal(task.parentSpanId, job.spanId, 'a task span is a child of the job span');
    assert.equal(task.attributes['mr.job.id'], jobId, 'workers name the job mr.job.id, like the coordinator');
    assert.equal(task.resource['service.instance.id'], 'w-one', 'the worker is told apart by its --name');
  }
  // Resource conventions: one service.name per service, instances apart.
  for (const s of inTrace) {
    assert.equal(s.resource['service.namespace'], 'mr');
    assert.equal(typeof s.resource['service.version'], 'string');
    assert.ok(s.resource['service.instance.id'], `${s.name} has a service.instance.id`);
  }
  // The polls of mr submit --wait, the workers' polls and heartbeats are not traced.
  const polls = receiver.spans.filter((s) => /\/poll|\/heartbeat|GET \/v1\/jobs/.test(`${String(s.attributes['http.request.method'] ?? '')} ${String(s.attributes['url.path'] ?? s.attributes['http.route'] ?? '')}`));
  assert.deepEqual(polls.map((s) => s.name), []);
  // The coordinator's log lines written inside the job's trace carry its id.
  await until('a coordinator log line with the trace id', 10_000, async () => coord.stdout.includes(`"trace_id":"${job.traceId}"`) || (coord.alive ? undefined : true));
  assert.ok(coord.stdout.includes(`"trace_id":"${job.traceId}"`), 'a coordinator log line carries the job trace id');
  for (const ct of receiver.contentTypes) assert.match(ct, /^application\/x-protobuf/, 'http/protobuf is the default');
});

test('a VM request is one trace across client, primary and backup; a failover is its own trace whose stages add up to it', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', ...FLUSH };
  const c = new VmCluster(t, { env });
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);

  // Idle: a protected pair streaming progress entries, polled for status.
  const idle = await quietSpans(receiver, 2000);
  assert.ok(idle.length <= 1, `an idle VM pair exported ${idle.length} spans in 2 s: ${names(idle)}`);

  const put = await runMr(['vm', 'client', '--nodes', `${a.url},${b.url}`, '--json', 'put', 'k', 'v1'], { cwd: c.dir, env: { ...process.env, ...env } });
  assert.equal(put.code, 0, put.stderr);
  const stages = ['vm.primary.receive', 'vm.primary.log', 'vm.primary.ack', 'vm.primary.release', 'vm.backup.receive', 'vm.backup.ack', 'vm.backup.replay'];
  let client: SpanRecord | undefined;
  await receiver.waitFor('the request trace', (spans) => {
    client = spans.find((s) => s.name === 'vm.client.request' && s.attributes['ft.op'] === 'put');
    return !!client && stages.every((n) => spans.some((s) => s.name === n && s.traceId === client!.traceId));
  });
  const trace = receiver.spans.filter((s) => s.traceId === client!.traceId);
  const byName = (n: string) => trace.filter((s) => s.name === n);
  assert.equal(client!.resource['service.name'], 'vm-client');
  const request = byName('vm.request');
  assert.equal(request.length, 1, names(trace));
  const req = request[0]!;
  assert.deepEqual([req.resource['service.name'], req.resource['service.instance.id']], ['vm-node', 'a']);
  for (const n of stages) {
    const [s] = byName(n);
    assert.equal(s!.parentSpanId, req.spanId, `${n} is a child of the primary's vm.request`);
    assert.equal(s!.resource['service.instance.id'], n.startsWith('vm.backup') ? 'b' : 'a');
  }
  // The primary's stages are back to back, in order, within the request.
  const order = ['vm.primary.receive', 'vm.primary.log', 'vm.primary.ack', 'vm.primary.release'].map((n) => byName(n)[0]!);
  for (let i = 1; i < order.length; i++) assert.ok(Math.abs(order[i]!.startMs - order[i - 1]!.endMs) < 0.01, `${order[i]!.name} starts where ${order[i - 1]!.name} ends`);
  assert.ok(order[0]!.startMs >= req.startMs - 0.01 && order[3]!.endMs <= req.endMs + 0.01);
  // The backup received the entry before the primary saw its ack.
  const logSeq = byName('vm.primary.log')[0]!.attributes['ft.log.seq'];
  assert.equal(byName('vm.backup.receive')[0]!.attributes['ft.log.seq'], logSeq);
  assert.ok(byName('vm.backup.receive')[0]!.startMs <= byName('vm.primary.ack')[0]!.endMs + 5);
  // The client's trace reached the primary through its traceparent: the server spans descend from the client's.
  const ids = new Set(trace.map((s) => s.spanId));
  for (const s of trace) if (s !== client) assert.ok(ids.has(s.parentSpanId), `${s.name} has its parent in the trace`);
  for (const ct of receiver.contentTypes) assert.match(ct, /^application\/json/, 'OTEL_EXPORTER_OTLP_PROTOCOL=http/json is honoured');

  // Failover: the primary dies; the backup takes over; a new node joins it (re-protection).
  const killedAt = Date.now();
  a.proc.kill();
  await until('b to go live', 30_000, async () => (await vmStatus(b.url))?.live === true);
  const cNode = await c.node('c', ['--join', b.url]);
  await waitProtected(b.url, cNode.url);
  await receiver.waitFor('the failover trace', (spans) => spans.some((s) => s.name === 'vm.failover'), 20_000);
  const root = receiver.spans.find((s) => s.name === 'vm.failover')!;
  assert.equal(root.parentSpanId, '', 'a failover is a root span: its own trace');
  assert.notEqual(root.traceId, client!.traceId);
  assert.deepEqual([root.resource['service.instance.id'], root.attributes['ft.failover.kind'], root.attributes['ft.failover.outcome']], ['b', 'takeover', 'protected']);
  const children = receiver.spans.filter((s) => s.traceId === root.traceId && s.parentSpanId === root.spanId).sort((x, y) => x.startMs - y.startMs);
  assert.deepEqual(children.map((s) => s.name), ['vm.failover.detect', 'vm.failover.catch_up', 'vm.failover.arbitrate', 'vm.failover.go_live', 'vm.failover.reprotect']);
  const total = root.endMs - root.startMs;
  const sum = children.reduce((n, s) => n + (s.endMs - s.startMs), 0);
  assert.ok(Math.abs(total - sum) < 2, `stages add up to ${sum.toFixed(2)} ms, the failover took ${total.toFixed(2)} ms`);
  assert.ok(root.startMs <= killedAt + 1000 && root.startMs >= killedAt - 2000, 'detection starts when the primary was last heard');
  // The test-and-set call to storage is inside the arbitrate stage.
  const arbitrate = children[2]!;
  const tas = receiver.spans.filter((s) => s.traceId === root.traceId && s.parentSpanId === arbitrate.spanId);
  assert.ok(tas.length >= 1, `the test-and-set request is a child of arbitrate: ${names(receiver.spans.filter((s) => s.traceId === root.traceId))}`);
  t.diagnostic(`failover stages (ms): ${children.map((s) => `${s.name.slice(12)} ${(s.endMs - s.startMs).toFixed(1)}`).join(', ')}; total ${total.toFixed(1)}`);
  await until('the failover log line', 5000, async () => /failover trace ended/.test(b.proc.stdout));
  assert.match(b.proc.stdout, new RegExp(`"traceId":"${root.traceId}"`));
});
