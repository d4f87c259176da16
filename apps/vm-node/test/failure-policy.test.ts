/**
 * One failure policy: a throw from the FT core's `step` is a broken
 * invariant, and the node stops serving for good (fail-stop, as the
 * coordinator does), says why in its status, and answers every waiting and
 * later client request 503 FT_ERR_STOPPED. Outcomes (a replay that diverges)
 * are data in the core: see libs/vmft/core/testdata/divergence.txt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRegistry } from '@mr/observability';
import { buildNodeApp, startStorage, ERR_STOPPED } from '../src/index.ts';
import { StorageClient } from '../src/node/storage-client.ts';

type T = { after(fn: () => unknown): void };

async function primaryAlone(t: T) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  const { app, driver } = await buildNodeApp({
    vmId: 'vm1',
    nodeId: 'a',
    role: 'primary',
    guest: 'kv',
    storageUrl: storage.url,
    registry: createRegistry({ service: 'vm-node', defaultMetrics: false }),
    logLevel: false,
  });
  t.after(() => app.close());
  await driver.start('http://127.0.0.1:1');
  while (!driver.core.live) await sleep(5);
  return { app, driver };
}

/** incr seq `seq` in the guest's first session (id 1 << 8 | 0), opened by `openSession`. */
const incr = (seq: number) => ({ method: 'POST' as const, url: '/v1/vms/vm1/requests', payload: { session: 256, seq, ackBelow: seq, op: 'incr', key: 'x' } });
const openSession = { method: 'POST' as const, url: '/v1/vms/vm1/sessions' };

test('a throw from the core stops the node from serving: waiting and later requests get 503 FT_ERR_STOPPED, status says why', async (t) => {
  const { app, driver } = await primaryAlone(t);
  assert.equal((await app.inject(openSession)).json().session, 256);
  assert.equal((await app.inject(incr(1))).json().value, 1);

  // A broken invariant inside a step: the machine throws while the core runs it.
  const m = driver.core.machine!;
  const run = m.run.bind(m);
  let broken = true;
  (m as { run: typeof m.run }).run = (until) => {
    if (broken) throw new Error('invariant broken inside the machine');
    return run(until);
  };
  const waiting = await app.inject(incr(2));
  assert.equal(waiting.statusCode, 503);
  assert.equal(waiting.json().code, ERR_STOPPED.code);
  assert.match(waiting.json().reason, /failed a step \(run\): invariant broken/);

  // Even with the machine healthy again, a half-stepped core never serves.
  broken = false;
  const later = await app.inject(incr(3));
  assert.equal(later.statusCode, 503);
  assert.equal(later.json().code, ERR_STOPPED.code);
  const s = (await app.inject({ url: '/v1/vms/vm1' })).json();
  assert.equal(s.role, 'stopped');
  assert.equal(s.live, false);
  assert.match(s.reason, /invariant broken inside the machine/);
  assert.equal(s.outputs.released, 2, 'nothing left the guest after the failure (the session and incr 1 did, before)');
  assert.equal(driver.failed !== undefined, true);
});

test('a joiner whose core throws on a corrupt snapshot stops, refuses further log streams and reports why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  // Node a holds epoch 1 at storage: its log stream is taken.
  const a = new StorageClient({ url: storage.url, vmId: 'vm1', nodeId: 'a' });
  t.after(() => a.close());
  assert.equal((await a.tas(1)).won, true);
  const { app, driver } = await buildNodeApp({
    vmId: 'vm1',
    nodeId: 'c',
    role: 'backup',
    joinUrl: 'http://127.0.0.1:9',
    guest: 'kv',
    storageUrl: storage.url,
    registry: createRegistry({ service: 'vm-node', defaultMetrics: false }),
    logLevel: false,
  });
  t.after(() => app.close());
  const acks: unknown[] = [];
  const session = await driver.sink.open({ type: 'hello', epoch: 1, seq: 0, vmId: 'vm1', nodeId: 'a' }, undefined, (a) => acks.push(a));
  session.frames([{ type: 'snapshot', epoch: 1, seq: 0, icount: 0, state: new Uint8Array([1, 2, 3, 4, 5, 6]) }]);
  const s = (await app.inject({ url: '/v1/vms/vm1' })).json();
  assert.equal(s.role, 'stopped');
  assert.match(s.reason, /FT_ERR_BAD_SNAPSHOT/);
  await assert.rejects(async () => driver.sink.open({ type: 'hello', epoch: 1, seq: 0, vmId: 'vm1', nodeId: 'a' }, undefined, () => {}), /stopped/);
  const r = await app.inject(incr(1));
  assert.equal(r.json().code, ERR_STOPPED.code);
});
