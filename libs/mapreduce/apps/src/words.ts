/**
 * Go's strings.FieldsFunc(contents, func(r) bool { return !unicode.IsLetter(r) }):
 * words are maximal runs of Unicode letters (Lu, Ll, Lt, Lm, Lo = \p{L}).
 * Invalid UTF-8 decodes to U+FFFD, which is not a letter, so it separates.
 */

/** Decodes bytes as UTF-8, invalid sequences becoming U+FFFD (like Go's range loop: separators). */
export function decodeUtf8(contents: Buffer): string {
  return contents.toString('utf8');
}

/** Bytes decoded at a time by the word scanners (strings stay well below V8's ~512 MB limit). */
export const SEGMENT_BYTES = 32 << 20;

const isAsciiNonLetter = (b: number): boolean => b < 0x80 && !((b >= 65 && b <= 90) || (b >= 97 && b <= 122));

/**
 * Decodes `buf` as UTF-8 in pieces of about `size` bytes, each cut just after
 * an ASCII byte that is not a letter (so no word and no UTF-8 sequence is
 * cut). A piece with no such byte runs on until one.
 */
export function* decodeSegments(buf: Buffer, size = SEGMENT_BYTES, cutAfter: (byte: number) => boolean = isAsciiNonLetter): Generator<string> {
  let start = 0;
  while (start < buf.length) {
    let end = start + size;
    if (end >= buf.length) end = buf.length;
    else {
      let j = end - 1;
      while (j >= start && !cutAfter(buf[j]!)) j--;
      if (j >= start) end = j + 1;
      else {
        j = end;
        while (j < buf.length && !cutAfter(buf[j]!)) j++;
        end = j >= buf.length ? buf.length : j + 1;
      }
    }
    yield buf.toString('utf8', start, end);
    start = end;
  }
}

const WORD = /\p{L}+/gu;
const LETTER = /^\p{L}$/u;

/**
 * isLetter per BMP code unit, filled lazily: 1 letter, 2 not a letter,
 * 0 not yet known (then asked of the regex engine once). ASCII is filled
 * up front; surrogates are 2 here and handled as pairs by the scanners.
 */
const bmp = new Uint8Array(65536);
for (let c = 0; c < 128; c++) bmp[c] = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? 1 : 2;
for (let c = 0xd800; c <= 0xdfff; c++) bmp[c] = 2;

function isBmpLetter(c: number): boolean {
  let v = bmp[c]!;
  if (v === 0) {
    v = LETTER.test(String.fromCharCode(c)) ? 1 : 2;
    bmp[c] = v;
  }
  return v === 1;
}

const astral = new Map<number, boolean>();
function isAstralLetter(cp: number): boolean {
  let r = astral.get(cp);
  if (r === undefined) {
    r = LETTER.test(String.fromCodePoint(cp));
    astral.set(cp, r);
  }
  return r;
}

/** Length (1 or 2 code units) of the letter starting at i, or 0 if none. */
function letterAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (isBmpLetter(c)) return 1;
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff && isAstralLetter(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00))) return 2;
  }
  return 0;
}

/** All words of `text`, in order. */
export function words(text: string): string[] {
  return text.match(WORD) ?? [];
}

/**
 * Counts the words of `text` in one pass. An open-addressing table keyed by
 * a hash computed during the scan means a repeated word costs no string
 * allocation: only the first occurrence of each distinct word is sliced.
 */
export function countWords(text: string | Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  tallyWords(text, (w, n) => out.set(w, n));
  return out;
}

/**
 * Like countWords, but calls `fn(word, count)` per distinct word (table
 * order). Takes one string or pieces of text that do not cut words.
 */
export function tallyWords(input: string | Iterable<string>, fn: (word: string, count: number) => void): void {
  let cap = 1024;
  let mask = cap - 1;
  let keys: (string | undefined)[] = new Array(cap);
  let hashes = new Int32Array(cap);
  let counts = new Int32Array(cap);
  let size = 0;

  const grow = (): void => {
    const oldKeys = keys;
    const oldHashes = hashes;
    const oldCounts = counts;
    cap *= 2;
    mask = cap - 1;
    keys = new Array(cap);
    hashes = new Int32Array(cap);
    counts = new Int32Array(cap);
    for (let j = 0; j < oldKeys.length; j++) {
      const k = oldKeys[j];
      if (k === undefined) continue;
      let slot = oldHashes[j]! & mask;
      while (keys[slot] !== undefined) slot = (slot + 1) & mask;
      keys[slot] = k;
      hashes[slot] = oldHashes[j]!;
      counts[slot] = oldCounts[j]!;
    }
  };

  for (const text of typeof input === 'string' ? [input] : input) {
    const n = text.length;
    let i = 0;
    while (i < n) {
      let c = text.charCodeAt(i);
      if (bmp[c] !== 1 && !isBmpLetter(c)) {
        if (!(c >= 0xd800 && c <= 0xdbff && letterAt(text, i) === 2)) {
          i++;
          continue;
        }
      }
      const st = i;
      let h = 0x811c9dc5;
      while (i < n) {
        c = text.charCodeAt(i);
        if (bmp[c] === 1 || (bmp[c] === 0 && isBmpLetter(c))) {
          h = Math.imul(h ^ c, 0x01000193);
          i++;
        } else if (c >= 0xd800 && c <= 0xdbff && letterAt(text, i) === 2) {
          h = Math.imul(Math.imul(h ^ c, 0x01000193) ^ text.charCodeAt(i + 1), 0x01000193);
          i += 2;
        } else break;
      }
      const len = i - st;
      let slot = h & mask;
      let found = false;
      for (;;) {
        const k = keys[slot];
        if (k === undefined) break;
        if (hashes[slot] === h && k.length === len) {
          let j = 0;
          while (j < len && k.charCodeAt(j) === text.charCodeAt(st + j)) j++;
          if (j === len) {
            counts[slot]!++;
            found = true;
            break;
          }
        }
        slot = (slot + 1) & mask;
      }
      if (found) continue;
      keys[slot] = text.slice(st, i);
      hashes[slot] = h;
      counts[slot] = 1;
      if (++size * 2 > cap) grow();
    }
  }

  for (let j = 0; j < cap; j++) {
    const k = keys[j];
    if (k !== undefined) fn(k, counts[j]!);
  }
}
