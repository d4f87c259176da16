/**
 * `mr local` with its FT VM section: a primary stalled (SIGSTOP) past failover
 * and resumed stops serving and comes back as a backup of the new primary.
 * In tests/slow (npm run slow -w tests: about 45 s on 2 cores); the same rule
 * is checked in npm test by vm-deposed.test.ts and the primary-stall drill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, alive, localEnv } from '../src/procs.ts';
import { until, vmStatus } from '../src/vm-cluster.ts';
import { children, kv, openSession, other, type Id } from '../src/mr-local.ts';

test('mr local: a primary stalled (SIGSTOP) past failover, then resumed, stops serving and is restarted as a backup of the new primary', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-local-vm-'));
  const env = localEnv();
  const local = new Proc('mr local', ['local', '--no-demo', '--port', '0', '--workers', '1', '--data', join(dir, 'data')], { cwd: dir, env, limitMs: 120_000 });
  let stalled = 0;
  t.after(async () => {
    if (stalled && alive(stalled)) process.kill(stalled, 'SIGKILL');
    local.kill();
    await local.exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await local.waitFor(/serving; press Ctrl-C to stop/);
  const out = local.stdout;
  const urls = { a: /vm node a \(primary\)\s+(http:\/\/\S+)/.exec(out)?.[1], b: /vm node b \(backup\)\s+(http:\/\/\S+)/.exec(out)?.[1] } as Record<Id, string>;
  assert.ok(urls.a && urls.b, out);
  const P = await until('the pair to be protected', 30_000, async () => {
    for (const id of ['a', 'b'] as const) {
      const s = await vmStatus(urls[id]);
      if (s?.live && s.peer.state === 'connected' && s.log.acked > 0) return id;
    }
    return undefined;
  });
  const B = other(P);
  stalled = children(local.pid).find((c) => c.args.includes(`vm node --id ${P} `))?.pid ?? 0;
  assert.ok(stalled > 0);
  const session = await openSession(urls[P]);
  assert.deepEqual(await kv(urls[P], { session, seq: 1, ackBelow: 1, op: 'incr', key: 'k' }), { status: 200, body: { value: 1 } });

  process.kill(stalled, 'SIGSTOP');
  await until(`${B} to take over`, 30_000, async () => (await vmStatus(urls[B]))?.live);
  process.kill(stalled, 'SIGCONT');
  const m = await local.waitFor(new RegExp(`vm: protected again: primary ${B} \\(pid \\d+\\), backup ${P} \\(pid \\d+\\), epoch (\\d+)`));
  assert.match(local.stdout, new RegExp(`vm: node ${P} stopped serving \\(.*test-and-set.*\\); restarting it as a backup of the live node`));
  assert.equal(alive(stalled), false, 'the stopped node was stopped');
  const [sp, sb] = await Promise.all([vmStatus(urls[P]), vmStatus(urls[B])]);
  assert.equal(sp?.role, 'backup');
  assert.equal(sb?.live, true);
  assert.equal(sb?.epoch, Number(m[1]));
  assert.deepEqual(await kv(urls[B], { session, seq: 2, ackBelow: 1, op: 'incr', key: 'k' }), { status: 200, body: { value: 2 } });
  assert.deepEqual(await kv(urls[B], { session, seq: 1, ackBelow: 1, op: 'incr', key: 'k' }), { status: 200, body: { value: 1 } }, 'seq 1, applied by the stalled primary, is remembered by the new one');

  local.child.kill('SIGINT');
  assert.equal((await local.wait()).code, 0, local.stderr);
});
