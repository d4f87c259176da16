/**
 * Data-driven transcript tests in the manner of etcd raft's datadriven files.
 *
 * A transcript is a text file of blocks:
 *
 *   # comments and blank lines between blocks are kept
 *   command arg1 key=value
 *   more input lines (optional)
 *   ----
 *   expected output lines
 *
 * Each block ends at the next blank line after the `----` output. The runner
 * calls `handle(cmd)` for each block and compares what it returns with the
 * expected output. With UPDATE=1 in the environment the file is rewritten
 * with the actual outputs instead (review the diff!).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface TranscriptCommand {
  /** First word of the first line. */
  name: string;
  /** Positional words after the name (not key=value). */
  args: string[];
  /** key=value words after the name. */
  kv: Record<string, string>;
  /** Lines after the first, before `----`. */
  input: string[];
  /** file:line of the command, for messages. */
  where: string;
}

interface Block {
  leading: string[];
  header: string;
  input: string[];
  expected: string[];
  line: number;
}

function parse(text: string): { blocks: Block[]; trailing: string[] } {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const blocks: Block[] = [];
  let leading: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      leading.push(l);
      i++;
      continue;
    }
    const start = i + 1;
    const header = l;
    const input: string[] = [];
    i++;
    while (i < lines.length && lines[i] !== '----') {
      input.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) throw new Error(`transcript line ${start}: command without ---- separator`);
    i++; // skip ----
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') {
      expected.push(lines[i]!);
      i++;
    }
    blocks.push({ leading, header, input, expected, line: start });
    leading = [];
  }
  return { blocks, trailing: leading };
}

function split(header: string): { name: string; args: string[]; kv: Record<string, string> } {
  const words = header.trim().split(/\s+/);
  const name = words.shift() ?? '';
  const args: string[] = [];
  const kv: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) kv[w.slice(0, eq)] = w.slice(eq + 1);
    else args.push(w);
  }
  return { name, args, kv };
}

export interface TranscriptResult {
  mismatches: { where: string; expected: string; actual: string }[];
  updated: boolean;
}

/**
 * Runs a transcript file. `handle` returns the output lines (a string with
 * newlines or an array). Throws an AssertionError-like Error listing every
 * mismatch unless `UPDATE=1` (from `update`) rewrites the file.
 */
export function runTranscript(
  file: string,
  handle: (cmd: TranscriptCommand) => string | string[],
  opts: { update?: boolean } = {},
): TranscriptResult {
  const text = readFileSync(file, 'utf8');
  const { blocks, trailing } = parse(text);
  const mismatches: TranscriptResult['mismatches'] = [];
  const out: string[] = [];
  for (const b of blocks) {
    const { name, args, kv } = split(b.header);
    const where = `${file}:${b.line}`;
    let actualLines: string[];
    try {
      const r = handle({ name, args, kv, input: b.input, where });
      actualLines = (Array.isArray(r) ? r : r.split('\n')).filter((l, idx, arr) => !(l === '' && idx === arr.length - 1));
    } catch (err) {
      actualLines = [`error: ${(err as Error).message}`];
    }
    if (actualLines.length === 0) actualLines = ['ok'];
    const actual = actualLines.join('\n');
    const expected = b.expected.join('\n');
    if (actual !== expected) mismatches.push({ where, expected, actual });
    out.push(...b.leading, b.header, ...b.input, '----', ...actualLines);
  }
  out.push(...trailing);
  const update = opts.update ?? false;
  if (update) {
    writeFileSync(file, out.join('\n') + '\n');
    return { mismatches, updated: true };
  }
  if (mismatches.length) {
    const msg = mismatches
      .map((m) => `${m.where}\n--- expected\n${m.expected}\n--- actual\n${m.actual}`)
      .join('\n\n');
    throw new Error(`transcript mismatch (run with UPDATE=1 to rewrite, then review the diff):\n${msg}`);
  }
  return { mismatches, updated: false };
}
