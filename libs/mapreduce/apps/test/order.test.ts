import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes, sortBytes } from '../src/index.ts';

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

// Strings that mix ASCII, BMP high characters (U+E000..U+FFFF) and astral ones:
// exactly where UTF-16 order and UTF-8 byte order disagree.
const tricky = fc.string({ unit: fc.constantFrom('a', 'b', 'Z', '\u00e9', '\u4e2d', '\ue000', '\uffee', '\uff5e', '\u{1f600}', '\u{10000}', '\u{1d518}'), maxLength: 6 });
const anyString = fc.oneof(tricky, fc.string({ unit: 'grapheme', maxLength: 8 }));

test('an astral character sorts after U+FFxx, as in Go (not as in JS)', () => {
  assert.ok('\u{1f600}' < '\uffee', 'JS default order puts the astral one first');
  assert.ok(compareBytes('\u{1f600}', '\uffee') > 0);
  assert.deepEqual(sortBytes(['\u{1f600}', '\uffee', 'b', 'a']), ['a', 'b', '\uffee', '\u{1f600}']);
});

test('compareBytes agrees with a bytewise comparison of the UTF-8 encodings', () => {
  fc.assert(fc.property(anyString, anyString, (a, b) => sign(compareBytes(a, b)) === sign(byBytes(a, b))), { numRuns: 5000 });
});

test('sortBytes sorts like sorting the UTF-8 encodings, with and without astral keys', () => {
  fc.assert(fc.property(fc.array(anyString, { maxLength: 40 }), (keys) => {
    const expected = keys.slice().sort(byBytes);
    assert.deepEqual(sortBytes(keys.slice()), expected);
  }), { numRuns: 1000 });
  fc.assert(fc.property(fc.array(fc.string({ maxLength: 6 }), { maxLength: 40 }), (keys) => {
    assert.deepEqual(sortBytes(keys.slice()), keys.slice().sort(byBytes));
  }), { numRuns: 500 });
});
