import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmClient } from '@mr/vmft-client';
import { checkKvHistory, type KvOperation } from '@mr/linearizability';
import { seedFromEnv } from '@mr/sim';
import { VmCluster, waitProtected } from '../src/vm-cluster.ts';
import { runRound, describeRound, FAULTS } from '../src/lincheck-rounds.ts';
import { HistoryRecorder, answerResult } from '../src/kv-history.ts';

// One round per fault type here; `npm run lincheck -- --rounds N` runs many (README).
for (const fault of FAULTS) {
  test(`linearizable under ${fault}: concurrent clients, retries with the same ids, final reads; every answer fits one order`, async (t) => {
    const seed = seedFromEnv(process.env, Date.now() % 100_000);
    t.diagnostic(`seed ${seed} (SEED=${seed} replays the workload and fault timing choices)`);
    const r = await runRound(t, { fault, seed });
    t.diagnostic(describeRound(r));
    assert.equal(r.report.outcome, 'linearizable', describeRound(r));
    assert.ok(r.operations > 40, `only ${r.operations} operations`);
    assert.equal(r.report.keys, 5);
  });
}

test('the checker catches a real double application: a retry sent as a new request (deduplication off) is applied again', async (t) => {
  const c = new VmCluster(t);
  await c.storage();
  const b = await c.node('b', ['--role', 'backup']);
  const a = await c.node('a', ['--role', 'primary', '--peer', b.url]);
  await waitProtected(a.url, b.url);
  const nodes = [a.url, b.url];
  const rec = new HistoryRecorder();
  const x = new VmClient({ nodes, vmId: 'vm1' });
  const others = Array.from({ length: 4 }, () => new VmClient({ nodes, vmId: 'vm1' }));
  t.after(() => Promise.all([x, ...others].map((v) => v.close())));

  // x appends its token; the answer comes back.
  const invoke = performance.now();
  const first = await x.append('s0', '<x>');
  assert.equal(first.value, '<x>');
  // Others keep the guest busy (more requests than the kv guest before sessions remembered).
  let sent = 0;
  await Promise.all(others.map(async (o, i) => {
    for (let k = 0; k < 260; k++, sent++) await rec.record(`o${i}`, 'incr', 'n0', undefined, () => o.incr('n0'));
  }));
  // A retry with the same session and seq is deduplicated however late it comes ...
  const deduped = await x.requestAt({ session: first.session, seq: first.seq, ackBelow: first.seq }, { op: 'append', key: 's0', value: '<x>' });
  assert.equal(deduped.value, '<x>', `after ${sent} other requests the session still remembers the answer`);
  // ... and with deduplication switched off (the retry sent as a new request, a fresh seq: what the
  // guest before sessions did to a retry after 1,024 others) it is applied again.
  const again = await x.append('s0', '<x>');
  assert.equal(again.value, '<x><x>');
  t.diagnostic(`after ${sent} other requests the undeduplicated retry was answered ${JSON.stringify(again.value)}`);
  // x's one operation: sent at `invoke`, answered (the first answer) by the last retry.
  const op: KvOperation = { clientId: 'x', op: 'append', key: 's0', value: '<x>', invoke, response: performance.now(), result: answerResult(first) };
  rec.ops.push(op);
  await rec.record('final', 'get', 's0', undefined, () => x.get('s0'));

  const report = checkKvHistory(rec.ops);
  assert.equal(report.outcome, 'violation', 'the checker must reject a history with a double-applied append');
  const v = report.violations[0]!;
  assert.equal(v.key, 's0');
  assert.deepEqual(v.blocking.result, { value: '<x><x>' }, 'the final read shows the token twice');
  t.diagnostic(v.explanation);
  // The counter key, which nothing broke, is fine.
  assert.equal(checkKvHistory(rec.ops.filter((o) => o.key === 'n0')).outcome, 'linearizable');
});
