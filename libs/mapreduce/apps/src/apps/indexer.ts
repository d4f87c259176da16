import type { MrApp } from '../types.ts';
import { sortBytes } from '../order.ts';
import { decodeUtf8, words } from '../words.ts';

/**
 * Inverted index with the lab's semantics (mrapps/indexer.go): for each word,
 * `word n doc1,doc2,...` where the documents (input names as given) are
 * sorted and each counted once.
 */
export const indexer: MrApp = {
  name: 'indexer',
  description: 'inverted index: `word n file1,file2,...` (files sorted, each once)',
  map(document, contents, emit) {
    const seen = new Set(words(decodeUtf8(contents)));
    for (const w of seen) emit(w, document);
  },
  reduce(_key, values) {
    const docs = sortBytes(values.slice());
    return `${docs.length} ${docs.join(',')}`;
  },
};
