import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startCoordinator } from '@mr/coordinator';
import { buildDashboard } from '../src/app.ts';
import { fromSpans, fromTasks, timeline } from '../src/timeline.ts';
import type { SpanRecord } from '../src/otlp/decode.ts';

async function cluster(t: { after(fn: () => Promise<void> | void): void }, token?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'dash-api-'));
  writeFileSync(join(dir, 'in.txt'), 'a b a\n');
  const coord = await startCoordinator({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), inputRoots: [dir], logLevel: false, token, workerToken: token ? `${token}-w` : undefined });
  const d = await buildDashboard({ coordinator: coord.url, vmNodes: [], vmId: 'vm1', token, logLevel: false, pollMs: 100 });
  t.after(async () => {
    await d.app.close();
    await coord.close('test');
    rmSync(dir, { recursive: true, force: true });
  });
  return { d, coord, dir };
}

const local = { host: '127.0.0.1:7074' };

test('pages carry a Content-Security-Policy and friends; assets are served from the package', async (t) => {
  const { d } = await cluster(t);
  const page = await d.app.inject({ url: '/jobs', headers: local });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-security-policy'] as string, /default-src 'none'; script-src 'self'; style-src 'self'/);
  assert.match(page.headers['content-security-policy'] as string, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.doesNotMatch(page.body, /https?:\/\//, 'no CDN or other origin in the page');
  const js = await d.app.inject({ url: '/assets/app.js', headers: local });
  assert.equal(js.statusCode, 200);
  assert.match(js.headers['content-type'] as string, /javascript/);
  assert.doesNotMatch(js.body, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, 'the UI builds the DOM from text nodes only');
  assert.equal((await d.app.inject({ url: '/assets/..%2fapp.ts', headers: local })).statusCode, 400);
  assert.equal((await d.app.inject({ url: '/assets/nope.js', headers: local })).statusCode, 404);
});

test('without a token: only loopback Host names, and no cross-origin changes', async (t) => {
  const { d } = await cluster(t);
  const rebound = await d.app.inject({ url: '/api/snapshot', headers: { host: 'evil.example:7074' } });
  assert.equal(rebound.statusCode, 403);
  assert.equal(rebound.json().code, 'DASH_ERR_FORBIDDEN_ORIGIN');
  const cross = await d.app.inject({ method: 'POST', url: '/api/jobs', headers: { ...local, origin: 'http://evil.example' }, payload: { app: 'wc', inputs: ['/x'], reduces: 1 } });
  assert.equal(cross.statusCode, 403);
  assert.equal((await d.app.inject({ url: '/api/snapshot', headers: { host: 'localhost:1' } })).statusCode, 200);
});

test('submit and cancel are forwarded to the coordinator; a bad submission is refused here with a 400', async (t) => {
  const { d, coord, dir } = await cluster(t);
  const bad = await d.app.inject({ method: 'POST', url: '/api/jobs', headers: { ...local, origin: 'http://127.0.0.1:7074' }, payload: { app: 'wc', inputs: [join(dir, 'in.txt')], reduces: '2' } });
  assert.equal(bad.statusCode, 400);
  assert.equal(coord.app.scheduler.core.jobs().length, 0);
  const outside = await d.app.inject({ method: 'POST', url: '/api/jobs', headers: local, payload: { app: 'wc', inputs: ['/etc/passwd'], reduces: 1 } });
  assert.equal(outside.statusCode, 403, 'the coordinator\'s refusal comes back as it was');
  assert.equal(outside.json().code, 'MR_ERR_INPUT_OUTSIDE_ROOTS');
  const ok = await d.app.inject({ method: 'POST', url: '/api/jobs', headers: local, payload: { app: 'wc', inputs: [join(dir, 'in.txt')], reduces: 2, name: '<img src=x onerror=alert(1)>' } });
  assert.equal(ok.statusCode, 201, ok.body);
  const id = ok.json().id as string;
  assert.equal(coord.app.scheduler.core.job(id)?.state, 'queued');
  const detail = await d.app.inject({ url: `/api/jobs/${id}`, headers: local });
  assert.equal(detail.statusCode, 200);
  assert.equal(detail.json().job.name, '<img src=x onerror=alert(1)>', 'names travel as data');
  const cancel = await d.app.inject({ method: 'DELETE', url: `/api/jobs/${id}`, headers: local });
  assert.equal(cancel.statusCode, 200, cancel.body);
  assert.equal(coord.app.scheduler.core.job(id)?.state, 'cancelled');
  assert.equal((await d.app.inject({ url: '/api/jobs/nope', headers: local })).statusCode, 404);
});

test('with a token: the API needs it (bearer or the sign-in cookie), pages send people to /login, and the token is forwarded', async (t) => {
  const token = 'dash-secret-token-1';
  const { d } = await cluster(t, token);
  d.start();
  assert.equal((await d.app.inject({ url: '/api/snapshot' })).statusCode, 401);
  const page = await d.app.inject({ url: '/', headers: { accept: 'text/html' } });
  assert.equal(page.statusCode, 303);
  assert.equal(page.headers.location, '/login');
  assert.equal((await d.app.inject({ url: '/login' })).statusCode, 200);
  assert.equal((await d.app.inject({ method: 'POST', url: '/login', payload: { token: 'wrong' } })).statusCode, 401);
  const login = await d.app.inject({ method: 'POST', url: '/login', payload: { token } });
  assert.equal(login.statusCode, 200);
  const cookie = String(login.headers['set-cookie']);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.ok(!cookie.includes(token), 'the cookie is not the token');
  const session = cookie.split(';')[0]!;
  assert.equal((await d.app.inject({ url: '/api/snapshot', headers: { cookie: 'mr_dashboard=forged' } })).statusCode, 401);
  // The coordinator needs the token too: the dashboard forwards it.
  let snap: { coordinator: { up: boolean } } | undefined;
  for (let i = 0; i < 50 && !snap?.coordinator.up; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const r = await d.app.inject({ url: '/api/snapshot', headers: { cookie: session } });
    assert.equal(r.statusCode, 200);
    assert.ok(!r.body.includes(token), 'no secret in what the page gets');
    snap = r.json();
  }
  assert.equal(snap!.coordinator.up, true);
  assert.equal((await d.app.inject({ url: '/api/snapshot', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
  // The OTLP receiver is a client route: it needs the bearer token.
  assert.equal((await d.app.inject({ method: 'POST', url: '/v1/traces', headers: { 'content-type': 'application/json' }, payload: {} })).statusCode, 401);
});

test('the live stream sends a snapshot, then one per poll', async (t) => {
  const { d } = await cluster(t);
  d.start();
  await d.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = d.app.server.address() as { port: number };
  const r = await request(`http://127.0.0.1:${port}/api/events`);
  assert.equal(r.statusCode, 200);
  assert.match(r.headers['content-type'] as string, /text\/event-stream/);
  let text = '';
  for await (const chunk of r.body) {
    text += chunk.toString();
    if ((text.match(/event: snapshot/g) ?? []).length >= 2) break;
  }
  r.body.destroy();
  const first = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)![1]!) as { coordinator: { url: string } };
  assert.match(first.coordinator.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test('timeline: one lane per worker, attempts with outcomes, from task spans or the coordinator\'s task list', () => {
  const span = (worker: string, task: string, attempt: number, start: number, extra: Record<string, string | number | boolean> = {}): SpanRecord => ({
    traceId: 't'.repeat(32), spanId: `${task}${attempt}`.padEnd(16, '0'), name: 'mr.task.map', kind: 1, service: 'mr-worker', instance: worker,
    startUs: start * 1000, endUs: (start + 10) * 1000, attributes: { 'mr.job_id': 'j1', 'mr.task_id': task, 'mr.attempt': attempt, 'mr.phase': 'map', 'mr.outcome': 'done', ...extra }, events: [], status: { code: 0 },
  });
  const spans = [span('pid 2', 'map-1', 1, 5), span('pid 1', 'map-0', 1, 0), span('pid 1', 'map-1', 2, 20, { 'mr.abandoned': true }), { ...span('pid 9', 'map-0', 1, 0), attributes: { 'mr.job_id': 'other' } }];
  const names = new Map([['pid 1', 'local-1'], ['pid 2', 'local-2']]);
  const tl = timeline('traces', fromSpans(spans, 'j1', (s) => names.get(s.instance!) ?? s.service));
  assert.deepEqual(tl.lanes, ['local-1', 'local-2']);
  assert.deepEqual(tl.attempts.map((a) => `${a.lane} ${a.taskId}#${a.attempt} ${a.outcome}`), ['local-1 map-0#1 done', 'local-2 map-1#1 done', 'local-1 map-1#2 stale']);
  const fromCoord = fromTasks({ tasks: [{ taskId: 'reduce-0', phase: 'reduce', attempts: [{ attempt: 1, workerId: 'w1', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:01Z', outcome: 'lost' }, { attempt: 2, workerId: 'w2', startedAt: '2026-01-01T00:00:02Z' }] }] }, (w) => (w === 'w1' ? 'local-1' : undefined));
  assert.deepEqual(fromCoord.map((a) => `${a.lane} ${a.taskId}#${a.attempt} ${a.outcome} ${a.endMs ?? '-'}`), ['local-1 reduce-0#1 lost 1767225601000', 'w2 reduce-0#2 running -']);
});
