import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkKvHistory, kvStep, kvResultMatches, type KvOperation, type KvResult, type KvState } from '../src/index.ts';
import { linearizableHistory, rng } from './gen.ts';

/** A completed operation [invoke, response] with its result. */
function op(clientId: string, o: KvOperation['op'], key: string, value: string | undefined, invoke: number, response: number, result: KvResult | 'unknown'): KvOperation {
  return { clientId, op: o, key, ...(value !== undefined ? { value } : {}), invoke, ...(result === 'unknown' ? {} : { response }), result };
}
const v = (value: string | null): KvResult => ({ value });

/**
 * The reference: tries every order of every subset that holds all known-outcome operations,
 * over all keys at once (so it also checks that partitioning per key loses nothing).
 */
function bruteForce(h: readonly KvOperation[]): boolean {
  const n = h.length;
  const placed = new Array<boolean>(n).fill(false);
  const known = h.map((o) => o.result !== 'unknown');
  const go = (state: Map<string, KvState>, left: number): boolean => {
    if (left === 0) return true;
    for (let i = 0; i < n; i++) {
      if (placed[i]) continue;
      const o = h[i]!;
      // Real-time order: an operation that returned before i was called must come first.
      if (h.some((p, j) => !placed[j] && known[j] && p.response! < o.invoke)) continue;
      const s = kvStep(state.get(o.key) ?? null, o.op, o.value);
      if (o.result !== 'unknown' && !kvResultMatches(s.result, o.result)) continue;
      placed[i] = true;
      const next = new Map(state).set(o.key, s.next);
      const ok = go(next, left - (known[i] ? 1 : 0));
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(new Map(), known.filter(Boolean).length);
}

test('histories from a real sequential execution with random overlapping intervals are linearizable', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), (seed, clients, opsPerClient, nkeys, lossy) => {
      const h = linearizableHistory({ seed, clients, opsPerClient, keys: Array.from({ length: nkeys }, (_, i) => `k${i}`), unknownRate: lossy ? 0.02 : 0 });
      const r = checkKvHistory(h);
      assert.equal(r.outcome, 'linearizable', r.violations[0]?.explanation);
      assert.equal(r.operations, h.length);
    }),
    { numRuns: 300 },
  );
});

test('the checker agrees with a brute-force search over all orders on small random histories', () => {
  let rejected = 0, accepted = 0;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 3 }), (seed, clients, opsPerClient, nkeys, mutate) => {
      const h = linearizableHistory({ seed, clients, opsPerClient, keys: Array.from({ length: nkeys }, (_, i) => `k${i}`), unknownRate: 0.2 });
      // Disturb up to `mutate` results with plausible wrong ones (values seen elsewhere, not found, an error).
      const r = rng(seed ^ 0x5bd1e995);
      const seen = [...new Set(h.flatMap((o) => (o.value !== undefined ? [o.value, `${o.value}${o.value}`] : [])))];
      for (let m = 0; m < mutate; m++) {
        const o = h[r.int(h.length)]!;
        if (o.result === 'unknown') continue;
        const x = r.int(10);
        o.result = x === 0 ? { error: 'not-a-number' } : x < 3 ? v(null) : x < 5 ? v(String(r.int(4))) : v(seen.length ? r.pick(seen) : 'zz');
      }
      const expected = bruteForce(h);
      const got = checkKvHistory(h);
      assert.equal(got.outcome, expected ? 'linearizable' : 'violation', JSON.stringify(h));
      if (expected) accepted++;
      else rejected++;
    }),
    { numRuns: 1500 },
  );
  // Both verdicts were exercised.
  assert.ok(rejected > 100 && accepted > 100, `accepted ${accepted}, rejected ${rejected}`);
});

test('a double-applied append is rejected: the key holds a token twice', () => {
  const h = [
    op('a', 'append', 'k', '|1', 0, 10, v('|1')),
    op('b', 'append', 'k', '|2', 20, 30, v('|1|2')),
    // a's retry of |1 applied a second time at the new primary
    op('c', 'get', 'k', undefined, 40, 50, v('|1|2|1')),
  ];
  const r = checkKvHistory(h);
  assert.equal(r.outcome, 'violation');
  const x = r.violations[0]!;
  assert.equal(x.key, 'k');
  assert.equal(x.prefix.length, 2);
  assert.equal(x.state, '|1|2');
  assert.equal(x.blocking, h[2]);
  assert.deepEqual(x.candidates.map((c) => c.op), [h[2]]);
  assert.deepEqual(x.candidates[0]!.expected, v('|1|2'));
  assert.match(x.explanation, /key "k" is not linearizable/);
  assert.match(x.explanation, /c get → "\|1\|2\|1"/);
});

test('a double-applied append is rejected even when no read follows: the acknowledged answers disagree', () => {
  // The retry of a's append is answered from the second application: "|1|2|1" can't be a's answer.
  const h = [op('a', 'append', 'k', '|1', 0, 100, v('|1|2|1')), op('b', 'append', 'k', '|2', 20, 30, v('|1|2'))];
  assert.equal(checkKvHistory(h).outcome, 'violation');
  // …but a single application at either point is fine.
  assert.equal(checkKvHistory([op('a', 'append', 'k', '|1', 0, 100, v('|2|1')), op('b', 'append', 'k', '|2', 20, 30, v('|2'))]).outcome, 'linearizable');
});

test('a double-applied incr is rejected (the counter skips a value)', () => {
  const h = [op('a', 'incr', 'n', undefined, 0, 10, v('1')), op('b', 'incr', 'n', undefined, 20, 30, v('3'))];
  const r = checkKvHistory(h);
  assert.equal(r.outcome, 'violation');
  assert.equal(r.violations[0]!.blocking, h[1]);
});

test('a stale read is rejected; the same read overlapping the write is fine', () => {
  const stale = [op('a', 'put', 'k', 'x', 0, 10, v('x')), op('a', 'put', 'k', 'y', 20, 30, v('y')), op('b', 'get', 'k', undefined, 40, 50, v('x'))];
  const r = checkKvHistory(stale);
  assert.equal(r.outcome, 'violation');
  assert.equal(r.violations[0]!.state, 'y');
  const overlapping = [op('a', 'put', 'k', 'x', 0, 10, v('x')), op('a', 'put', 'k', 'y', 20, 45, v('y')), op('b', 'get', 'k', undefined, 40, 50, v('x'))];
  assert.equal(checkKvHistory(overlapping).outcome, 'linearizable');
});

test('a lost write is rejected: an acknowledged append missing from a later read', () => {
  const h = [op('a', 'append', 'k', '|1', 0, 10, v('|1')), op('b', 'append', 'k', '|2', 12, 20, v('|1|2')), op('c', 'get', 'k', undefined, 30, 40, v('|1'))];
  assert.equal(checkKvHistory(h).outcome, 'violation');
  // A read of a missing key after an acknowledged put, too.
  assert.equal(checkKvHistory([op('a', 'put', 'k', 'z', 0, 10, v('z')), op('b', 'get', 'k', undefined, 30, 40, v(null))]).outcome, 'violation');
});

test('unknown outcomes may take effect at any point after their call, or never', () => {
  const maybe = op('a', 'append', 'k', '|1', 0, 0, 'unknown');
  // took effect late, after b
  assert.equal(checkKvHistory([maybe, op('b', 'append', 'k', '|2', 50, 60, v('|2')), op('c', 'get', 'k', undefined, 100, 110, v('|2|1'))]).outcome, 'linearizable');
  // never took effect
  assert.equal(checkKvHistory([maybe, op('b', 'append', 'k', '|2', 50, 60, v('|2')), op('c', 'get', 'k', undefined, 100, 110, v('|2'))]).outcome, 'linearizable');
  // but not before its call
  assert.equal(checkKvHistory([op('b', 'append', 'k', '|2', 0, 10, v('|1|2')), { ...maybe, invoke: 20 }]).outcome, 'violation');
  // and at most once
  assert.equal(checkKvHistory([maybe, op('c', 'get', 'k', undefined, 100, 110, v('|1|1'))]).outcome, 'violation');
});

test('operations that touch in time may be ordered either way', () => {
  const h = [op('a', 'put', 'k', 'x', 0, 10, v('x')), op('b', 'get', 'k', undefined, 10, 20, v(null))];
  assert.equal(checkKvHistory(h).outcome, 'linearizable');
});

test('the model follows the guest: incr from missing, 32-bit wrap, append to missing, not found, refusals', () => {
  assert.deepEqual(kvStep(null, 'incr', undefined), { next: '1', result: v('1') });
  assert.deepEqual(kvStep('2147483647', 'incr', undefined), { next: '-2147483648', result: v('-2147483648') });
  assert.deepEqual(kvStep('5', 'incr', '-7'), { next: '-2', result: v('-2') });
  assert.deepEqual(kvStep('4294967297', 'incr', '0'), { next: '1', result: v('1') }, 'digits accumulate with wrap-around');
  assert.deepEqual(kvStep('abc', 'incr', undefined), { next: 'abc', result: { error: 'not-a-number' } });
  assert.deepEqual(kvStep(null, 'incr', 'x'), { next: null, result: { error: 'not-a-number' } });
  assert.deepEqual(kvStep('', 'incr', undefined), { next: '', result: { error: 'not-a-number' } });
  assert.deepEqual(kvStep(null, 'append', 'a'), { next: 'a', result: v('a') });
  assert.deepEqual(kvStep(null, 'get', undefined), { next: null, result: v(null) });
  assert.deepEqual(kvStep('', 'get', undefined), { next: '', result: v('') }, 'an empty value is not a missing key');
  assert.deepEqual(kvStep('x'.repeat(180), 'append', 'y'.repeat(9)), { next: 'x'.repeat(180), result: { error: 'too-large' } });
  assert.deepEqual(kvStep('x'.repeat(94), 'append', 'ü'.repeat(47)).result, v('x'.repeat(94) + 'ü'.repeat(47)), '188 UTF-8 bytes fit');
  assert.deepEqual(kvStep(null, 'put', 'ü'.repeat(95)).result, { error: 'too-large' });
  // A recorded refusal whose kind the client could not tell matches any refusal.
  assert.ok(kvResultMatches({ error: 'too-large' }, { error: 'refused' }));
  assert.ok(!kvResultMatches({ error: 'too-large' }, v('x')));
});

test('a malformed history is refused with LIN_ERR_BAD_HISTORY', () => {
  for (const bad of [
    [op('a', 'get', 'k', undefined, 10, 5, v(null))],
    [{ clientId: 'a', op: 'get', key: 'k', invoke: 0, result: v(null) } as KvOperation],
    [{ clientId: 'a', op: 'delete', key: 'k', invoke: 0, response: 1, result: v(null) } as unknown as KvOperation],
    [op('a', 'get', 'k', undefined, Number.NaN, 5, v(null))],
  ]) assert.throws(() => checkKvHistory(bad), (e: { code?: string }) => e.code === 'LIN_ERR_BAD_HISTORY');
});

test('the step budget ends a search that would take too long with "unknown", not a hang or a verdict', () => {
  // 22 concurrent puts of distinct values and a read of a value nobody wrote: without the
  // budget the search would try on the order of 2^22 subsets.
  const h: KvOperation[] = Array.from({ length: 22 }, (_, i) => op(`c${i}`, 'put', 'k', `v${i}`, 0, 100, v(`v${i}`)));
  h.push(op('r', 'get', 'k', undefined, 0, 100, v('nobody')));
  const r = checkKvHistory(h, { maxStepsPerKey: 50_000 });
  assert.equal(r.outcome, 'unknown');
  assert.equal(r.undecided[0]!.key, 'k');
  assert.match(r.undecided[0]!.reason, /50000 steps/);
  assert.ok(r.steps <= 50_000);
});

test('100k operations over 200 keys from 8 clients check in seconds', (t) => {
  const h = linearizableHistory({ seed: 7, clients: 8, opsPerClient: 12_500, keys: Array.from({ length: 200 }, (_, i) => `k${i}`), unknownRate: 0.001 });
  const t0 = performance.now();
  const r = checkKvHistory(h);
  const ms = performance.now() - t0;
  t.diagnostic(`${r.operations} operations, ${r.keys} keys, ${r.steps} steps in ${ms.toFixed(0)} ms`);
  assert.equal(r.outcome, 'linearizable');
  assert.equal(r.operations, 100_000);
  assert.ok(ms < 30_000, `took ${ms} ms`);
});

test('20k operations on one key from 8 clients, and a double-applied append hidden among them', (t) => {
  const h = linearizableHistory({ seed: 11, clients: 8, opsPerClient: 2_500, keys: ['k'], ops: ['get', 'append', 'put', 'append'], unknownRate: 0.0005 });
  const t0 = performance.now();
  const r = checkKvHistory(h);
  t.diagnostic(`${r.operations} operations, ${r.steps} steps in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(r.outcome, 'linearizable', r.violations[0]?.explanation);
  // Re-apply one acknowledged append right after its first application: every result that
  // observed the key from then on until the next put would show its token twice.
  const sorted = [...h].sort((a, b) => a.invoke - b.invoke);
  const i = sorted.findIndex((o, j) => j > 10_000 && o.op === 'append' && o.result !== 'unknown' && 'value' in o.result && o.result.value !== null);
  const victim = sorted[i]!;
  const token = victim.value!;
  let changed = 0;
  for (const o of sorted.slice(i + 1)) {
    if (o.op === 'put') break;
    if (o.result === 'unknown' || !('value' in o.result) || o.result.value === null || !o.result.value.includes(token)) continue;
    o.result = v(o.result.value.replace(token, token + token));
    changed++;
  }
  assert.ok(changed > 0, 'some later answer observed the append');
  const bad = checkKvHistory(h);
  assert.equal(bad.outcome, 'violation');
  t.diagnostic(bad.violations[0]!.explanation);
});
