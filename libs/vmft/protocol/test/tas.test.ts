import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideFence, decideTas, decideWrite, MAX_EPOCH, UNCLAIMED, type TasFlag } from '../src/index.ts';

const held = (epoch: number, owner: string): TasFlag => ({ epoch, owner });

test('decideTas: the one test-and-set rule, as a table', () => {
  const rows: [TasFlag, string, number, string][] = [
    // flag, claimant, epoch -> outcome (and the flag after it)
    [UNCLAIMED, 'a', 1, 'won 1/a changed'],
    [UNCLAIMED, 'a', 2, 'refused epoch-gap 0/'],
    [UNCLAIMED, 'a', 0, 'refused epoch-range 0/'],
    [held(3, 'a'), 'a', 3, 'won 3/a'], // the owner's retry: idempotent
    [held(3, 'a'), 'b', 3, 'lost 3/a'], // the current epoch is someone else's
    [held(3, 'a'), 'b', 4, 'won 4/b changed'], // exactly the next epoch
    [held(3, 'a'), 'a', 4, 'won 4/a changed'],
    [held(3, 'a'), 'b', 2, 'lost 3/a'], // an older epoch is data, not an error
    [held(3, 'a'), 'a', 1, 'lost 3/a'],
    [held(3, 'a'), 'b', 5, 'refused epoch-gap 3/a'], // skipping epochs
    [held(3, 'a'), 'b', 4294967295, 'refused epoch-range 3/a'], // would have made epoch+1 overflow u32
    [held(3, 'a'), 'b', MAX_EPOCH + 1, 'refused epoch-range 3/a'],
    [held(3, 'a'), 'b', 3.5, 'refused epoch-range 3/a'],
    [held(3, 'a'), 'b', Number.NaN, 'refused epoch-range 3/a'],
    [held(MAX_EPOCH - 1, 'a'), 'b', MAX_EPOCH, `won ${MAX_EPOCH}/b changed`],
    [held(MAX_EPOCH, 'a'), 'b', MAX_EPOCH, `lost ${MAX_EPOCH}/a`],
  ];
  for (const [flag, node, epoch, want] of rows) {
    const d = decideTas(flag, node, epoch);
    const got = `${d.outcome}${d.outcome === 'refused' ? ` ${d.why}` : ''} ${d.flag.epoch}/${d.flag.owner}${d.outcome === 'won' && d.changed ? ' changed' : ''}`;
    assert.equal(got, want, `flag ${flag.epoch}/${flag.owner}, ${node} claims ${epoch}`);
  }
});

test('decideWrite: only the owner of the current epoch writes', () => {
  assert.equal(decideWrite(held(3, 'a'), 'a', 3), 'ok');
  assert.equal(decideWrite(held(3, 'a'), 'a', 2), 'stale');
  assert.equal(decideWrite(held(3, 'a'), 'b', 3), 'not-owner');
  assert.equal(decideWrite(held(3, 'a'), 'a', 4), 'not-owner');
  assert.equal(decideWrite(UNCLAIMED, 'a', 1), 'not-owner');
});

test('decideFence: an epoch arbitrated elsewhere only moves the disk fence forward', () => {
  const rows: [TasFlag, string, number, string][] = [
    [UNCLAIMED, 'a', 1, 'won 1/a changed'],
    [UNCLAIMED, 'a', 3, 'won 3/a changed'], // the epoch came from etcd: it may skip
    [held(3, 'a'), 'b', 5, 'won 5/b changed'], // a winner of 4 crashed before fencing
    [held(3, 'a'), 'a', 3, 'won 3/a'], // the owner's retry
    [held(3, 'a'), 'b', 3, 'lost 3/a'],
    [held(3, 'a'), 'b', 2, 'lost 3/a'], // never back
    [held(3, 'a'), 'b', 0, 'refused epoch-range 3/a'],
    [held(3, 'a'), 'b', MAX_EPOCH + 1, 'refused epoch-range 3/a'],
  ];
  for (const [flag, node, epoch, want] of rows) {
    const d = decideFence(flag, node, epoch);
    const got = `${d.outcome}${d.outcome === 'refused' ? ` ${d.why}` : ''} ${d.flag.epoch}/${d.flag.owner}${d.outcome === 'won' && d.changed ? ' changed' : ''}`;
    assert.equal(got, want, `flag ${flag.epoch}/${flag.owner}, ${node} fences ${epoch}`);
  }
});
