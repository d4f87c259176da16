import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmClient } from '@mr/vmft-client';
import { VmCluster, vmStatus, until, waitProtected, oneTo } from '../src/vm-cluster.ts';

/**
 * Joins under load: a new backup joins the live primary by state transfer
 * while 8 clients keep it busy, JOINS times in a row (3 in npm test; `npm run
 * joins -w tests` runs 20). Every join must end protected (the joiner holds the
 * primary's epoch and acknowledges its log); then the joiner is killed, the
 * primary goes on alone, and the next one joins. The counter is exact at the
 * end: every answered incr applied once.
 */
const JOINS = Number(process.env['JOINS'] ?? 3);
const CLIENTS = 8;
/** SUSPECT_TICKS=15 runs at the nodes' default 300 ms suspicion (the window finding 2 was seen with). */
const suspect = process.env['SUSPECT_TICKS'] ? ['--suspect-ticks', process.env['SUSPECT_TICKS']] : [];

test(`${JOINS} joins in a row under ${CLIENTS}-client load all succeed`, async (t) => {
  // Every process may live as long as the whole run (about 30 s per join on a busy 2-core machine).
  const c = new VmCluster(t, { nodes: JOINS + 1, limitMs: 240_000 + JOINS * 60_000 });
  await c.storage();
  const p = await c.node('p', ['--role', 'primary', ...suspect]);
  await until('p live', 30_000, async () => (await vmStatus(p.url))?.live);

  let running = true;
  const values: number[] = [];
  const errors: string[] = [];
  const clients = Array.from({ length: CLIENTS }, () => new VmClient({ nodes: [p.url], vmId: 'vm1', deadlineMs: 60_000 }));
  t.after(() => Promise.all(clients.map((k) => k.close())));
  const load = Promise.all(
    clients.map(async (k) => {
      while (running) {
        try {
          values.push(Number((await k.incr('n')).value));
        } catch (err) {
          errors.push((err as Error).message);
          return;
        }
      }
    }),
  );

  let ok = 0;
  const ms: number[] = [];
  for (let i = 0; i < JOINS; i++) {
    const before = values.length;
    const t0 = performance.now();
    const j = await c.node(`j${i}`, ['--join', p.url, ...suspect]);
    const started = performance.now() - t0;
    try {
      await waitProtected(p.url, j.url, 60_000);
    } catch (err) {
      const lines = (proc: { stdout: string }) => proc.stdout.split('\n').filter((l) => /"level":[3-6]0/.test(l) && !/incoming request|request completed/.test(l)).slice(-15).join('\n');
      throw new Error(`${(err as Error).message}\n--- primary:\n${lines(p.proc)}\n--- joiner:\n${lines(j.proc)}`);
    }
    const took = performance.now() - t0;
    ms.push(took);
    const [sp, sj] = await Promise.all([vmStatus(p.url), vmStatus(j.url)]);
    assert.equal(sj?.role, 'backup', `join ${i}: the joiner is a backup`);
    assert.equal(sj?.epoch, sp?.epoch, `join ${i}: same epoch`);
    ok++;
    t.diagnostic(`join ${i}: joiner listening after ${started.toFixed(0)} ms, protected after ${took.toFixed(0)} ms, ${values.length - before} answers meanwhile, snapshot ${sj?.log.sent} entries in`);
    // Release the primary: kill the joiner; the primary goes on alone and takes the next join.
    j.proc.kill();
    await j.proc.exited;
    await until(`p alone again after join ${i}`, 30_000, async () => {
      const s = await vmStatus(p.url);
      return s?.live && s.peer.state === 'none';
    });
  }
  running = false;
  await load;
  t.diagnostic(`joins: ${ok}/${JOINS} succeeded; ${values.length} answers under load; join times ${ms.map((x) => x.toFixed(0)).join(', ')} ms`);
  assert.deepEqual(errors, []);
  assert.equal(ok, JOINS);
  const sorted = [...values].sort((x, y) => x - y);
  assert.deepEqual(sorted, oneTo(values.length), 'every incr answered once and applied once');
});

/**
 * Finding 4 of issue 6 (a primary that stopped answering after a second
 * failed join): joiners killed in the middle of their state transfer, twice.
 * The primary keeps answering status at once, goes on alone within the
 * transfer window each time, takes the next join, and the counter is exact.
 */
test('joiners killed mid-transfer, twice: the primary stays responsive, goes on alone, then takes a join', async (t) => {
  const c = new VmCluster(t, { nodes: 4 });
  await c.storage();
  const p = await c.node('p', ['--role', 'primary']);
  await until('p live', 30_000, async () => (await vmStatus(p.url))?.live);
  let running = true;
  const values: number[] = [];
  const errors: string[] = [];
  const clients = Array.from({ length: 4 }, () => new VmClient({ nodes: [p.url], vmId: 'vm1', deadlineMs: 60_000 }));
  t.after(() => Promise.all(clients.map((k) => k.close())));
  const load = Promise.all(
    clients.map(async (k) => {
      while (running) {
        try {
          values.push(Number((await k.incr('n')).value));
        } catch (err) {
          errors.push((err as Error).message);
          return;
        }
      }
    }),
  );
  let slowest = 0;
  const probe = async () => {
    const t0 = performance.now();
    const s = await vmStatus(p.url);
    slowest = Math.max(slowest, performance.now() - t0);
    return s;
  };
  for (let i = 0; i < 2; i++) {
    const j = await c.node(`dead${i}`, ['--join', p.url]);
    j.proc.kill(); // it printed "listening" once the join was accepted: the snapshot is (at most) in flight
    await j.proc.exited;
    const s = await until(`p alone after the failed join ${i}`, 30_000, async () => {
      const st = await probe();
      return st?.live && st.peer.state === 'none' ? st : undefined;
    });
    assert.equal(s.role, 'primary');
  }
  const j = await c.node('ok', ['--join', p.url]);
  await waitProtected(p.url, j.url, 60_000);
  running = false;
  await load;
  t.diagnostic(`slowest status answer of the primary: ${slowest.toFixed(0)} ms; ${values.length} answers`);
  assert.ok(slowest < 5000, `the primary answered status within 5 s every time (slowest ${slowest.toFixed(0)} ms)`);
  assert.deepEqual(errors, []);
  assert.deepEqual([...values].sort((x, y) => x - y), oneTo(values.length));
});
