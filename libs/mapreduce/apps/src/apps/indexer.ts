import type { MrApp } from '../types.ts';
import { sortBytes } from '../order.ts';
import { decodeSegments, words } from '../words.ts';

/**
 * Inverted index with the lab's semantics (mrapps/indexer.go): for each word,
 * `word n doc1,doc2,...` where the documents (input names as given) are
 * sorted and each counted once.
 *
 * The map sees chunks of a file's lines (a file may be split among tasks), so
 * it emits `<input index> <document>` and the reduce counts each input once:
 * a word in several chunks of one file counts that file once, while a file
 * given twice as input is listed twice, as in the lab.
 */
export const indexer: MrApp = {
  name: 'indexer',
  description: 'inverted index: `word n file1,file2,...` (files sorted, each once)',
  input: 'lines',
  map(document, contents, emit, ctx) {
    const seen = new Set<string>();
    for (const text of decodeSegments(contents)) for (const w of words(text)) seen.add(w);
    const tagged = `${ctx.input?.index ?? 0} ${document}`;
    for (const w of seen) emit(w, tagged);
  },
  reduce(_key, values) {
    const docs = sortBytes([...new Set(values)].map((v) => v.slice(v.indexOf(' ') + 1)));
    return `${docs.length} ${docs.join(',')}`;
  },
  combine(_key, values) {
    return [...new Set(values)];
  },
};
