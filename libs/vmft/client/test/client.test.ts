import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { VmClient, runLoad } from '../src/index.ts';

/**
 * Two HTTP servers that follow the vm-node client contract (sessions): the
 * live one opens sessions, applies each (session, seq) once, remembers the
 * answers of seqs at or above the session's ackBelow mark (8 at most), and
 * refuses expired sessions (410), acknowledged seqs (409) and seqs beyond the
 * window (429); the other answers 503 naming the live one. `dropNext` makes the
 * live one apply a request and then reset the connection (an answer lost in
 * transit); `expireAfterApply` expires the session right after applying.
 */
async function fakePair(t: { after(fn: () => unknown): void }) {
  const state = {
    live: 0, counter: 0, nextSession: 256, dropNext: 0, expireAfterApply: false, hint: undefined as string | undefined,
    sessions: new Map<number, { mark: number; answers: Map<number, number> }>(),
    seen: [] as string[], maxOutstanding: 0,
  };
  const servers: Server[] = [];
  const urls: string[] = [];
  const json = (res: ServerResponse, status: number, body?: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? undefined : JSON.stringify(body));
  const error = (res: ServerResponse, status: number, code: string) => json(res, status, { statusCode: status, code, error: 'x', message: code });
  for (let i = 0; i < 2; i++) {
    const s = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (!req.url?.startsWith('/v1/vms/vm1/')) return error(res, 404, 'FT_ERR_UNKNOWN_VM');
        state.seen.push(`${i}:${req.method} ${req.url} ${body}`);
        if (state.live !== i) return json(res, 503, { statusCode: 503, code: 'FT_ERR_NOT_PRIMARY', error: 'Service Unavailable', message: 'backup', live: state.hint ?? urls[state.live] });
        if (req.method === 'POST' && req.url === '/v1/vms/vm1/sessions') {
          const id = state.nextSession++;
          state.sessions.set(id, { mark: 1, answers: new Map() });
          return json(res, 201, { session: id, maxOutstanding: 8, maxSessions: 256 });
        }
        const del = /^\/v1\/vms\/vm1\/sessions\/(\d+)$/.exec(req.url);
        if (req.method === 'DELETE' && del) return state.sessions.delete(Number(del[1])) ? void res.writeHead(204).end() : error(res, 410, 'FT_ERR_SESSION_EXPIRED');
        const r = JSON.parse(body) as { session: number; seq: number; ackBelow: number; op: string; key: string };
        const sess = state.sessions.get(r.session);
        if (!sess) return error(res, 410, 'FT_ERR_SESSION_EXPIRED');
        sess.mark = Math.max(sess.mark, r.ackBelow);
        for (const q of sess.answers.keys()) if (q < sess.mark) sess.answers.delete(q);
        if (r.seq < sess.mark) return error(res, 409, 'FT_ERR_SEQ_ACKED');
        if (!sess.answers.has(r.seq)) {
          if (r.seq >= sess.mark + 8) return error(res, 429, 'FT_ERR_TOO_MANY_OUTSTANDING');
          sess.answers.set(r.seq, ++state.counter);
          state.maxOutstanding = Math.max(state.maxOutstanding, r.seq - sess.mark + 1);
        }
        const value = sess.answers.get(r.seq);
        if (state.expireAfterApply) {
          state.expireAfterApply = false;
          state.sessions.delete(r.session);
        }
        if (state.dropNext > 0) {
          state.dropNext--;
          req.socket.destroy();
          return;
        }
        json(res, 200, { value });
      });
    });
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const a = s.address();
    urls.push(`http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
    servers.push(s);
    t.after(() => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }));
  }
  return { state, urls, servers };
}

test('follows the 503 hint to the live node and remembers it', async (t) => {
  const { state, urls } = await fakePair(t);
  state.live = 1;
  const c = new VmClient({ nodes: urls, vmId: 'vm1' });
  t.after(() => c.close());
  assert.deepEqual((await c.incr('x')).value, 1);
  assert.equal(c.live, urls[1]);
  const a = await c.incr('x');
  assert.equal(a.value, 2);
  assert.equal(a.attempts, 1, 'second request goes straight to the live node');
});

test('an answer lost in transit is retried with the same session and seq and applied once', async (t) => {
  const { state, urls } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5 });
  t.after(() => c.close());
  state.dropNext = 1;
  const a = await c.incr('x');
  assert.deepEqual({ value: a.value, session: a.session, seq: a.seq }, { value: 1, session: 256, seq: 1 });
  assert.ok(a.attempts >= 2);
  assert.equal(state.counter, 1, 'applied exactly once');
  assert.ok(state.seen.filter((s) => s.includes('"session":256,"seq":1,')).length >= 2, 'the retry carried the same session and seq');
  const b = await c.incr('x');
  assert.deepEqual({ value: b.value, seq: b.seq }, { value: 2, seq: 2 });
  assert.ok(state.seen.at(-1)!.includes('"seq":2,"ackBelow":2'), 'seq 2 acknowledges the answer to seq 1');
});

test('an expired session: a request it may have applied fails with outcome unknown; a new session carries on', async (t) => {
  const { state, urls } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5 });
  t.after(() => c.close());
  assert.equal((await c.incr('x')).value, 1);
  state.expireAfterApply = true; // applied, the answer lost, then the session expires: the retry gets 410
  state.dropNext = 1;
  await assert.rejects(c.incr('x'), (e: { code: string; outcome: string; session: number; seq: number }) =>
    e.code === 'FT_ERR_SESSION_EXPIRED' && e.outcome === 'unknown' && e.session === 256 && e.seq === 2);
  assert.equal(state.counter, 2, 'it was applied once, and not again');
  assert.equal(c.session, undefined);
  const next = await c.incr('x');
  assert.deepEqual({ value: next.value, session: next.session, seq: next.seq }, { value: 3, session: 257, seq: 1 });
  // A session that expired while idle: the first attempt is refused (certainly not applied), so it goes again on a new session.
  state.sessions.clear();
  const again = await c.incr('x');
  assert.deepEqual({ value: again.value, session: again.session, seq: again.seq }, { value: 4, session: 258, seq: 1 });
  assert.equal(state.counter, 4);
});

test('at most 8 requests of one client are outstanding; the rest wait their turn', async (t) => {
  const { state, urls } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5 });
  t.after(() => c.close());
  const answers = await Promise.all(Array.from({ length: 40 }, () => c.incr('x')));
  assert.deepEqual(answers.map((a) => a.value).sort((a, b) => Number(a) - Number(b)), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.equal(new Set(answers.map((a) => a.session)).size, 1, 'one session');
  assert.ok(state.maxOutstanding <= 8 && state.maxOutstanding > 1, `outstanding at most 8 (saw ${state.maxOutstanding})`);
  assert.ok(!state.seen.some((s) => s.includes('429')));
});

test('close() closes the session on the VM', async (t) => {
  const { state, urls } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5 });
  await c.incr('x');
  assert.equal(state.sessions.size, 1);
  await c.close();
  assert.equal(state.sessions.size, 0);
  await assert.rejects(c.incr('x'), { code: 'FT_ERR_CLIENT_CONFIG' });
});

test('a node that is down is skipped; a failover is followed', async (t) => {
  const { state, urls, servers } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5 });
  t.after(() => c.close());
  assert.equal((await c.incr('x')).node, urls[0]);
  servers[0]!.closeAllConnections();
  servers[0]!.close();
  state.live = 1;
  const a = await c.incr('x');
  assert.equal(a.node, urls[1]);
  assert.equal(a.value, 2);
});

test('a hint naming a node that refuses connections does not trap the client', async (t) => {
  const { state, urls } = await fakePair(t);
  // Node 0 is stopped and keeps naming a dead address (say, a cut proxy) as live; node 1 is the live one.
  state.live = 1;
  state.hint = 'http://127.0.0.1:9';
  const c = new VmClient({ nodes: [urls[0]!, urls[1]!], vmId: 'vm1', retryDelayMs: 5, deadlineMs: 3000 });
  t.after(() => c.close());
  const a = await c.incr('x');
  assert.equal(a.value, 1);
  assert.equal(a.node, urls[1], 'reached the live node past the dead hint');
});

test('a 4xx is not retried, and no live node means a clear error at the deadline', async (t) => {
  const { state, urls } = await fakePair(t);
  const wrong = new VmClient({ nodes: urls, vmId: 'nope' });
  t.after(() => wrong.close());
  await assert.rejects(wrong.incr('x'), (e: { code: string; message: string }) => e.code === 'FT_ERR_VM_REJECTED' && /404/.test(e.message));
  state.live = 5; // nobody is live
  const c = new VmClient({ nodes: urls, vmId: 'vm1', retryDelayMs: 5, deadlineMs: 200 });
  t.after(() => c.close());
  await assert.rejects(c.incr('x'), (e: { code: string; outcome: string }) => e.code === 'FT_ERR_VM_UNAVAILABLE' && e.outcome === 'not-applied');
  assert.throws(() => new VmClient({ nodes: [], vmId: 'vm1' }), /at least one node/);
  assert.throws(() => new VmClient({ nodes: ['ftp://x'], vmId: 'vm1' }), /http/);
  assert.throws(() => new VmClient({ nodes: urls, vmId: 'vm1', clientId: 'c1' } as never), /clientId was removed/);
});

test('runLoad: N unique incr requests from C clients, each answered once', async (t) => {
  const { state, urls } = await fakePair(t);
  const r = await runLoad({ nodes: urls, vmId: 'vm1', requests: 200, clients: 8 });
  assert.equal(r.answered, 200);
  assert.equal(r.failed, 0);
  assert.deepEqual([...r.values].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(state.counter, 200);
  assert.equal(state.sessions.size, 0, 'each client closed its session');
  assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max);
});
