import type { MrApp } from '../types.ts';
import { decodeUtf8 } from '../words.ts';

const ALLOWED_FLAGS = /^[imsuv]*$/;

function compile(options: Readonly<Record<string, string>>): RegExp {
  return new RegExp(options['pattern']!, options['flags'] ?? '');
}

/**
 * Distributed grep. Options: `pattern` (a JavaScript regular expression,
 * required) and `flags` (optional, any of i m s u v). Each input line (split on
 * \n, a trailing \r removed, invalid UTF-8 shown as U+FFFD) that matches is
 * emitted under the key `<file>:<line number>` (1-based), so the output is
 * `file:lineno text-of-the-line`, one line per match, sorted by key within
 * each output file. A file given twice yields each matching line once.
 */
export const grep: MrApp = {
  name: 'grep',
  description: 'lines matching option `pattern` (JS regex; `flags` optional): `file:lineno line`',
  validateOptions(options) {
    const pattern = options['pattern'];
    if (pattern === undefined || pattern === '') return 'grep needs option pattern=REGEX';
    const flags = options['flags'] ?? '';
    if (!ALLOWED_FLAGS.test(flags)) return `grep: flags may only contain i, m, s, u, v (got "${flags}")`;
    for (const k of Object.keys(options)) {
      if (k !== 'pattern' && k !== 'flags') return `grep: unknown option "${k}" (known: pattern, flags)`;
    }
    try {
      compile(options);
    } catch (err) {
      return `grep: invalid pattern: ${(err as Error).message}`;
    }
    return undefined;
  },
  map(filename, contents, emit, ctx) {
    const re = compile(ctx.options);
    const text = decodeUtf8(contents);
    let start = 0;
    let lineno = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      lineno++;
      let line = text.slice(start, end);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (re.test(line)) emit(`${filename}:${lineno}`, line);
      start = end + 1;
    }
  },
  reduce(_key, values) {
    return values[0]!;
  },
};
