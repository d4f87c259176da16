import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  GuestHarness, getGuest, encodeBankRequest, decodeBankResponse, bankDiskBlock, BANK_ACCOUNTS, BANK_INITIAL, BANK_MAGIC,
  type BankRequest, type BankResponse,
} from '../src/index.ts';

let tag = 0;
type Req = { op: 'query' } | { op: 'transfer'; from: number; to: number; amount: number; xid?: number };
function call(h: GuestHarness, r: Req): BankResponse {
  const t = ++tag;
  const out = h.send(encodeBankRequest({ ...r, tag: t } as BankRequest));
  assert.equal(out.length, 1);
  const res = decodeBankResponse(out[0]!);
  assert.equal(res.tag, t);
  return res;
}

test('bank: a fresh disk boots with the initial balances, written back to block 0', () => {
  const h = new GuestHarness(getGuest('bank'));
  assert.equal(h.settle(), 'wfi');
  assert.equal(h.diskWrites, 1);
  const block = h.blocks.get(0)!;
  assert.equal(new DataView(block.buffer, block.byteOffset).getUint32(0, true), BANK_MAGIC);
  const q = call(h, { op: 'query' });
  assert.equal(q.status, 'ok');
  assert.deepEqual(q.balances, Array(BANK_ACCOUNTS).fill(BANK_INITIAL));
  assert.equal(q.total, BANK_ACCOUNTS * BANK_INITIAL);
});

test('bank: balances are loaded from disk block 0 (a disk read completed by DMA + interrupt)', () => {
  const balances = Array.from({ length: BANK_ACCOUNTS }, (_, i) => i * 10);
  const h = new GuestHarness(getGuest('bank'), { disk: new Map([[0, bankDiskBlock(balances)]]) });
  assert.equal(h.settle(), 'wfi');
  assert.equal(h.diskWrites, 0, 'a loaded disk is not rewritten at boot');
  assert.deepEqual(call(h, { op: 'query' }).balances, balances);
  assert.equal(call(h, { op: 'transfer', from: 3, to: 0, amount: 30 }).status, 'ok');
  assert.equal(call(h, { op: 'transfer', from: 3, to: 0, amount: 1 }).status, 'insufficient-funds');
  assert.equal(call(h, { op: 'transfer', from: 3, to: 99, amount: 0 }).status, 'no-such-account');
  assert.equal(call(h, { op: 'transfer', from: 2, to: 1, amount: -5 }).status, 'bad-request');
  const q = call(h, { op: 'query' });
  assert.equal(q.balances![0], 30);
  assert.equal(q.balances![3], 0);
  assert.equal(h.diskWrites, 1);
  // A second bank booted from the written disk sees the transfer.
  const h2 = new GuestHarness(getGuest('bank'), { disk: h.blocks });
  h2.settle();
  assert.deepEqual(call(h2, { op: 'query' }).balances, q.balances);
});

test('bank: random transfers with retries conserve the total and match a model', () => {
  const transfer = fc.record({
    from: fc.integer({ min: 0, max: BANK_ACCOUNTS }),
    to: fc.integer({ min: 0, max: BANK_ACCOUNTS - 1 }),
    amount: fc.integer({ min: 0, max: 1500 }),
    retry: fc.boolean(),
  });
  fc.assert(fc.property(fc.array(transfer, { maxLength: 50 }), (ts) => {
    const h = new GuestHarness(getGuest('bank'));
    h.settle();
    const model = Array(BANK_ACCOUNTS).fill(BANK_INITIAL) as number[];
    let xid = 0;
    const seen = new Map<number, string>();
    type T = { from: number; to: number; amount: number; xid: number };
    let last: T | null = null;
    for (const t of ts) {
      const req: T = t.retry && last ? last : { from: t.from, to: t.to, amount: t.amount, xid: ++xid };
      const res = call(h, { op: 'transfer', ...req });
      if (seen.has(req.xid)) assert.equal(res.status, seen.get(req.xid));
      else {
        const want = req.from >= BANK_ACCOUNTS ? 'no-such-account' : model[req.from]! < req.amount ? 'insufficient-funds' : 'ok';
        assert.equal(res.status, want);
        if (want === 'ok') { model[req.from]! -= req.amount; model[req.to]! += req.amount; }
        seen.set(req.xid, res.status);
      }
      last = req;
    }
    const q = call(h, { op: 'query' });
    assert.equal(q.total, BANK_ACCOUNTS * BANK_INITIAL);
    assert.deepEqual(q.balances, model);
  }), { numRuns: 50 });
});
