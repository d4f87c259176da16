import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@mr/errors';
import { MAX_USER_COUNTERS, UserCounters } from '../src/index.ts';

test('user counters: names, increments and the per-task name limit are checked (MR_BAD_COUNTER, not retryable)', () => {
  const u = new UserCounters();
  u.count('lines');
  u.count('lines', 4);
  u.count('neg.ok_1-x', -2);
  const bad = (f: () => void): void => assert.throws(f, (e: unknown) => hasCode(e, 'MR_BAD_COUNTER') && (e as { retryable?: boolean }).retryable === false);
  bad(() => u.count(''));
  bad(() => u.count('1abc'));
  bad(() => u.count('a b'));
  bad(() => u.count('x'.repeat(65)));
  bad(() => u.count('lines', 1.5));
  bad(() => u.count('lines', Number.NaN));
  u.count('big', Number.MAX_SAFE_INTEGER);
  bad(() => u.count('big', 1));
  const out: Record<string, number> = {};
  u.addTo(out);
  assert.deepEqual(out, { 'user.lines': 5, 'user.neg.ok_1-x': -2, 'user.big': Number.MAX_SAFE_INTEGER });
  const v = new UserCounters();
  for (let i = 0; i < MAX_USER_COUNTERS; i++) v.count(`c${i}`);
  bad(() => v.count('one-more'));
  v.count('c0');
});
