/**
 * The VM's metrics as Prometheus reads them: every ft_* series names its VM,
 * labelled counters exist at 0 from the start, ft_protected and the
 * unprotected time say whether the VM survives a node's death, and the
 * invariant monitors move when (and only when) their rule is broken.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { createRegistry } from '@mr/observability';
import { buildStorageApp, startNode, startStorage, type StartNodeOptions } from '../src/index.ts';

type T = { after(fn: () => unknown): void };

/** Value of one sample of a /metrics page, matched by name and label pairs (in any order). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

async function metricsOf(app: FastifyInstance): Promise<string> {
  const r = await app.inject('/metrics');
  assert.equal(r.statusCode, 200);
  return r.body;
}

test('storage: per-VM counters start at 0; a write from a node acting as primary in an epoch it does not hold moves the invariant monitor, a deposed primary\'s stale write does not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = await buildStorageApp({ dataDir: dir, registry: createRegistry({ service: 'vm-storage', defaultMetrics: false }), logLevel: false, blockSize: 64, blocks: 16, vms: new Map([['vm1', ['a', 'b']]]) });
  t.after(() => app.close());
  const inv = { vm: 'vm1', invariant: 'two-primaries-one-epoch-refused' };
  let text = await metricsOf(app);
  assert.equal(sample(text, 'ft_invariant_violations_total', inv), 0, 'exported at 0 before anything happened');
  assert.equal(sample(text, 'ft_storage_tas_total', { vm: 'vm1', outcome: 'won' }), 0);
  assert.equal(sample(text, 'ft_storage_disk_ops_total', { vm: 'vm1', op: 'write', outcome: 'refused' }), 0);
  assert.equal(sample(text, 'mr_build_info', { service: 'vm-storage' }), 1);

  const data = Buffer.alloc(64, 1).toString('base64');
  const write = (nodeId: string, epoch: number) => app.inject({ method: 'PUT', url: '/v1/vms/vm1/disk/0', payload: { nodeId, epoch, data } });
  const tas = (nodeId: string, epoch: number) => app.inject({ method: 'POST', url: '/v1/vms/vm1/tas', payload: { nodeId, epoch } });
  assert.equal((await tas('a', 1)).json().won, true);
  assert.equal((await tas('b', 2)).json().won, true, 'b takes over in epoch 2');
  assert.equal((await write('a', 1)).statusCode, 409, 'the deposed primary a writes in epoch 1: fenced');
  text = await metricsOf(app);
  assert.equal(sample(text, 'ft_invariant_violations_total', inv), 0, 'a stale epoch is the normal fencing, not a breach');
  assert.equal(sample(text, 'ft_storage_disk_ops_total', { vm: 'vm1', op: 'write', outcome: 'refused' }), 1);

  // Crafted: a acts as primary in epoch 2, which b won (two primaries in one epoch), then in epoch 3, which nobody won.
  assert.equal((await write('a', 2)).statusCode, 409);
  assert.equal((await write('a', 3)).statusCode, 409);
  text = await metricsOf(app);
  assert.equal(sample(text, 'ft_invariant_violations_total', inv), 2, 'detected and refused, twice');
  assert.equal((await write('b', 2)).statusCode, 200, 'the owner still writes');
  assert.equal(sample(await metricsOf(app), 'ft_invariant_violations_total', inv), 2);
});

async function pair(t: T, primary: Partial<StartNodeOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  const base = { vmId: 'vm1', guest: 'kv', storageUrl: storage.url, port: 0, logLevel: false as const };
  const b = await startNode({ ...base, nodeId: 'b', role: 'backup' });
  t.after(() => b.close());
  const a = await startNode({ ...base, nodeId: 'a', role: 'primary', peerUrl: b.url, ...primary });
  t.after(() => a.close());
  for (let i = 0; i < 500 && !(a.driver.core.live && a.driver.core.link().acked > 0); i++) await sleep(10);
  assert.ok(a.driver.core.live, 'the primary went live');
  return { a, b };
}

async function incrs(app: FastifyInstance, n: number): Promise<void> {
  const s = await app.inject({ method: 'POST', url: '/v1/vms/vm1/sessions' });
  assert.equal(s.statusCode, 201, s.body);
  const session = s.json().session as number;
  for (let seq = 1; seq <= n; seq++) {
    const r = await app.inject({ method: 'POST', url: '/v1/vms/vm1/requests', payload: { session, seq, ackBelow: seq, op: 'incr', key: 'x' } });
    assert.equal(r.statusCode, 200, r.body);
  }
}

const OUTPUT_RULE = { invariant: 'output-released-before-ack' };

test('a protected pair: every ft_* series names its VM and node, counters start at 0, ft_protected is 1 on the live primary only, no invariant moves', async (t) => {
  const { a, b } = await pair(t);
  await incrs(a.app, 5);
  const ta = await metricsOf(a.app);
  const tb = await metricsOf(b.app);
  for (const [text, node] of [[ta, 'a'], [tb, 'b']] as const) {
    const ft = text.split('\n').filter((l) => l.startsWith('ft_'));
    assert.ok(ft.length > 30, `${node}: ${ft.length} ft_ samples`);
    for (const l of ft) assert.match(l, new RegExp(`vm="vm1"[^}]*node="${node}"|node="${node}"[^}]*vm="vm1"`), l);
    assert.equal(sample(text, 'ft_failovers_total', { kind: 'takeover' }), 0, `${node}: failovers exported at 0`);
    assert.equal(sample(text, 'ft_failovers_total', { kind: 'alone' }), 0);
    assert.equal(sample(text, 'ft_peer_refused_total', { what: 'stream-not-holder' }), 0);
    assert.equal(sample(text, 'ft_invariant_violations_total', OUTPUT_RULE), 0, `${node}: the output rule held`);
    assert.equal(sample(text, 'ft_invariant_violations_total', { invariant: 'state-hash-mismatch' }), 0);
    assert.equal(sample(text, 'mr_build_info', { service: 'vm-node', vm: 'vm1', node }), 1);
  }
  assert.equal(sample(ta, 'ft_protected'), 1);
  assert.equal(sample(tb, 'ft_protected'), 0);
  assert.equal(sample(ta, 'ft_client_requests_total', { op: 'incr', outcome: 'ok' }), 5);
  assert.equal(sample(ta, 'ft_client_requests_total', { op: 'get', outcome: 'ok' }), 0);
  assert.ok(sample(ta, 'ft_outputs_released_total')! >= 6, 'the session and five incrs were released');
  assert.equal(sample(tb, 'ft_unprotected_seconds_total'), 0, 'a backup whose primary is alive counts nothing');
  assert.ok(sample(ta, 'ft_unprotected_seconds_total')! < 2, 'the primary was unprotected only until the backup first acknowledged');
});

test('the output rule switched off (outputRule: false) moves the output-released-before-ack monitor', async (t) => {
  const { a } = await pair(t, { outputRule: false });
  await incrs(a.app, 5);
  const text = await metricsOf(a.app);
  assert.ok(sample(text, 'ft_invariant_violations_total', OUTPUT_RULE)! >= 1, `outputs went out before their acks: ${sample(text, 'ft_invariant_violations_total', OUTPUT_RULE)}`);
});

test('a primary alone is unprotected: ft_protected 0 and the unprotected seconds grow', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: dir, logLevel: false });
  t.after(() => storage.close());
  const a = await startNode({ vmId: 'vm1', nodeId: 'a', role: 'primary', guest: 'kv', storageUrl: storage.url, port: 0, logLevel: false });
  t.after(() => a.close());
  while (!a.driver.core.live) await sleep(5);
  const t0 = Date.now();
  const before = sample(await metricsOf(a.app), 'ft_unprotected_seconds_total')!;
  await sleep(300);
  const text = await metricsOf(a.app);
  assert.equal(sample(text, 'ft_live'), 1);
  assert.equal(sample(text, 'ft_protected'), 0);
  const grew = sample(text, 'ft_unprotected_seconds_total')! - before;
  const elapsed = (Date.now() - t0) / 1000;
  assert.ok(grew > 0.2 && grew <= elapsed + 0.05, `unprotected seconds grew by ${grew} in ${elapsed} s`);
});

test('state-hash-mismatch: the backup\'s acks carry its checkpoints and the primary compares them; a crafted ack with another hash at an equal instruction count moves the monitor', async (t) => {
  const { a, b } = await pair(t);
  // The backup hashes at checkpoints (about one progress entry in 64: the guest must run) and reports them in its acks.
  const s = (await a.app.inject({ method: 'POST', url: '/v1/vms/vm1/sessions' })).json().session as number;
  for (let seq = 1; seq <= 2000 && b.driver.core.checkpoints().length === 0; seq++) {
    await a.app.inject({ method: 'POST', url: '/v1/vms/vm1/requests', payload: { session: s, seq, ackBelow: seq, op: 'incr', key: 'x' } });
  }
  for (let i = 0; i < 100 && a.driver.core.link().acked < b.driver.core.checkpoints().at(-1)!.seq; i++) await sleep(10);
  const theirs = b.driver.core.checkpoints().at(-1);
  assert.ok(theirs, 'the backup took a checkpoint');
  const mine = a.driver.core.checkpoints().find((c) => c.seq === theirs.seq);
  assert.ok(mine, 'the primary holds the same checkpoint');
  assert.deepEqual(mine, theirs, 'same seq, instruction count and hash on both nodes');
  const MISMATCH = { invariant: 'state-hash-mismatch' };
  assert.equal(sample(await metricsOf(a.app), 'ft_invariant_violations_total', MISMATCH), 0, 'the real replicas agree');

  // Crafted: an ack (current epoch, nothing new acknowledged) whose checkpoint names another hash at the same seq and icount.
  const l = a.driver.core.link();
  a.driver.drive({ type: 'ack', epoch: a.driver.core.epoch, seq: l.acked, icount: 0, checkpoint: { ...mine, hash: `not-${mine.hash}` } });
  assert.equal(sample(await metricsOf(a.app), 'ft_invariant_violations_total', MISMATCH), 1, 'detected (the replicas diverged)');
  // A different instruction count at that seq, or a seq the primary no longer holds, is not compared.
  a.driver.drive({ type: 'ack', epoch: a.driver.core.epoch, seq: l.acked, icount: 0, checkpoint: { ...mine, icount: mine.icount + 1, hash: 'x' } });
  a.driver.drive({ type: 'ack', epoch: a.driver.core.epoch, seq: l.acked, icount: 0, checkpoint: { seq: 10 ** 9, icount: 1, hash: 'x' } });
  assert.equal(sample(await metricsOf(a.app), 'ft_invariant_violations_total', MISMATCH), 1);
});
