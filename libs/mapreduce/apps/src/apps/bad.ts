/**
 * `bad`: word count (wc's semantics) whose user code fails on marked
 * records, for bad-record skipping (paper §4.6) and its tests. Options:
 *   throw=MARK   map throws on a line that contains MARK (default "BAD-RECORD")
 *   hang=MARK    map spins forever on a line that contains MARK (as a regex
 *                that never ends would): only a time limit stops it
 *   reduceThrow=KEY  reduce throws on the key KEY
 * Records that fail nothing count as in wc.
 */
import type { MrApp } from '../types.ts';
import { decodeSegments, tallyWords } from '../words.ts';

function sum(values: string[]): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) n += Number(values[i]);
  return n;
}

function spin(): never {
  for (;;) {
    // A hung user function: no await, no progress, until the thread is terminated.
  }
}

export const bad: MrApp = {
  name: 'bad',
  description: 'test app: wc, but map throws on lines with option throw (default BAD-RECORD), hangs on lines with option hang; reduce throws on key reduceThrow',
  input: 'lines',
  validateOptions(options) {
    for (const k of Object.keys(options)) if (!['throw', 'hang', 'reduceThrow'].includes(k)) return `bad: unknown option ${k} (throw, hang, reduceThrow)`;
    if (options['throw'] === '' || options['hang'] === '') return 'bad: throw and hang need a non-empty marker';
    return undefined;
  },
  map(_filename, contents, emit, ctx) {
    const text = contents.toString('utf8');
    const throwOn = ctx.options['throw'] ?? 'BAD-RECORD';
    const hangOn = ctx.options['hang'];
    if (text.includes(throwOn)) throw new Error(`bad record (contains ${throwOn})`);
    if (hangOn !== undefined && text.includes(hangOn)) spin();
    tallyWords(decodeSegments(contents), (w, n) => emit(w, String(n)));
  },
  reduce(key, values, ctx) {
    if (ctx.options['reduceThrow'] === key) throw new Error(`bad key ${key}`);
    return String(sum(values));
  },
  combine(_key, values) {
    return values.length === 1 ? values : [String(sum(values))];
  },
};
