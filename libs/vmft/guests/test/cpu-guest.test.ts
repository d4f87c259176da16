import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cpu } from '@mr/vmft-cpu';
import { getGuest, guestSource, GUEST_NAMES } from '../src/index.ts';

function sieve(n: number): { count: number; sum: number } {
  const f = new Uint8Array(n);
  let count = 0, sum = 0;
  for (let i = 2; i < n; i++) {
    if (f[i]) continue;
    count++;
    sum = (sum + i) >>> 0;
    for (let j = i * i; j < n; j += i) f[j] = 1;
  }
  return { count, sum };
}

test('cpu guest: computes the primes below 65536 each round and halts after `rounds`', () => {
  const p = getGuest('cpu');
  const cpu = new Cpu(p);
  const rounds = new Uint8Array(4);
  new DataView(rounds.buffer).setUint32(0, 3, true);
  cpu.dmaWrite(p.symbols['rounds']!, rounds);
  assert.equal(cpu.run(1e9), 'halt');
  const want = sieve(65536);
  assert.equal(cpu.readWord(p.symbols['primes']!), want.count);
  assert.equal(cpu.readWord(p.symbols['checksum']!) >>> 0, want.sum);
  assert.equal(cpu.readWord(p.symbols['rounds_done']!), 3);
});

test('every guest assembles and unknown guests are refused', () => {
  for (const n of GUEST_NAMES) assert.ok(getGuest(n).code.length > 0 && guestSource(n).length > 0);
  assert.throws(() => getGuest('nope'), { code: 'FT_ERR_UNKNOWN_GUEST' });
});
