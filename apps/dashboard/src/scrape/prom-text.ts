/**
 * A parser of the Prometheus text exposition format 0.0.4 (what prom-client
 * writes): `# HELP` / `# TYPE` lines and samples `name{l="v",...} value [ts]`,
 * with the format's escapes in label values (\\, \", \n) and the special
 * values NaN, +Inf, -Inf. A line it cannot read is an error naming the line:
 * a scrape that does not parse is recorded as failed, not half-read.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name -> type (counter, gauge, histogram, summary, untyped). */
  types: Record<string, string>;
  help: Record<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export class PromParseError extends Error {
  readonly code = 'DASH_ERR_METRICS_PARSE';
}

function parseValue(s: string, line: number): number {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new PromParseError(`line ${line}: bad value "${s.slice(0, 40)}"`);
  return Number(s);
}

export function parsePromText(text: string, maxSamples = 50_000): Exposition {
  const out: Exposition = { samples: [], types: Object.create(null) as Record<string, string>, help: Object.create(null) as Record<string, string> };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$/.exec(line);
      if (!m) continue; // other comments
      if (m[1] === 'TYPE') out.types[m[2]!] = m[3]!.trim();
      else out.help[m[2]!] = m[3]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      continue;
    }
    if (out.samples.length >= maxSamples) throw new PromParseError(`more than ${maxSamples} samples`);
    const nm = NAME.exec(line);
    if (!nm) throw new PromParseError(`line ${i + 1}: no metric name`);
    const name = nm[0];
    let pos = name.length;
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const lm = LABEL.exec(line.slice(pos));
        if (!lm) throw new PromParseError(`line ${i + 1}: bad label name`);
        pos += lm[0].length;
        if (line[pos] !== '=' || line[pos + 1] !== '"') throw new PromParseError(`line ${i + 1}: expected ="`);
        pos += 2;
        let v = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) throw new PromParseError(`line ${i + 1}: unterminated label value`);
          pos++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[pos++];
            v += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : `\\${e ?? ''}`;
          } else v += c;
        }
        labels[lm[0]] = v;
        while (line[pos] === ' ') pos++;
        if (line[pos] === ',') pos++;
        else if (line[pos] !== '}') throw new PromParseError(`line ${i + 1}: expected , or }`);
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new PromParseError(`line ${i + 1}: expected a value`);
    out.samples.push({ name, labels, value: parseValue(rest[0]!, i + 1) });
  }
  return out;
}

/** Sum of a family's samples whose labels include `match` (a counter over all its labels, by default). */
export function sumOf(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}
