import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, H2CClient } from 'undici';
import { encodeFrames } from '@mr/vmft-protocol';
import { VmClient } from '@mr/vmft-client';
import { VmCluster, vmStatus, waitProtected } from '../src/vm-cluster.ts';

const json = (url: string, method: 'GET' | 'POST' | 'PUT', body?: unknown, raw?: string) =>
  request(url, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined || raw !== undefined ? { body: raw ?? JSON.stringify(body) } : {}),
  }).then(async (r) => ({ status: r.statusCode, body: (await r.body.json().catch(() => ({}))) as { code?: string; message?: string } }));

test('bad input: malformed log frames, wrong epoch, garbage requests, unknown VM get a clear 4xx; nothing crashes or changes', async (t) => {
  const c = new VmCluster(t);
  const storage = await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const client = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1' });
  t.after(() => client.close());
  for (let i = 0; i < 20; i++) await client.incr('x');
  const before = { a: await vmStatus(a.url), b: await vmStatus(b.url) };

  // Garbage on the client endpoint (both nodes) and an unknown VM.
  const bad: [string, unknown, string?][] = [
    ['not json', undefined, '{"session": '],
    ['missing fields', { op: 'incr' }],
    ['unknown op', { session: 256, seq: 1, ackBelow: 1, op: 'drop', key: 'x' }],
    ['extra field', { session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'x', sql: 'DROP' }],
    ['huge key', { session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'k'.repeat(5000) }],
    ['put without value', { session: 256, seq: 1, ackBelow: 1, op: 'put', key: 'x' }],
    ['write without a session', { op: 'incr', key: 'x' }],
    ['ackBelow above seq', { session: 256, seq: 1, ackBelow: 2, op: 'incr', key: 'x' }],
    ['negative seq', { session: 256, seq: -1, ackBelow: 1, op: 'incr', key: 'x' }],
    ['session out of range', { session: 2 ** 32, seq: 1, ackBelow: 1, op: 'incr', key: 'x' }],
    ['the old contract', { clientId: 'c', requestId: 'r', op: 'incr', key: 'x' }],
  ];
  for (const url of [a.url, b.url]) {
    for (const [what, body, raw] of bad) {
      const r = await json(`${url}/v1/vms/vm1/requests`, 'POST', body, raw);
      assert.ok(r.status >= 400 && r.status < 500, `${what} at ${url} -> ${r.status}`);
      assert.ok(r.body.message, `${what}: the error says what is wrong`);
    }
    const unknown = await json(`${url}/v1/vms/nope/requests`, 'POST', { session: 256, seq: 1, ackBelow: 1, op: 'incr', key: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'FT_ERR_UNKNOWN_VM');
    assert.equal((await json(`${url}/v1/vms/nope`, 'GET')).status, 404);
  }
  // A key the guest cannot hold: refused by the packet codec, not by a crash.
  const long = await json(`${a.url}/v1/vms/vm1/requests`, 'POST', { session: client.session!, seq: 100, ackBelow: 100, op: 'incr', key: 'k'.repeat(100) });
  assert.equal(long.status, 400);

  // Malformed log frames to the backup's log endpoint (HTTP/2, as the primary sends them).
  const h2 = new H2CClient(b.url);
  t.after(() => h2.close());
  const post = async (body: Uint8Array, path = '/v1/vms/vm1/log') => {
    const r = await h2.request({ method: 'POST', path, body: Buffer.from(body), headers: { 'content-type': 'application/octet-stream' } });
    return { status: r.statusCode, body: (await r.body.json()) as { code: string; message: string } };
  };
  const garbage = await post(new Uint8Array([0, 0, 0, 4, 42, 42, 42, 42]));
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.code, 'FT_ERR_BAD_FRAME');
  assert.equal((await post(new Uint8Array([0, 0, 0, 9, 1]))).status, 400, 'truncated');
  const stale = await post(encodeFrames([{ type: 'hello', epoch: 0, seq: 0, vmId: 'vm1', nodeId: 'impostor' }]));
  assert.equal(stale.status, 409, 'a hello from an older epoch is refused');
  assert.equal(stale.body.code, 'FT_ERR_STALE_EPOCH');

  // Wrong epoch to storage: fenced.
  const tas = await json(`${storage.url}/v1/vms/vm1/tas`, 'POST', { nodeId: 'impostor', epoch: 1 });
  assert.equal(tas.status, 200);
  assert.deepEqual(tas.body, { won: false, epoch: 1, owner: 'a' });
  const write = await json(`${storage.url}/v1/vms/vm1/disk/0`, 'PUT', { nodeId: 'impostor', epoch: 1, data: Buffer.alloc(512).toString('base64') });
  assert.equal(write.status, 409);
  assert.equal(write.body.code, 'FT_ERR_NOT_OWNER');
  const old = await json(`${storage.url}/v1/vms/vm1/tas`, 'POST', { nodeId: 'a', epoch: 0 });
  assert.equal(old.status, 400);

  // A primary's log endpoint refuses streams: it is not a backup.
  const h2a = new H2CClient(a.url);
  t.after(() => h2a.close());
  const r = await h2a.request({ method: 'POST', path: '/v1/vms/vm1/log', body: Buffer.from(encodeFrames([{ type: 'hello', epoch: 9, seq: 0, vmId: 'vm1', nodeId: 'x' }])), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.statusCode, 409);
  assert.equal(((await r.body.json()) as { code: string }).code, 'FT_ERR_NOT_BACKUP');

  // Nothing crashed, nothing changed: same epoch, same pair, the counter goes on from 20.
  assert.ok(a.proc.alive && b.proc.alive && storage.proc.alive);
  const after = { a: await vmStatus(a.url), b: await vmStatus(b.url) };
  assert.equal(after.a?.epoch, before.a?.epoch);
  assert.equal(after.a?.live, true);
  assert.equal(after.b?.role, 'backup', `backup: ${after.b?.reason} ${b.proc.stdout.split('\n').filter((l) => /"level":[45]0/.test(l)).join('\n')}`);
  assert.equal(after.a?.outputs.released, before.a?.outputs.released, 'no bad request reached the guest');
  assert.equal((await client.incr('x')).value, 21);
  await waitProtected(a.url, b.url);
});
