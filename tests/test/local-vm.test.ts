/**
 * `mr local --demo` with its FT VM section: both demos' results, a kv
 * request through the printed URLs, a kill -9 of the primary answered by
 * re-protection (the dead node comes back as a backup that joins the
 * survivor, never as a second primary), and a SIGINT that stops every child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, alive, localEnv, sleep } from '../src/procs.ts';
import { vmStatus } from '../src/vm-cluster.ts';
import { children, kv, openSession, other, type Id } from '../src/mr-local.ts';

test('mr local --demo runs the VM workload on a protected pair, re-protects after kill -9 of the primary, and SIGINT stops every child', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-local-vm-'));
  const env = localEnv();
  const local = new Proc('mr local', ['local', '--demo', '--port', '0', '--workers', '1', '--data', join(dir, 'data')], { cwd: dir, env, limitMs: 120_000 });
  const seen = new Set<number>();
  t.after(async () => {
    local.kill();
    await local.exited;
    for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  await local.waitFor(/serving; press Ctrl-C to stop/);
  for (const c of children(local.pid)) seen.add(c.pid);
  const out = local.stdout;
  const url = (label: string) => new RegExp(`vm ${label}\\s+(http://127\\.0\\.0\\.1:\\d+)\\n`).exec(out)?.[1];
  const storage = url('storage');
  const urls = { a: url('node a \\(primary\\)')!, b: url('node b \\(backup\\)')! };
  assert.ok(storage && urls.a && urls.b, out);
  assert.match(out, /pids storage \d+, a \d+, b \d+/);

  // Both halves' demo results.
  assert.match(out, /demo: top words: the \d+, /);
  const pair = /vm demo: pair protected: primary ([ab]) \(epoch \d+\) streams its log to backup ([ab])\b/.exec(out);
  assert.ok(pair, out);
  const P = pair[1] as Id;
  const B = other(P);
  assert.equal(pair[2], B);
  assert.match(out, /vm demo: 200\/200 unique incr requests from 4 clients answered in [\d.]+ s; latency p50 [\d.]+ ms, p99 [\d.]+ ms/);
  assert.match(out, /vm demo: counter "demo" = 200 \(every request applied exactly once\)/);
  const h = new RegExp(`vm demo: state hash at instruction (\\d+): primary ${P} ([0-9a-f]+), backup ${B} ([0-9a-f]+): equal`).exec(out);
  assert.ok(h, out);
  assert.equal(h[2], h[3]);
  const hint = new RegExp(`kill -9 (\\d+) +\\(node ${P}, the primary\\)`).exec(out);
  assert.ok(hint, out);
  const pidP = Number(hint[1]);

  assert.match(out, /vm demo: session \d+: incr seq 1 answered 1; its retry answered 1 \(the remembered answer: applied once\)/);

  // A kv request through the printed URLs: the primary answers, a retry of the same (session, seq) is applied once, the backup names the live node.
  const session = await openSession(urls[P]);
  const r1 = await kv(urls[P], { session, seq: 1, ackBelow: 1, op: 'incr', key: 'demo' });
  assert.deepEqual(r1, { status: 200, body: { value: 201 } });
  const again = await kv(urls[P], { session, seq: 1, ackBelow: 1, op: 'incr', key: 'demo' });
  assert.deepEqual(again, r1);
  const fromBackup = await kv(urls[B], { session, seq: 2, ackBelow: 2, op: 'get', key: 'demo' });
  assert.equal(fromBackup.status, 503);
  assert.equal(fromBackup.body.live, urls[P]);

  // kill -9 the primary: the backup takes over, the dead node comes back as its backup (joined by state transfer), nothing is lost.
  process.kill(pidP, 'SIGKILL');
  const m = await local.waitFor(new RegExp(`vm: protected again: primary ${B} \\(pid \\d+\\), backup ${P} \\(pid (\\d+)\\), epoch (\\d+)`));
  seen.add(Number(m[1]));
  assert.match(local.stdout, new RegExp(`vm: node ${B} is the live primary \\(epoch \\d+\\); restarting ${P} as a new backup: --join ${urls[B]}`));
  const [sp, sb] = await Promise.all([vmStatus(urls[P]), vmStatus(urls[B])]);
  assert.equal(sb?.live, true);
  assert.equal(sp?.role, 'backup', 'the dead primary came back as a backup, not as a second primary');
  assert.equal(sp?.epoch, sb?.epoch);
  assert.equal(sb?.epoch, Number(m[2]));
  const r3 = await kv(urls[B], { session, seq: 3, ackBelow: 3, op: 'incr', key: 'demo' });
  assert.deepEqual(r3, { status: 200, body: { value: 202 } });
  const acked = await kv(urls[B], { session, seq: 1, ackBelow: 1, op: 'incr', key: 'demo' });
  assert.deepEqual([acked.status, (acked.body as { code?: string }).code], [409, 'FT_ERR_SEQ_ACKED'], 'the session survived the failover: seq 1 was acknowledged, not applied again');

  // SIGINT: every child is stopped, nothing listens any more.
  for (const c of children(local.pid)) seen.add(c.pid);
  assert.ok(seen.size >= 5, `coordinator, worker, storage, a, b: ${[...seen].join(' ')}`);
  local.child.kill('SIGINT');
  const e = await local.wait();
  assert.equal(e.code, 0, local.stderr);
  assert.match(local.stdout, /stopped\n$/);
  await sleep(100);
  for (const pid of seen) assert.equal(alive(pid), false, `child ${pid} still running`);
  for (const u of [storage, urls.a, urls.b]) {
    const res = await fetch(`${u}/healthz`).catch((err: Error) => err);
    assert.ok(res instanceof Error, `${u} is gone`);
  }
});
