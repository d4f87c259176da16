/**
 * The MapReduce drills' input: text files drawn from a seeded vocabulary
 * (ASCII and non-ASCII letters, digits and punctuation as separators), so a
 * drill's inputs are a function of its seed too.
 */
import { createDrillRng } from './rng.ts';

const SYLLABLES = ['ka', 'lo', 'mi', 'nu', 'ré', 'sa', 'tö', 'vi', 'xe', 'zu', 'ba', 'de', 'fi', 'go', 'ñа', 'Æ', 'ch', 'qu'];
const SEPARATORS = [' ', ' ', ' ', ' ', ', ', '. ', '\n', ' -- ', '1', '42 ', "'"];

/** The text of input file `index` of a drill with `seed`: `words` words. */
export function corpusFile(seed: number, index: number, words: number): string {
  const rng = createDrillRng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  // A Zipf-ish vocabulary: a few common words, a long tail.
  const vocab: string[] = [];
  const vrng = createDrillRng(seed >>> 0);
  for (let i = 0; i < 3000; i++) {
    let w = '';
    const n = vrng.range(1, 4);
    for (let j = 0; j < n; j++) w += vrng.pick(SYLLABLES);
    vocab.push(i % 7 === 0 ? w[0]!.toUpperCase() + w.slice(1) : w);
  }
  const parts: string[] = [];
  for (let i = 0; i < words; i++) {
    const r = rng.range(0, 999);
    const w = r < 500 ? vocab[r % 30]! : vocab[rng.range(0, vocab.length - 1)]!;
    parts.push(w, rng.pick(SEPARATORS));
  }
  return parts.join('');
}
