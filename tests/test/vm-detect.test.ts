/**
 * Failure detection by the broken log stream: with a long silence window
 * (--suspect-ticks 250 at 20 ms ticks: 5 s), kill -9 of the primary is still
 * taken over at once (its stream broke and its address refuses), while a
 * stalled primary (SIGSTOP: the stream stays open) is left to the window.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { VmCluster, vmStatus, waitProtected, until } from '../src/vm-cluster.ts';
import { sleep } from '../src/procs.ts';

const WINDOW_MS = 250 * 20;
const SLOW = ['--suspect-ticks', '250'];

/** A storage node and a protected pair, both with the 5 s silence window. */
async function protectedPair(t: TestContext) {
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup', ...SLOW]);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url, ...SLOW]);
  await waitProtected(a.url, b.url);
  return { a, b };
}

test('kill -9 of the primary: the backup takes over well before the silence window (the broken stream tells)', async (t) => {
  const { a, b } = await protectedPair(t);
  const t0 = performance.now();
  a.proc.kill();
  await until('b to go live', 20_000, async () => {
    const s = await vmStatus(b.url);
    return s?.role === 'primary' && s.live;
  });
  const ms = performance.now() - t0;
  t.diagnostic(`kill -9 -> backup live in ${ms.toFixed(0)} ms (silence window ${WINDOW_MS} ms)`);
  // Without detection by the broken stream this takes at least the window.
  assert.ok(ms < WINDOW_MS, `took ${ms.toFixed(0)} ms, not less than the ${WINDOW_MS} ms silence window`);
});

test('a stalled primary (SIGSTOP) is not taken over before the silence window, then is', async (t) => {
  const { a, b } = await protectedPair(t);
  const t0 = performance.now();
  a.proc.child.kill('SIGSTOP');
  t.after(() => a.proc.kill());
  await sleep(WINDOW_MS / 2);
  const mid = await vmStatus(b.url);
  assert.equal(mid?.role, 'backup', 'the backup waits out the window for a stalled primary (its stream is open)');
  await until('b to go live', 30_000, async () => {
    const s = await vmStatus(b.url);
    return s?.role === 'primary' && s.live;
  });
  const ms = performance.now() - t0;
  t.diagnostic(`SIGSTOP -> backup live in ${ms.toFixed(0)} ms (silence window ${WINDOW_MS} ms)`);
  assert.ok(ms >= WINDOW_MS, `took over after ${ms.toFixed(0)} ms, before the window`);
});
