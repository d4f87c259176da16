import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ihash, partitionOf } from '../src/index.ts';

/** FNV-1a 32-bit, byte at a time, over Buffer.from(key): the obvious reference. */
function referenceIhash(key: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(key, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

test('ihash matches the lab on its documented vectors', () => {
  assert.equal(ihash('a'), 1678518572);
  assert.equal(ihash('the'), 873378332);
  assert.equal(ihash(''), 0x811c9dc5 & 0x7fffffff);
  assert.equal(ihash('foobar'), 0xbf9cf968 & 0x7fffffff); // published FNV-1a 32 test vector
});

test('rtiming keys land in the lab buckets with 10 reduces', () => {
  const buckets = Object.fromEntries('abcdefghij'.split('').map((k) => [k, partitionOf(k, 10)]));
  assert.deepEqual(buckets, { a: 2, b: 9, c: 0, d: 5, e: 6, f: 3, g: 4, h: 3, i: 4, j: 1 });
});

test('ihash hashes the UTF-8 bytes, astral characters and lone surrogates included', () => {
  assert.equal(ihash('héllo wörld 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 漢字'), referenceIhash('héllo wörld 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 漢字'));
  assert.equal(ihash('a\ud800b'), referenceIhash('a\ud800b'), 'lone surrogate hashes as U+FFFD');
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => ihash(s) === referenceIhash(s)), { numRuns: 1000 });
});

test('partitionOf stays within 0..reduces-1', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 1, max: 1000 }), (s, n) => {
    const p = partitionOf(s, n);
    return Number.isInteger(p) && p >= 0 && p < n;
  }));
});
