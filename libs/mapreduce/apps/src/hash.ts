/**
 * The lab's partitioner: FNV-1a 32-bit over the UTF-8 bytes of the key,
 * masked to 31 bits (mr/worker.go ihash), then modulo the number of reduces.
 */

const OFFSET_BASIS = 0x811c9dc5;
const PRIME = 0x01000193;

/** FNV-1a 32-bit of the key's UTF-8 bytes `& 0x7fffffff` (ihash("a") = 1678518572). */
export function ihash(key: string): number {
  let h = OFFSET_BASIS;
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), PRIME);
        continue;
      }
      // A lone surrogate is written as U+FFFD (what Buffer.from does too).
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), PRIME);
  }
  return (h >>> 0) & 0x7fffffff;
}

/** The reduce partition of a key: ihash(key) % reduces, as in the lab. */
export function partitionOf(key: string, reduces: number): number {
  return ihash(key) % reduces;
}
