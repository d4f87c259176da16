import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '@mr/sim';
import { PORT } from '@mr/vmft-cpu';
import { GuestHarness, getGuest, encodeTimerRequest, decodeTimerResponse, timerChecksum, TIMER_DEFAULT_PERIOD_MS } from '../src/index.ts';

function run(seed: number, ticks: number): GuestHarness {
  const rng = createRng(seed);
  let clock = 1_700_000_000_000 + seed;
  const h = new GuestHarness(getGuest('timer'), { clock: () => (clock += rng.range(5, 15)), random: () => rng.int(2 ** 32) });
  assert.equal(h.settle(), 'wfi');
  assert.equal(h.cpu.timerPeriodMs, TIMER_DEFAULT_PERIOD_MS);
  for (let i = 0; i < ticks; i++) assert.equal(h.tick(), 'wfi');
  return h;
}

test('timer: each tick reads clock and random; a query returns their checksum and the last sample', () => {
  const h = run(1, 25);
  const samples: { clockMs: number; random: number }[] = [];
  for (let i = 0; i < h.reads.length; i += 2) {
    assert.equal(h.reads[i]!.port, PORT.CLOCK);
    assert.equal(h.reads[i + 1]!.port, PORT.RANDOM);
    samples.push({ clockMs: h.reads[i]!.value, random: h.reads[i + 1]!.value });
  }
  assert.equal(samples.length, 25);
  const res = decodeTimerResponse(h.send(encodeTimerRequest({ tag: 5, op: 'query' }))[0]!);
  assert.deepEqual(res, {
    tag: 5, ok: true, ticks: 25, checksum: timerChecksum(samples),
    lastClockMs: samples.at(-1)!.clockMs, lastRandom: samples.at(-1)!.random, periodMs: TIMER_DEFAULT_PERIOD_MS,
  });
});

test('timer: replaying the recorded clock and random values reaches the same state; other values do not', () => {
  const a = run(7, 40);
  const values = a.reads.map((r) => r.value);
  let i = 0;
  const b = new GuestHarness(getGuest('timer'), { clock: () => values[i++]!, random: () => values[i++]! });
  b.settle();
  for (let t = 0; t < 40; t++) b.tick();
  assert.equal(b.cpu.icount, a.cpu.icount);
  assert.equal(b.cpu.stateHash(), a.cpu.stateHash());
  const c = run(8, 40);
  assert.equal(c.cpu.icount, a.cpu.icount, 'same instruction path');
  assert.notEqual(c.cpu.stateHash(), a.cpu.stateHash(), 'different inputs, different state');
});

test('timer: a set-period packet reprograms the timer; garbage is refused', () => {
  const h = run(3, 1);
  const res = decodeTimerResponse(h.send(encodeTimerRequest({ tag: 9, op: 'set-period', periodMs: 250 }))[0]!);
  assert.equal(res.periodMs, 250);
  assert.equal(h.cpu.timerPeriodMs, 250);
  assert.equal(decodeTimerResponse(h.send(new Uint8Array([1, 0, 0, 0, 77]))[0]!).ok, false);
  assert.equal(decodeTimerResponse(h.send(encodeTimerRequest({ tag: 10, op: 'query' }))[0]!).ticks, 1);
});
