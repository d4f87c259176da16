import { RE2JS } from 're2js';
import type { MrApp } from '../types.ts';
import { decodeUtf8 } from '../words.ts';

const ALLOWED_FLAGS = /^[imsu]*$/;

/**
 * The pattern in RE2 syntax, compiled by re2js: matching takes time linear
 * in the line's length whatever the pattern (no backtracking), so a pattern
 * like ^(a+)+$ cannot hang a worker. Backreferences and lookaround are not
 * RE2 syntax and are refused at submit.
 */
function compile(options: Readonly<Record<string, string>>): RE2JS {
  const flags = options['flags'] ?? '';
  let f = 0;
  if (flags.includes('i')) f |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) f |= RE2JS.MULTILINE;
  if (flags.includes('s')) f |= RE2JS.DOTALL;
  return RE2JS.compile(options['pattern']!, f);
}

/** Compiled patterns of this thread, by flags and pattern (a job's tasks compile once). */
const cache = new Map<string, RE2JS>();
function compiled(options: Readonly<Record<string, string>>): RE2JS {
  const k = `${options['flags'] ?? ''}/${options['pattern']}`;
  let re = cache.get(k);
  if (!re) {
    if (cache.size >= 64) cache.clear();
    re = compile(options);
    cache.set(k, re);
  }
  return re;
}

/**
 * Distributed grep. Options: `pattern` (an RE2 regular expression, required)
 * and `flags` (optional, any of i m s; u is accepted and changes nothing:
 * matching is always by code point). Each input line (split on \n, a trailing \r
 * removed, invalid UTF-8 shown as U+FFFD) that matches is emitted under the
 * key `<file>:<line number>` (1-based), so the output is `file:lineno
 * text-of-the-line`, one line per match, sorted by key within each output
 * file. A file given twice yields each matching line once. Files are not
 * split among map tasks (line numbers are counted from the file's start);
 * small files are combined, and a big file is streamed.
 */
export const grep: MrApp = {
  name: 'grep',
  description: 'lines matching option `pattern` (RE2 syntax, linear time; `flags` i m s): `file:lineno line`',
  input: 'lines',
  splittable: false,
  validateOptions(options) {
    const pattern = options['pattern'];
    if (pattern === undefined || pattern === '') return 'grep needs option pattern=REGEX';
    const flags = options['flags'] ?? '';
    if (!ALLOWED_FLAGS.test(flags)) return `grep: flags may only contain i, m, s, u (got "${flags}")`;
    for (const k of Object.keys(options)) {
      if (k !== 'pattern' && k !== 'flags') return `grep: unknown option "${k}" (known: pattern, flags)`;
    }
    try {
      compile(options);
    } catch (err) {
      return `grep: invalid or unsupported pattern (RE2 syntax: no backreferences or lookaround): ${(err as Error).message}`;
    }
    return undefined;
  },
  map(filename, contents, emit, ctx) {
    const re = compiled(ctx.options);
    const text = decodeUtf8(contents);
    let start = 0;
    let lineno = (ctx.input?.line ?? 1) - 1;
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
