/**
 * Go's string order (bytewise over UTF-8), which is Unicode code point
 * order. JS's default `<` compares UTF-16 code units, which differs only
 * when a surrogate (an astral character, U+10000 and up) meets a BMP
 * character in U+E000..U+FFFF: UTF-16 puts the astral one first.
 */

const SURROGATE = /[\ud800-\udfff]/;

/** Compares two strings in UTF-8 byte (code point) order. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (D800..DFFF) stand for code points above FFFF.
        const xs = x <= 0xdfff;
        const ys = y <= 0xdfff;
        if (xs !== ys) return xs ? 1 : -1;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/**
 * Sorts strings in place in UTF-8 byte order. Fast path: with no surrogate
 * anywhere, UTF-16 order is the same and the engine's default sort is used.
 */
export function sortBytes(keys: string[]): string[] {
  for (let i = 0; i < keys.length; i++) {
    if (SURROGATE.test(keys[i]!)) return keys.sort(compareBytes);
  }
  return keys.sort();
}
