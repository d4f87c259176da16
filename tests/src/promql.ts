/**
 * Just enough PromQL and Prometheus text format to check deploy/'s
 * dashboards against what the services export: the vector selectors of an
 * expression (metric name, label matchers) and the label names its grouping
 * clauses use; the sample names and label names of a /metrics page.
 *
 * Functions, aggregations, keywords, numbers, durations, range and subquery
 * brackets and string literals are never taken for metric names.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  metric: string;
  matchers: Matcher[];
}

export interface ExprRefs {
  selectors: Selector[];
  /** Labels named in by/without/on/ignoring/group_left/group_right clauses. */
  groupingLabels: string[];
}

type Tok = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string; pos: number };

const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);
const OPS = ['=~', '!~', '==', '!=', '<=', '>=', '=', '<', '>', '+', '-', '*', '/', '%', '^', '@', ',', '(', ')', '{', '}', '[', ']'];

/** Grafana's built-in and dashboard variables, replaced so the text is plain PromQL. */
export function substituteGrafanaVars(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '1m')
    .replace(/\$__interval|\$\{__interval\}/g, '15s')
    .replace(/\$__range|\$\{__range\}/g, '1h')
    .replace(/\$\{?\w+\}?/g, '.+'); // template variables, which stand inside regex matchers
}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      const start = i++;
      let text = '';
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\' && c !== '`') {
          text += src[i + 1] ?? '';
          i += 2;
        } else text += src[i++];
      }
      if (i >= src.length) throw new Error(`unterminated string at ${start} in ${src}`);
      i++;
      toks.push({ kind: 'string', text, pos: start });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^[0-9.][0-9a-zA-Z_.]*/.exec(src.slice(i))!;
      toks.push({ kind: 'number', text: m[0], pos: i });
      i += m[0].length;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(src.slice(i))!;
      toks.push({ kind: 'ident', text: m[0], pos: i });
      i += m[0].length;
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      if (!op) throw new Error(`unexpected "${c}" at ${i} in ${src}`);
      toks.push({ kind: 'punct', text: op, pos: i });
      i += op.length;
    }
  }
  return toks;
}

/** The selectors and grouping labels of one PromQL expression (Grafana variables allowed). */
export function parsePromQL(expr: string): ExprRefs {
  const src = substituteGrafanaVars(expr);
  const t = tokenize(src);
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  const at = (i: number) => t[i];
  const isP = (i: number, p: string) => at(i)?.kind === 'punct' && at(i)!.text === p;

  /** Parses `{a="b", c!~"d"}` starting at the `{`; returns the index after `}`. */
  const matchers = (i: number, out: Matcher[]): number => {
    i++;
    while (!isP(i, '}')) {
      const label = at(i);
      const op = at(i + 1);
      const value = at(i + 2);
      if (label?.kind !== 'ident' || op?.kind !== 'punct' || !['=', '!=', '=~', '!~'].includes(op.text) || value?.kind !== 'string') {
        throw new Error(`bad label matcher at ${label?.pos ?? src.length} in ${src}`);
      }
      out.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
      i += 3;
      if (isP(i, ',')) i++;
      else if (!isP(i, '}')) throw new Error(`expected , or } at ${at(i)?.pos ?? src.length} in ${src}`);
    }
    return i + 1;
  };

  for (let i = 0; i < t.length; ) {
    const tok = t[i]!;
    if (isP(i, '[')) {
      // range or subquery: durations only
      while (i < t.length && !isP(i, ']')) i++;
      i++;
    } else if (tok.kind === 'ident' && GROUPING.has(tok.text) && isP(i + 1, '(')) {
      i += 2;
      while (!isP(i, ')')) {
        const l = at(i);
        if (l?.kind !== 'ident') throw new Error(`bad label list at ${l?.pos ?? src.length} in ${src}`);
        groupingLabels.push(l.text);
        i++;
        if (isP(i, ',')) i++;
      }
      i++;
    } else if (tok.kind === 'ident' && (GROUPING.has(tok.text) || KEYWORDS.has(tok.text.toLowerCase()))) {
      i++;
    } else if (tok.kind === 'ident' && (isP(i + 1, '(') || (at(i + 1)?.kind === 'ident' && ['by', 'without'].includes(at(i + 1)!.text)))) {
      i++; // function, or aggregation (`sum(`, `sum by (`)
    } else if (tok.kind === 'ident') {
      const sel: Selector = { metric: tok.text, matchers: [] };
      i = isP(i + 1, '{') ? matchers(i + 1, sel.matchers) : i + 1;
      selectors.push(sel);
    } else if (isP(i, '{')) {
      const sel: Selector = { metric: '', matchers: [] };
      i = matchers(i, sel.matchers);
      const name = sel.matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (!name) throw new Error(`selector without a metric name at ${tok.pos} in ${src}`);
      sel.metric = name.value;
      sel.matchers = sel.matchers.filter((m) => m !== name);
      selectors.push(sel);
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels };
}

/** Labels a legend format refers to: `{{node}} {{ role }}`. */
export function legendLabels(legend: string | undefined): string[] {
  if (!legend) return [];
  return [...legend.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);
}

export interface Exposition {
  /** Sample name → label names seen on its samples. */
  samples: Map<string, Set<string>>;
  /** Family name → type, from # TYPE lines. */
  types: Map<string, string>;
}

export function emptyExposition(): Exposition {
  return { samples: new Map(), types: new Map() };
}

/** Adds a /metrics page (Prometheus text format 0.0.4) to `into`. */
export function parseExposition(text: string, into: Exposition = emptyExposition()): Exposition {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      into.types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels = into.samples.get(m[1]!) ?? new Set<string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]!);
    into.samples.set(m[1]!, labels);
  }
  return into;
}

/** The family a sample name belongs to (histogram/summary suffixes), for messages. */
export function familyOf(name: string, types: Map<string, string>): { family: string; type: string } | undefined {
  if (types.has(name)) return { family: name, type: types.get(name)! };
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && types.has(m[1]!)) return { family: m[1]!, type: types.get(m[1]!)! };
  return undefined;
}
