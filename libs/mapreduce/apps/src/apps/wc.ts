import type { MrApp } from '../types.ts';
import { decodeSegments, tallyWords } from '../words.ts';

function sum(values: string[]): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) n += Number(values[i]);
  return n;
}

/**
 * Word count with the lab's semantics (mrapps/wc.go): a word is a maximal run
 * of Unicode letters, no case folding; output `word count`. The map counts
 * in-mapper and emits one (word, count) pair per distinct word; the reduce sums,
 * which gives exactly the lab's len(values) over ("1", "1", ...).
 */
export const wc: MrApp = {
  name: 'wc',
  description: 'word count: words are maximal runs of Unicode letters; `word count`',
  input: 'lines',
  map(_filename, contents, emit) {
    tallyWords(decodeSegments(contents), (w, n) => emit(w, String(n)));
  },
  reduce(_key, values) {
    return String(sum(values));
  },
  combine(_key, values) {
    return values.length === 1 ? values : [String(sum(values))];
  },
};
