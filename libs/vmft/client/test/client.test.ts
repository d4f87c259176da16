import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { VmClient, runLoad } from '../src/index.ts';

/**
 * Two HTTP servers that follow the vm-node client contract: the live one
 * applies each (clientId, requestId) once and remembers the answer, the other
 * answers 503 naming the live one. `dropNext` makes the live one apply a
 * request and then reset the connection (an answer lost in transit).
 */
async function fakePair(t: { after(fn: () => unknown): void }) {
  const state = { live: 0, counter: 0, applied: new Map<string, number>(), seen: [] as string[], dropNext: 0, hint: undefined as string | undefined };
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let i = 0; i < 2; i++) {
    const s = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url !== '/v1/vms/vm1/requests') {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 404, code: 'FT_ERR_UNKNOWN_VM', error: 'Not Found', message: 'unknown VM' }));
          return;
        }
        const r = JSON.parse(body) as { clientId: string; requestId: string; op: string; key: string };
        state.seen.push(`${i}:${r.requestId}`);
        if (state.live !== i) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 503, code: 'FT_ERR_NOT_PRIMARY', error: 'Service Unavailable', message: 'backup', live: state.hint ?? urls[state.live] }));
          return;
        }
        const id = `${r.clientId}/${r.requestId}`;
        if (!state.applied.has(id)) state.applied.set(id, ++state.counter);
        if (state.dropNext > 0) {
          state.dropNext--;
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: state.applied.get(id) }));
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
  const c = new VmClient({ nodes: urls, vmId: 'vm1', clientId: 'c1' });
  t.after(() => c.close());
  assert.deepEqual((await c.incr('x')).value, 1);
  assert.equal(c.live, urls[1]);
  const a = await c.incr('x');
  assert.equal(a.value, 2);
  assert.equal(a.attempts, 1, 'second request goes straight to the live node');
});

test('an answer lost in transit is retried with the same request id and applied once', async (t) => {
  const { state, urls } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', clientId: 'c1', retryDelayMs: 5 });
  t.after(() => c.close());
  state.dropNext = 1;
  const a = await c.incr('x', 'r-fixed');
  assert.equal(a.value, 1);
  assert.ok(a.attempts >= 2);
  assert.equal(state.counter, 1, 'applied exactly once');
  assert.ok(state.seen.filter((s) => s.endsWith(':r-fixed')).length >= 2);
});

test('a node that is down is skipped; a failover is followed', async (t) => {
  const { state, urls, servers } = await fakePair(t);
  const c = new VmClient({ nodes: urls, vmId: 'vm1', clientId: 'c1', retryDelayMs: 5 });
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
  const c = new VmClient({ nodes: [urls[0]!, urls[1]!], vmId: 'vm1', clientId: 'c1', retryDelayMs: 5, deadlineMs: 3000 });
  t.after(() => c.close());
  const a = await c.incr('x');
  assert.equal(a.value, 1);
  assert.equal(a.node, urls[1], 'reached the live node past the dead hint');
});

test('a 4xx is not retried, and no live node means a clear error at the deadline', async (t) => {
  const { state, urls } = await fakePair(t);
  const wrong = new VmClient({ nodes: urls, vmId: 'nope', clientId: 'c1' });
  t.after(() => wrong.close());
  await assert.rejects(wrong.incr('x'), (e: { code: string; message: string }) => e.code === 'FT_ERR_VM_REJECTED' && /404/.test(e.message));
  state.live = 5; // nobody is live
  const c = new VmClient({ nodes: urls, vmId: 'vm1', clientId: 'c2', retryDelayMs: 5, deadlineMs: 200 });
  t.after(() => c.close());
  await assert.rejects(c.incr('x'), (e: { code: string }) => e.code === 'FT_ERR_VM_UNAVAILABLE');
  assert.throws(() => new VmClient({ nodes: [], vmId: 'vm1' }), /at least one node/);
  assert.throws(() => new VmClient({ nodes: ['ftp://x'], vmId: 'vm1' }), /http/);
});

test('runLoad: N unique incr requests from C clients, each answered once', async (t) => {
  const { state, urls } = await fakePair(t);
  const r = await runLoad({ nodes: urls, vmId: 'vm1', requests: 200, clients: 8 });
  assert.equal(r.answered, 200);
  assert.equal(r.failed, 0);
  assert.deepEqual([...r.values].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(state.counter, 200);
  assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max);
});
