import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { runLoad, VmClient } from '@mr/vmft-client';
import { TcpProxy } from '@mr/vm-node/testing';
import { createRng, seedFromEnv } from '@mr/sim';
import type { VmStatus } from '@mr/vmft-protocol';
import { VmCluster, vmStatus, until, waitProtected, oneTo, printed, SUSPECT_TICKS } from '../src/vm-cluster.ts';
import { sleep } from '../src/procs.ts';

for (const variant of [
  // Whoever suspects first asks test-and-set first: make one side clearly slower to suspect.
  { name: 'the primary wins', primaryArgs: [] as string[], backupArgs: ['--suspect-ticks', String(SUSPECT_TICKS * 5)], winner: 'a' },
  { name: 'the backup wins', primaryArgs: ['--suspect-ticks', String(SUSPECT_TICKS * 5)], backupArgs: [] as string[], winner: 'b' },
]) test(`cut link between primary and backup (${variant.name}): exactly one wins test-and-set and serves, the other stops and says why`, async (t) => {
  const seed = seedFromEnv(process.env, Date.now() % 100_000);
  const rng = createRng(seed);
  t.diagnostic(`seed ${seed}`);
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup', ...variant.backupArgs]);
  const proxy = await TcpProxy.start(b.url);
  t.after(() => proxy.close());
  const a = await c.node('a', ['--role', 'primary', '--peer', proxy.url, ...variant.primaryArgs]);
  await waitProtected(a.url, b.url);
  const epoch0 = (await vmStatus(a.url))!.epoch;

  // Watch both nodes the whole time: never two live primaries in one epoch.
  const violations: string[] = [];
  const seen: { a?: VmStatus; b?: VmStatus }[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const [sa, sb] = await Promise.all([vmStatus(a.url), vmStatus(b.url)]);
      seen.push({ a: sa, b: sb });
      if (sa?.live && sb?.live && sa.epoch === sb.epoch) violations.push(`both live in epoch ${sa.epoch}`);
      await sleep(10);
    }
  })();

  const N = 1200;
  const cutAfter = rng.range(150, 700);
  const report = await runLoad({
    nodes: [a.url, b.url],
    vmId: 'vm1',
    requests: N,
    clients: 6,
    deadlineMs: 60_000,
    onAnswer: (done) => {
      if (done === cutAfter) proxy.cut();
    },
  });
  assert.ok(proxy.isCut);
  // Let suspicion and test-and-set settle on both sides.
  const settled = await until('one node to stop', 20_000, async () => {
    const [sa, sb] = await Promise.all([vmStatus(a.url), vmStatus(b.url)]);
    if (!sa || !sb) return undefined;
    const live = [sa, sb].filter((s) => s.live);
    const stopped = [sa, sb].filter((s) => s.role === 'stopped');
    return live.length === 1 && stopped.length === 1 ? { live: live[0]!, stopped: stopped[0]! } : undefined;
  });
  watching = false;
  await watcher;
  t.diagnostic(`cut after ${cutAfter} answers; ${settled.live.nodeId} stayed live (epoch ${settled.live.epoch}), ${settled.stopped.nodeId} stopped: ${settled.stopped.reason}`);
  t.diagnostic(JSON.stringify({ ...report, values: undefined }));
  assert.deepEqual(violations, []);
  assert.ok(seen.length > 5);
  assert.equal(settled.live.epoch, epoch0 + 1, 'the winner holds the next epoch');
  assert.equal(settled.live.nodeId, variant.winner);
  assert.match(settled.stopped.reason ?? '', /test-and-set/);

  // The stopped node refuses clients with a 503 that says why; its log says so too.
  const stoppedUrl = settled.stopped.nodeId === 'a' ? a.url : b.url;
  const liveUrl = settled.live.nodeId === 'a' ? a.url : b.url;
  const r = await request(`${stoppedUrl}/v1/vms/vm1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'get', key: 'counter' }),
  });
  const body = (await r.body.json()) as { code: string; reason: string };
  assert.equal(r.statusCode, 503);
  assert.equal(body.code, 'FT_ERR_STOPPED');
  assert.match(body.reason, /stopped: .*test-and-set/);
  const stoppedProc = settled.stopped.nodeId === 'a' ? a.proc : b.proc;
  await printed(stoppedProc, /node stopped serving/);

  // Nothing was lost or applied twice, and the survivor keeps serving.
  assert.deepEqual(report.errors, []);
  assert.deepEqual([...report.values].sort((x, y) => x - y), oneTo(N));
  const client = new VmClient({ nodes: [liveUrl], vmId: 'vm1' });
  t.after(() => client.close());
  assert.equal((await client.incr('counter')).value, N + 1);
});
