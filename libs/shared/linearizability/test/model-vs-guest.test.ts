import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuestHarness, getGuest, encodeKvRequest, decodeKvResponse } from '@mr/vmft-guests';
import { kvStep, type KvModelOp, type KvResult, type KvState } from '../src/index.ts';

// The model is only as good as its agreement with the real guest program: run random operation
// sequences through the kv guest on the CPU and through the model side by side.
test('the kv model answers exactly as the kv guest does, on random operation sequences', () => {
  const key = fc.constantFrom('a', 'b', 'ü');
  const value = fc.oneof(
    fc.constantFrom('', '0', '-', '-0', '7', '-12', '2147483647', '2147483648', '-2147483648', '4294967296', '99999999999', 'x', '1x', ' 1'),
    fc.string({ maxLength: 70 }),
    fc.stringMatching(/^-?[0-9]{1,12}$/),
  );
  const opArb = fc.record({ op: fc.constantFrom<KvModelOp>('get', 'put', 'append', 'incr'), key, value: fc.option(value, { nil: undefined }) });
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
      const h = new GuestHarness(getGuest('kv'));
      assert.equal(h.settle(), 'wfi');
      // One client session (the guest's first: id 1 << 8 | 0); every request acknowledges the earlier answers.
      assert.deepEqual(decodeKvResponse(h.send(encodeKvRequest({ tag: 0, op: 'open-session' }))[0]!).value, '256');
      const model = new Map<string, KvState>();
      ops.forEach((o, i) => {
        const v = o.op === 'put' || o.op === 'append' ? (o.value ?? '') : o.op === 'incr' ? o.value : undefined;
        if (v !== undefined && new TextEncoder().encode(v).length > 188) return;
        const out = h.send(encodeKvRequest({ tag: i + 1, op: o.op, session: 256, seq: i + 1, ackBelow: i + 1, key: o.key, ...(v !== undefined ? { value: v } : {}) }));
        const res = decodeKvResponse(out[0]!);
        const got: KvResult = res.status === 'ok' ? { value: res.value } : res.status === 'not-found' ? { value: null } : { error: res.status as 'too-large' };
        const s = kvStep(model.get(o.key) ?? null, o.op, v);
        model.set(o.key, s.next);
        assert.deepEqual(got, s.result, `op ${i}: ${o.op} ${o.key} ${JSON.stringify(v)}`);
      });
    }),
    { numRuns: 300 },
  );
});
