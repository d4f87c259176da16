import type { MrApp } from '../types.ts';
import { decodeUtf8 } from '../words.ts';

/**
 * Sorts the lines of the inputs. Key = line (split on \n, a trailing \r
 * removed, empty lines skipped), value = how many times it occurs, so the
 * output is `line count` in UTF-8 byte order. The partitioner is by range of
 * the first byte of the line, so mr-out-0, mr-out-1, ... concatenated in
 * order are globally sorted.
 */
export const sort: MrApp = {
  name: 'sort',
  description: 'sorts the input lines: `line count`, byte order; mr-out-0.. concatenated are sorted',
  input: 'lines',
  map(_filename, contents, emit) {
    const text = decodeUtf8(contents);
    const counts = new Map<string, number>();
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let line = text.slice(start, end);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line !== '') counts.set(line, (counts.get(line) ?? 0) + 1);
      start = end + 1;
    }
    for (const [line, n] of counts) emit(line, String(n));
  },
  reduce(_key, values) {
    let n = 0;
    for (const v of values) n += Number(v);
    return String(n);
  },
  combine(_key, values) {
    if (values.length === 1) return values;
    let n = 0;
    for (const v of values) n += Number(v);
    return [String(n)];
  },
  partition(key, reduces) {
    if (key === '') return 0;
    const first = Buffer.from(key.slice(0, 2), 'utf8')[0]!;
    return Math.floor((first * reduces) / 256);
  },
};
