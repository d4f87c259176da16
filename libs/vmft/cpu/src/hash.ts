/**
 * The machine-state hash: two 32-bit lanes per memory page, cached and
 * refreshed only for pages written since, folded with the state words and the
 * program id into 16 hex digits.
 */
import { PAGE_SHIFT } from './isa.ts';

export const HASH_P1 = 0x01000193;
const HASH_P2 = 0x9e3779b1 | 0;
const SEED1 = 0x811c9dc5, SEED2 = 0x2545f491;

/** Per-page hash cache. `dirty` bit 0 marks a page whose cached hash is stale. */
export interface PageHashes {
  readonly mem32: Int32Array;
  readonly dirty: Uint8Array;
  readonly h1: Uint32Array;
  readonly h2: Uint32Array;
}

/** Rehashes the stale pages and clears their stale bit. */
export function refreshPageHashes(p: PageHashes): void {
  const { mem32: M, dirty: D } = p;
  for (let page = 0; page < D.length; page++) {
    if ((D[page]! & 1) === 0) continue;
    let h1 = SEED1 ^ page, h2 = SEED2 ^ page;
    const end = (page + 1) << (PAGE_SHIFT - 2);
    for (let i = page << (PAGE_SHIFT - 2); i < end; i++) {
      const v = M[i]!;
      h1 = Math.imul(h1 ^ v, HASH_P1);
      h2 = Math.imul((h2 + v) | 0, HASH_P2) ^ (h2 >>> 15);
    }
    p.h1[page] = h1;
    p.h2[page] = h2;
    D[page] = D[page]! & ~1;
  }
}

/** 16 hex digits over the state words, every page's cached hashes and the program id (refresh first). */
export function foldStateHash(words: Int32Array, p: PageHashes, programId: string): string {
  let h1 = SEED1, h2 = SEED2;
  const mix = (v: number): void => {
    h1 = Math.imul(h1 ^ v, HASH_P1);
    h2 = Math.imul((h2 + v) | 0, HASH_P2) ^ (h2 >>> 15);
  };
  for (let i = 0; i < words.length; i++) mix(words[i]!);
  for (let page = 0; page < p.h1.length; page++) {
    mix(p.h1[page]!);
    mix(p.h2[page]!);
  }
  for (let i = 0; i < programId.length; i++) mix(programId.charCodeAt(i));
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
