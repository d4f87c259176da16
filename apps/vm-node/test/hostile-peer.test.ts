/**
 * Hostile or confused peers against a real pair (storage, primary, backup in
 * this process, real HTTP/2 between them, tokens on). Each case ends with the
 * pair still protected, the kv counter exact, and the refusal counted once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { H2CClient, request } from 'undici';
import { encodeFrames, type HelloFrame } from '@mr/vmft-protocol';
import { startPair, waitProtected, TOKEN, PEER_TOKEN, type Pair } from './helpers/pair.ts';

type T = Parameters<typeof startPair>[0];

/** Opens a log stream to `url` with `hello`; resolves with the status and the coded error (if refused). */
async function hello(t: T, url: string, h: HelloFrame, token = PEER_TOKEN): Promise<{ status: number; code?: string }> {
  const c = new H2CClient(url);
  t.after(() => c.close());
  const ac = new AbortController();
  const r = await c.request({
    method: 'POST',
    path: '/v1/vms/vm1/log',
    body: Buffer.from(encodeFrames([h])),
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` },
    signal: ac.signal,
  });
  if (r.statusCode === 200) {
    ac.abort();
    return { status: 200 };
  }
  const body = (await r.body.json()) as { code?: string };
  return { status: r.statusCode, ...(body.code ? { code: body.code } : {}) };
}

async function refused(url: string, what: string): Promise<number> {
  const r = await request(`${url}/metrics`);
  const text = await r.body.text();
  const m = new RegExp(`ft_peer_refused_total\\{what="${what}"[^}]*\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

/** Some load through the primary, then: still protected, counter exact (every incr applied once). */
async function stillProtected(p: Pair, before: number, tag: string): Promise<number> {
  let n = before;
  // The pair's one session: seq n+1 for the (n+1)th incr, so the answer is the seq.
  for (let i = 0; i < 20; i++) assert.equal(await p.incr('n', ++n), n, `${tag}: incr ${i}`);
  const { primary, backup } = await waitProtected(p);
  assert.equal(backup.role, 'backup');
  assert.equal(backup.epoch, primary.epoch);
  return n;
}

test('roles: the client token opens no log stream and asks no join; the peer token is not a client', async (t) => {
  const p = await startPair(t);
  const s = await p.status(p.primaryUrl);
  const asClient = await hello(t, p.backupUrl, { type: 'hello', epoch: s!.epoch, seq: 0, vmId: 'vm1', nodeId: 'a' }, TOKEN);
  assert.equal(asClient.status, 401);
  const join = await request(`${p.primaryUrl}/v1/vms/vm1/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ nodeId: 'x', url: p.backupUrl }),
  });
  assert.equal(join.statusCode, 401);
  await join.body.dump();
  const req = await request(`${p.primaryUrl}/v1/vms/vm1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PEER_TOKEN}` },
    body: JSON.stringify({ session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'n' }),
  });
  assert.equal(req.statusCode, 401, 'the peer credential is not a client token');
  await req.body.dump();
  await stillProtected(p, 0, 'roles');
});

test('a hello with epoch+1 from a node that does not hold it at storage is refused; the backup goes on', async (t) => {
  const p = await startPair(t);
  let n = await stillProtected(p, 0, 'before');
  const { epoch } = (await p.status(p.primaryUrl))!;
  for (const nodeId of ['mallory', 'a', 'b']) {
    const r = await hello(t, p.backupUrl, { type: 'hello', epoch: epoch + 1, seq: 0, vmId: 'vm1', nodeId });
    assert.deepEqual(r, { status: 409, code: 'FT_ERR_NOT_HOLDER' }, `epoch+1 hello as ${nodeId}`);
  }
  assert.equal(await refused(p.backupUrl, 'stream-not-holder'), 3);
  n = await stillProtected(p, n, 'after');
  assert.equal((await p.status(p.backupUrl))!.epoch, epoch, 'the backup did not move to the claimed epoch');
  assert.equal(n, 40);
});

test('a second stream with the current epoch cannot supersede the live primary: not the holder, or the live stream is up', async (t) => {
  const p = await startPair(t);
  let n = await stillProtected(p, 0, 'before');
  const { epoch } = (await p.status(p.primaryUrl))!;
  const impostor = await hello(t, p.backupUrl, { type: 'hello', epoch, seq: 0, vmId: 'vm1', nodeId: 'mallory' });
  assert.deepEqual(impostor, { status: 409, code: 'FT_ERR_NOT_HOLDER' });
  // Claiming to be the holder itself while its stream is live: refused too.
  const spoof = await hello(t, p.backupUrl, { type: 'hello', epoch, seq: 0, vmId: 'vm1', nodeId: 'a' });
  assert.deepEqual(spoof, { status: 409, code: 'FT_ERR_STREAM_BUSY' });
  assert.equal(await refused(p.backupUrl, 'stream-not-holder'), 1);
  assert.equal(await refused(p.backupUrl, 'stream-busy'), 1);
  n = await stillProtected(p, n, 'after');
  const b = (await p.status(p.backupUrl))!;
  assert.equal(b.role, 'backup', `the backup did not diverge or stop: ${b.reason ?? ''}`);
  assert.equal(n, 40);
});

test('join hijack: POST /join naming a URL that is not a configured peer is refused; nothing is sent there', async (t) => {
  const p = await startPair(t);
  let n = await stillProtected(p, 0, 'before');
  // The "foreign" host records every request that reaches it (it must see none).
  const seen: { url?: string; auth?: string }[] = [];
  const foreign = createServer((req, res) => {
    seen.push({ ...(req.url ? { url: req.url } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    res.end();
  });
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise((r) => foreign.close(r)));
  const foreignUrl = `http://127.0.0.1:${(foreign.address() as { port: number }).port}`;
  for (const target of [p.primaryUrl, p.backupUrl]) {
    const r = await request(`${target}/v1/vms/vm1/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PEER_TOKEN}` },
      body: JSON.stringify({ nodeId: 'mallory', url: foreignUrl }),
    });
    const body = (await r.body.json()) as { code: string };
    assert.equal(r.statusCode, 403);
    assert.equal(body.code, 'FT_ERR_PEER_NOT_ALLOWED');
  }
  assert.equal(await refused(p.primaryUrl, 'join'), 1);
  assert.equal(await refused(p.backupUrl, 'join'), 1);
  n = await stillProtected(p, n, 'after');
  assert.deepEqual(seen, [], 'no request (and no credential) reached the foreign URL');
  assert.equal(n, 40);
});
