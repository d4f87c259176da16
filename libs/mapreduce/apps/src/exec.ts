/**
 * The map and reduce executors (used by workers) and the sequential runner
 * (`mr seq`, the lab's mrsequential). Every file they produce appears only
 * whole (temporary file + rename).
 *
 * Intermediate format: one JSON array `["key","value"]` per line (UTF-8).
 * JSON escapes newlines, tabs, control characters and lone surrogates, so any
 * JS string round-trips exactly, however long.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { MapTaskResult, MapTaskSpec, MrApp, ReduceTaskResult, ReduceTaskSpec, TaskContext } from './types.ts';
import { writeAtomically, type ChunkWriter } from './files.ts';
import { partitionOf } from './hash.ts';
import { sortBytes } from './order.ts';
import { ERR_BAD_INTERMEDIATE, ERR_BAD_OPTIONS, ERR_BAD_PARTITION, ERR_INPUT_NOT_FOUND, ERR_INPUT_UNREADABLE } from './errors.ts';

/** Name of intermediate file of map task `m`, partition `r`. */
export function intermediateName(mapIndex: number, reduceIndex: number): string {
  return `mr-${mapIndex}-${reduceIndex}`;
}

/** Name of the output file of partition `r`. */
export function outputName(reduceIndex: number): string {
  return `mr-out-${reduceIndex}`;
}

async function readInput(path: string, cwd: string): Promise<Buffer> {
  try {
    return await readFile(resolve(cwd, path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw ERR_INPUT_NOT_FOUND(path);
    throw ERR_INPUT_UNREADABLE(path, (err as Error).message);
  }
}

function str(x: unknown): string {
  return typeof x === 'string' ? x : String(x);
}

/** Runs one map task: input file -> `reduces` intermediate files mr-<mapIndex>-<r>. */
export async function runMapTask(spec: MapTaskSpec): Promise<MapTaskResult> {
  const { app, reduces } = spec;
  const cwd = spec.cwd ?? process.cwd();
  const ctx: TaskContext = { options: spec.options, cwd };
  const outDir = resolve(cwd, spec.outputDir);
  const contents = await readInput(spec.input, cwd);
  await mkdir(outDir, { recursive: true });

  const parts: string[][] = Array.from({ length: reduces }, () => []);
  const partition = app.partition ? app.partition.bind(app) : partitionOf;
  const counters: Record<string, number> = { mapInputBytes: contents.length, mapOutputRecords: 0, intermediateRecords: 0, intermediateBytes: 0 };

  const place = (key: string, value: string): void => {
    const p = partition(key, reduces);
    if (!(p >= 0 && p < reduces && Number.isInteger(p))) throw ERR_BAD_PARTITION(app.name, JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key), String(p));
    parts[p]!.push(JSON.stringify([key, value]) + '\n');
  };

  if (app.combine) {
    // A key's first value is kept as a plain string; the combiner runs only
    // for keys with several values (it may run zero or more times per key).
    const groups = new Map<string, string | string[]>();
    await app.map(spec.name ?? spec.input, contents, (k, v) => {
      const key = str(k);
      const value = str(v);
      counters['mapOutputRecords']!++;
      const g = groups.get(key);
      if (g === undefined) groups.set(key, value);
      else if (typeof g === 'string') groups.set(key, [g, value]);
      else g.push(value);
    }, ctx);
    counters['combineInputRecords'] = counters['mapOutputRecords']!;
    for (const [key, g] of groups) {
      if (typeof g === 'string') place(key, g);
      else for (const v of app.combine(key, g)) place(key, str(v));
    }
  } else {
    await app.map(spec.name ?? spec.input, contents, (k, v) => {
      counters['mapOutputRecords']!++;
      place(str(k), str(v));
    }, ctx);
  }

  const files = parts.map((_, r) => join(outDir, intermediateName(spec.mapIndex, r)));
  const sizes = await Promise.all(parts.map((lines, r) => writeAtomically(files[r]!, async (w) => {
    for (const line of lines) {
      const p = w.write(line);
      if (p) await p;
    }
  })));
  for (let r = 0; r < reduces; r++) {
    counters['intermediateRecords']! += parts[r]!.length;
    counters['intermediateBytes']! += sizes[r]!;
  }
  return { files, counters };
}

const SEGMENT = 8 << 20;

/** Parses an intermediate file's JSON lines, calling `fn` per pair. */
function parseIntermediate(path: string, buf: Buffer, fn: (key: string, value: string) => void): number {
  let records = 0;
  let start = 0;
  while (start < buf.length) {
    // Decode a segment of whole lines at a time (bounded string size).
    let end = start + SEGMENT >= buf.length ? buf.length : buf.indexOf(10, start + SEGMENT);
    if (end < 0) end = buf.length;
    const text = buf.toString('utf8', start, end).replace(/^\n+|\n+$/g, '');
    if (text !== '') {
      // JSON escapes newlines inside strings, so every raw \n separates two
      // records: the whole segment parses as one JSON array (much faster
      // than one JSON.parse per line).
      let pairs: unknown;
      try {
        pairs = JSON.parse(`[${text.replace(/\n+/g, ',')}]`);
      } catch (err) {
        throw ERR_BAD_INTERMEDIATE(path, (err as Error).message);
      }
      for (const pair of pairs as unknown[]) {
        if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
          throw ERR_BAD_INTERMEDIATE(path, 'a line is not ["key","value"]');
        }
        fn(pair[0], pair[1]);
        records++;
      }
    }
    start = end + 1;
  }
  return records;
}

/** Sorts the keys in Go's byte order and writes `key value\n` per key. */
async function reduceGroups(app: MrApp, groups: Map<string, string[]>, ctx: TaskContext, w: ChunkWriter): Promise<number> {
  const keys = sortBytes([...groups.keys()]);
  for (const key of keys) {
    const r = app.reduce(key, groups.get(key)!, ctx);
    const value = typeof r === 'string' ? r : str(await r);
    const p = w.write(`${key} ${value}\n`);
    if (p) await p;
  }
  return keys.length;
}

function addTo(groups: Map<string, string[]>) {
  return (key: string, value: string): void => {
    const g = groups.get(key);
    if (g) g.push(value);
    else groups.set(key, [value]);
  };
}

/** Runs one reduce task: its intermediate files -> mr-out-<reduceIndex>. */
export async function runReduceTask(spec: ReduceTaskSpec): Promise<ReduceTaskResult> {
  const cwd = spec.cwd ?? process.cwd();
  const ctx: TaskContext = { options: spec.options, cwd };
  const outDir = resolve(cwd, spec.outputDir);
  await mkdir(outDir, { recursive: true });
  const counters: Record<string, number> = { reduceInputBytes: 0, reduceInputRecords: 0, reduceInputGroups: 0, outputRecords: 0, outputBytes: 0 };
  const groups = new Map<string, string[]>();
  const add = addTo(groups);
  for (const input of spec.inputs) {
    const path = resolve(cwd, input);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      throw ERR_BAD_INTERMEDIATE(path, (err as Error).message);
    }
    counters['reduceInputBytes']! += buf.length;
    counters['reduceInputRecords']! += parseIntermediate(path, buf, add);
  }
  counters['reduceInputGroups'] = groups.size;
  const file = join(outDir, outputName(spec.reduceIndex));
  counters['outputBytes'] = await writeAtomically(file, async (w) => {
    counters['outputRecords'] = await reduceGroups(spec.app, groups, ctx, w);
  });
  return { file, counters };
}

export interface SequentialSpec {
  app: MrApp;
  options?: Readonly<Record<string, string>>;
  /** Input files; passed to map as given (relative ones are read from cwd). */
  inputs: string[];
  /** Directory for mr-out-0 (relative to cwd). */
  outputDir: string;
  /** Working directory for relative paths and app side files; default process.cwd(). */
  cwd?: string;
}

export interface SequentialResult {
  file: string;
  counters: Record<string, number>;
}

/**
 * The lab's mrsequential: maps every input in turn, groups all pairs by key,
 * reduces each key in byte order, and writes everything to one mr-out-0.
 */
export async function runSequential(spec: SequentialSpec): Promise<SequentialResult> {
  const { app } = spec;
  const options = spec.options ?? {};
  const problem = app.validateOptions?.(options);
  if (problem) throw ERR_BAD_OPTIONS(problem);
  const cwd = spec.cwd ?? process.cwd();
  const ctx: TaskContext = { options, cwd };
  const outDir = resolve(cwd, spec.outputDir);
  const counters: Record<string, number> = { mapInputBytes: 0, mapOutputRecords: 0, reduceInputGroups: 0, outputRecords: 0, outputBytes: 0 };
  const groups = new Map<string, string[]>();
  const add = addTo(groups);
  let emitted = 0;
  const emit = (k: string, v: string): void => {
    emitted++;
    add(str(k), str(v));
  };
  for (const input of spec.inputs) {
    const contents = await readInput(input, cwd);
    counters['mapInputBytes']! += contents.length;
    await app.map(input, contents, emit, ctx);
  }
  counters['mapOutputRecords'] = emitted;
  counters['reduceInputGroups'] = groups.size;
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, outputName(0));
  counters['outputBytes'] = await writeAtomically(file, async (w) => {
    counters['outputRecords'] = await reduceGroups(app, groups, ctx, w);
  });
  return { file, counters };
}
