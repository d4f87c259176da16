import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, type HistoryOp } from '../src/history.ts';

const op = (clientId: string, o: HistoryOp['op'], key: string, invoke: number, response: number | undefined, value: string | null | 'unknown', arg?: string): HistoryOp => ({
  clientId, op: o, key, invoke, ...(response !== undefined ? { response } : {}), ...(arg !== undefined ? { value: arg } : {}),
  result: value === 'unknown' ? 'unknown' : { value },
});

test('a drill history with concurrent incrs, puts and an unknown outcome is linearizable', () => {
  const h = [
    op('c0', 'incr', 'counter', 0, 10, '1'),
    op('c1', 'incr', 'counter', 1, 12, '2'),
    op('c2', 'put', 'k0', 2, 5, 'c2-1', 'c2-1'),
    op('c3', 'incr', 'counter', 3, undefined, 'unknown'),
    op('c0', 'get', 'k0', 11, 13, 'c2-1'),
    op('c1', 'get', 'counter', 20, 21, '3'),
  ];
  const r = checkHistory(h);
  assert.equal(r.ok, true, r.detail);
  assert.match(r.detail, /6 operations on 2 keys \(1 with unknown outcome\)/);
});

test('an incr answered twice with the same value (applied once, acknowledged twice) is caught', () => {
  const r = checkHistory([op('c0', 'incr', 'counter', 0, 10, '1'), op('c1', 'incr', 'counter', 11, 20, '1')]);
  assert.equal(r.ok, false);
  assert.match(r.detail, /NOT linearizable/);
});

test('a lost acknowledged write (a later read misses it) is caught', () => {
  const r = checkHistory([op('c0', 'put', 'k1', 0, 5, 'x', 'x'), op('c1', 'get', 'k1', 6, 8, null)]);
  assert.equal(r.ok, false);
});
