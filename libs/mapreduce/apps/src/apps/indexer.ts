import type { MrApp } from '../types.ts';
import { sortBytes } from '../order.ts';
import { decodeSegments, words } from '../words.ts';

/**
 * Inverted index with the lab's semantics (mrapps/indexer.go): for each word,
 * `word n doc1,doc2,...` where the documents (input names as given) are
 * sorted and each counted once.
 */
export const indexer: MrApp = {
  name: 'indexer',
  description: 'inverted index: `word n file1,file2,...` (files sorted, each once)',
  map(document, contents, emit) {
    const seen = new Set<string>();
    for (const text of decodeSegments(contents)) for (const w of words(text)) seen.add(w);
    for (const w of seen) emit(w, document);
  },
  reduce(_key, values) {
    const docs = sortBytes(values.slice());
    return `${docs.length} ${docs.join(',')}`;
  },
};
