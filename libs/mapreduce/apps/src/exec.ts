/**
 * The map and reduce executors (used by workers) and the sequential runner
 * (`mr seq`, the lab's mrsequential). Every file they produce appears only
 * whole (temporary file + rename).
 *
 * Memory is bounded whatever the input size (per task; see README):
 * - map input is streamed: 'lines' apps get chunks of whole lines
 *   (CHUNK_BYTES), only 'whole-file' apps get a whole file;
 * - map output is written to the partition files as it is produced
 *   (combined first when the app has a combiner, up to the memory budget);
 * - reduce input is streamed from the intermediate files and grouped in
 *   memory up to the budget, past it spilled as sorted runs and merged;
 * - reduce output is streamed to its file.
 *
 * Intermediate format: one JSON array `["key","value"]` per line (UTF-8).
 * JSON escapes newlines, tabs, control characters and lone surrogates, so any
 * JS string round-trips exactly, however long.
 */
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Emit, InputPiece, InputRecord, MapTaskResult, MapTaskSpec, MrApp, PartitionerSpec, ReduceTaskResult, ReduceTaskSpec, SkipSpec, TaskContext } from './types.ts';
import { rangePartition } from './range.ts';
import { ChunkWriter, tempNameFor, writeAtomically } from './files.ts';
import { partitionOf } from './hash.ts';
import { Grouper, jsonLines, MEMORY_BYTES, strBytes } from './grouper.ts';
import { closeInput, countLines, lineChunks, openInputSync, readWhole } from './input.ts';
import { ERR_BAD_INTERMEDIATE, ERR_BAD_OPTIONS, ERR_BAD_PARTITION, ERR_RECORD_FAILED } from './errors.ts';
import { UserCounters } from './counters.ts';

/** The partition function of a task: the job's choice, else the app's own, else the lab's hash. */
export function partitionerOf(app: MrApp, chosen: PartitionerSpec | undefined): (key: string, reduces: number) => number {
  if (chosen?.type === 'range') {
    const points = chosen.points;
    return (key) => rangePartition(points, key);
  }
  if (chosen?.type === 'hash' || !app.partition) return partitionOf;
  return app.partition.bind(app);
}

/** Name of intermediate file of map task `m`, partition `r`. */
export function intermediateName(mapIndex: number, reduceIndex: number): string {
  return `mr-${mapIndex}-${reduceIndex}`;
}

/** Name of the output file of partition `r`. */
export function outputName(reduceIndex: number): string {
  return `mr-out-${reduceIndex}`;
}

function str(x: unknown): string {
  return typeof x === 'string' ? x : String(x);
}

/** A key as a bad record names it: at most 256 UTF-8 bytes. */
function recordKey(key: string): string {
  if (key.length <= 64) return key;
  const b = Buffer.from(key);
  return b.length <= 256 ? key : b.subarray(0, 256).toString('utf8');
}

/**
 * User code failed on `rec`: an MR_RECORD_FAILED error that names it
 * (`record`), unless the error says retrying cannot help (a bad counter name).
 */
function failedOn(err: unknown, fn: 'map' | 'reduce', rec: InputRecord): unknown {
  if ((err as { retryable?: unknown } | null)?.retryable === false) return err;
  const where = rec.phase === 'map' ? `input ${rec.input} at byte ${rec.offset}${rec.records > 1 ? ` (a chunk of ${rec.records} lines)` : ''}` : `key ${JSON.stringify(rec.key)}`;
  return Object.assign(ERR_RECORD_FAILED(fn, where, err instanceof Error ? err.message : String(err)), { record: rec });
}

/** Lines in a chunk of whole lines (the last one may lack its \n). */
const linesIn = (buf: Buffer): number => countLines(buf) + (buf.length > 0 && buf[buf.length - 1] !== 10 ? 1 : 0);

/**
 * Feeds the pieces to the app's map, in order: a whole file per call for
 * 'whole-file' apps, chunks of whole lines for 'lines' apps. `after` runs
 * after every map call (to write out or spill what it emitted). With `skip`
 * (a job that skips bad records) each call's record is told to skip.at and
 * named by a failure; skip.perRecord: one call per line; skip.records are
 * not handed to map.
 */
async function feed(
  app: MrApp,
  pieces: readonly InputPiece[],
  options: Readonly<Record<string, string>>,
  cwd: string,
  count: TaskContext['count'],
  emit: Emit,
  after: () => Promise<void>,
  progress?: (units: number) => void,
  skip?: SkipSpec,
): Promise<{ bytes: number; skipped: number }> {
  let bytes = 0;
  let skipped = 0;
  const numbered = app.splittable === false;
  const skipSet = new Set(skip?.records.flatMap((r) => (r.phase === 'map' ? [`${r.input}:${r.offset}`] : [])));
  const perRecord = skip !== undefined && (skip.perRecord || skipSet.size > 0);
  for (const piece of pieces) {
    const fh = openInputSync(piece, cwd);
    try {
      const name = piece.name ?? piece.path;
      const index = piece.index ?? 0;
      const call = async (contents: Buffer, ctx: TaskContext, rec: InputRecord | undefined): Promise<void> => {
        if (!rec) return app.map(name, contents, emit, ctx);
        skip?.at?.(rec);
        try {
          await app.map(name, contents, emit, ctx);
        } catch (err) {
          throw failedOn(err, 'map', rec);
        }
      };
      if ((app.input ?? 'whole-file') === 'whole-file') {
        const contents = readWhole(fh);
        bytes += contents.length;
        if (skipSet.has(`${index}:0`)) skipped++;
        else {
          const rec: InputRecord | undefined = skip && { phase: 'map', input: index, offset: 0, bytes: contents.length, records: 1 };
          await call(contents, { options, cwd, count, input: { index, offset: 0, line: 1 } }, rec);
        }
        progress?.(contents.length);
        await after();
        continue;
      }
      const start = piece.start ?? 0;
      let line = numbered && start === 0 ? 1 : undefined;
      for await (const c of lineChunks(fh, start, piece.end)) {
        bytes += c.buf.length;
        if (!perRecord) {
          const ctx: TaskContext = { options, cwd, count, input: { index, offset: c.offset, line } };
          const rec: InputRecord | undefined = skip && { phase: 'map', input: index, offset: c.offset, bytes: c.buf.length, records: linesIn(c.buf), ...(line !== undefined ? { line } : {}) };
          await call(c.buf, ctx, rec);
          progress?.(c.buf.length);
          if (line !== undefined) line += countLines(c.buf);
          await after();
          continue;
        }
        // One record (line) per call, so that a failure names its line; the skipped ones are left out.
        for (let at = 0; at < c.buf.length; ) {
          const nl = c.buf.indexOf(10, at);
          const end = nl < 0 ? c.buf.length : nl + 1;
          const offset = c.offset + at;
          if (skipSet.has(`${index}:${offset}`)) skipped++;
          else {
            const rec: InputRecord = { phase: 'map', input: index, offset, bytes: end - at, records: 1, ...(line !== undefined ? { line } : {}) };
            await call(c.buf.subarray(at, end), { options, cwd, count, input: { index, offset, line } }, rec);
          }
          progress?.(end - at);
          if (line !== undefined) line++;
          at = end;
        }
        await after();
      }
    } finally {
      closeInput(fh);
    }
  }
  return { bytes, skipped };
}

interface PartitionFile {
  final: string;
  tmp: string;
  fh: FileHandle;
  w: ChunkWriter;
}

/** Runs one map task: its input pieces -> `reduces` intermediate files mr-<mapIndex>-<r>. */
export async function runMapTask(spec: MapTaskSpec): Promise<MapTaskResult> {
  const { app, reduces } = spec;
  const cwd = spec.cwd ?? process.cwd();
  const outDir = resolve(cwd, spec.outputDir);
  const pieces: InputPiece[] = spec.pieces ?? (spec.input !== undefined ? [{ path: spec.input, name: spec.name }] : []);
  if (pieces.length === 0) throw ERR_BAD_OPTIONS('a map task needs input pieces');
  await mkdir(outDir, { recursive: true });
  const budget = spec.memoryBytes ?? MEMORY_BYTES;
  const partition = partitionerOf(app, spec.partitioner);
  const counters: Record<string, number> = { mapInputBytes: 0, mapOutputRecords: 0, intermediateRecords: 0, intermediateBytes: 0 };
  const user = new UserCounters();

  // Each partition file is written through a small buffer (budget / 2 shared by all).
  const chunk = Math.max(16 << 10, Math.min(1 << 20, Math.floor(budget / 2 / reduces)));
  const parts: PartitionFile[] = [];
  let ok = false;
  try {
    for (let r = 0; r < reduces; r++) {
      const final = join(outDir, intermediateName(spec.mapIndex, r));
      const tmp = tempNameFor(final, spec.tempTag);
      const fh = await open(tmp, 'w');
      parts.push({ final, tmp, fh, w: new ChunkWriter(fh, chunk) });
    }
    const place = (key: string, value: string): void => {
      const p = partition(key, reduces);
      if (!(p >= 0 && p < reduces && Number.isInteger(p))) throw ERR_BAD_PARTITION(app.name, JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key), String(p));
      parts[p]!.w.push(JSON.stringify([key, value]) + '\n');
      counters['intermediateRecords']!++;
    };
    const writeOut = async (all: boolean): Promise<void> => {
      for (const p of parts) if (p.w.queued >= chunk || (all && p.w.queued > 0)) await p.w.flush();
    };

    let emit: Emit;
    let drain: () => void = () => undefined;
    let grouped = 0;
    // A key's first value is kept as a plain string; the combiner runs only
    // for keys with several values (it may run zero or more times per key).
    let groups = new Map<string, string | string[]>();
    if (app.combine && spec.combine !== false) {
      const combine = app.combine.bind(app);
      emit = (k, v) => {
        const key = str(k);
        const value = str(v);
        counters['mapOutputRecords']!++;
        const g = groups.get(key);
        if (g === undefined) {
          groups.set(key, value);
          grouped += strBytes(key) + strBytes(value) + 64;
        } else if (typeof g === 'string') {
          groups.set(key, [g, value]);
          grouped += strBytes(value) + 16;
        } else {
          g.push(value);
          grouped += strBytes(value) + 8;
        }
      };
      drain = () => {
        for (const [key, g] of groups) {
          if (typeof g === 'string') place(key, g);
          else for (const v of combine(key, g)) place(key, str(v));
        }
        groups = new Map();
        grouped = 0;
      };
    } else {
      emit = (k, v) => {
        counters['mapOutputRecords']!++;
        place(str(k), str(v));
      };
    }
    const fed = await feed(app, pieces, spec.options, cwd, user.count, emit, async () => {
      // Past half the budget the combiner's table is written out (combining again later is allowed).
      if (grouped > budget / 2) {
        drain();
        counters['mapSpills'] = (counters['mapSpills'] ?? 0) + 1;
      }
      await writeOut(false);
    }, spec.progress, spec.skip);
    counters['mapInputBytes'] = fed.bytes;
    if (spec.skip) counters['skippedRecords'] = fed.skipped;
    drain();
    if (app.combine && spec.combine !== false) counters['combineInputRecords'] = counters['mapOutputRecords']!;
    await writeOut(true);
    for (const p of parts) {
      await p.w.flush();
      counters['intermediateBytes']! += p.w.bytes;
      await p.fh.close();
    }
    for (const p of parts) await rename(p.tmp, p.final);
    // What the reduces will fetch: the shuffle's size.
    counters['shuffleBytes'] = counters['intermediateBytes']!;
    user.addTo(counters);
    ok = true;
  } finally {
    if (!ok) {
      for (const p of parts) {
        await p.fh.close().catch(() => undefined);
        await rm(p.tmp, { force: true });
      }
    }
  }
  return { files: parts.map((p) => p.final), counters };
}

/** Adds every pair of an intermediate file to the grouper (streamed); returns the number of records. */
async function readIntermediate(path: string, g: Grouper, progress?: (units: number) => void): Promise<number> {
  let records = 0;
  for await (const batch of jsonLines(path)) {
    progress?.(batch.length);
    for (const pair of batch) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw ERR_BAD_INTERMEDIATE(path, 'a line is not ["key","value"]');
      }
      g.add(pair[0], pair[1]);
      records++;
    }
    await g.maybeSpill();
  }
  return records;
}

/**
 * Reduces every group in byte order of keys and writes `key value\n` per key.
 * With `skip` (a job that skips bad records), groups are numbered in that
 * order: each is told to skip.at and named by a failure; skip.records' groups
 * are left out (skipped counts them).
 */
async function reduceGroups(app: MrApp, g: Grouper, ctx: TaskContext, w: ChunkWriter, progress?: (units: number) => void, skip?: SkipSpec): Promise<{ written: number; skipped: number }> {
  let n = 0;
  let group = -1;
  let skipped = 0;
  const skipSet = new Set(skip?.records.flatMap((r) => (r.phase === 'reduce' ? [r.group] : [])));
  for await (const [key, values] of g.groups()) {
    progress?.(1);
    group++;
    let value: string;
    if (!skip) {
      const r = app.reduce(key, values, ctx);
      value = typeof r === 'string' ? r : str(await r);
    } else if (skipSet.has(group)) {
      skipped++;
      continue;
    } else {
      const rec: InputRecord = { phase: 'reduce', group, key: recordKey(key) };
      skip.at?.(rec);
      try {
        const r = app.reduce(key, values, ctx);
        value = typeof r === 'string' ? r : str(await r);
      } catch (err) {
        throw failedOn(err, 'reduce', rec);
      }
    }
    const p = w.write(`${key} ${value}\n`);
    if (p) await p;
    n++;
  }
  return { written: n, skipped };
}

/** Runs one reduce task: its intermediate files -> mr-out-<reduceIndex>. */
export async function runReduceTask(spec: ReduceTaskSpec): Promise<ReduceTaskResult> {
  const cwd = spec.cwd ?? process.cwd();
  const user = new UserCounters();
  const ctx: TaskContext = { options: spec.options, cwd, count: user.count };
  const outDir = resolve(cwd, spec.outputDir);
  await mkdir(outDir, { recursive: true });
  const counters: Record<string, number> = { reduceInputBytes: 0, reduceInputRecords: 0, reduceInputGroups: 0, outputRecords: 0, outputBytes: 0 };
  const combine = spec.app.combine && spec.combine !== false ? spec.app.combine.bind(spec.app) : undefined;
  const g = new Grouper(spec.memoryBytes ?? MEMORY_BYTES, spec.spillDir, combine);
  try {
    for (const input of spec.inputs) {
      const path = resolve(cwd, input);
      try {
        counters['reduceInputBytes']! += (await stat(path)).size;
      } catch (err) {
        throw ERR_BAD_INTERMEDIATE(path, (err as Error).message);
      }
      counters['reduceInputRecords']! += await readIntermediate(path, g, spec.progress);
    }
    const file = join(outDir, outputName(spec.reduceIndex));
    counters['outputBytes'] = await writeAtomically(file, async (w) => {
      const r = await reduceGroups(spec.app, g, ctx, w, spec.progress, spec.skip);
      counters['outputRecords'] = r.written;
      if (spec.skip) counters['skippedRecords'] = r.skipped;
    }, spec.tempTag);
    counters['reduceInputGroups'] = counters['outputRecords']! + (counters['skippedRecords'] ?? 0);
    if (g.spills) counters['reduceSpills'] = g.spills;
    if (g.combineIn) {
      counters['reduceCombineInputRecords'] = g.combineIn;
      counters['reduceCombineOutputRecords'] = g.combineOut;
    }
    user.addTo(counters);
    return { file, counters };
  } finally {
    await g.close();
  }
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
  /** Memory budget for grouping, bytes (past it sorted runs are spilled to `spillDir`). */
  memoryBytes?: number;
  spillDir?: string;
  /**
   * Local debug mode (paper §4.7): write mr-out-0..reduces-1 partitioned as a
   * job would be (the app's partitioner, or `partitioner`), instead of the
   * lab's single mr-out-0. Default 1.
   */
  reduces?: number | undefined;
  partitioner?: PartitionerSpec | undefined;
  /** False: do not run the app's combiner (it runs on spilled groups, as in a job's reduces). */
  combine?: boolean | undefined;
}

export interface SequentialResult {
  /** The first output file (mr-out-0). */
  file: string;
  /** Every output file, in partition order. */
  files: string[];
  counters: Record<string, number>;
}

/**
 * The lab's mrsequential: maps every input in turn, groups all pairs by key,
 * reduces each key in byte order, and writes everything to one mr-out-0.
 * With `reduces` > 1 it writes mr-out-<r> per partition, as a job would,
 * with the same partitioner, combiner and counters (user counters included).
 */
export async function runSequential(spec: SequentialSpec): Promise<SequentialResult> {
  const { app } = spec;
  const options = spec.options ?? {};
  const problem = app.validateOptions?.(options);
  if (problem) throw ERR_BAD_OPTIONS(problem);
  const cwd = spec.cwd ?? process.cwd();
  const user = new UserCounters();
  const ctx: TaskContext = { options, cwd, count: user.count };
  const outDir = resolve(cwd, spec.outputDir);
  const reduces = spec.reduces ?? 1;
  if (!Number.isInteger(reduces) || reduces < 1) throw ERR_BAD_OPTIONS(`reduces must be a positive integer, got ${reduces}`);
  const partition = partitionerOf(app, spec.partitioner);
  const counters: Record<string, number> = { mapInputBytes: 0, mapOutputRecords: 0, reduceInputGroups: 0, outputRecords: 0, outputBytes: 0 };
  const combine = app.combine && spec.combine !== false ? app.combine.bind(app) : undefined;
  const budget = Math.max(1 << 20, Math.floor((spec.memoryBytes ?? MEMORY_BYTES) / reduces));
  const groupers = Array.from({ length: reduces }, () => new Grouper(budget, spec.spillDir, combine));
  try {
    let emitted = 0;
    const emit = (k: string, v: string): void => {
      emitted++;
      const key = str(k);
      const p = reduces === 1 ? 0 : partition(key, reduces);
      if (!(p >= 0 && p < reduces && Number.isInteger(p))) throw ERR_BAD_PARTITION(app.name, JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key), String(p));
      groupers[p]!.add(key, str(v));
    };
    const pieces = spec.inputs.map((path, index): InputPiece => ({ path, index }));
    counters['mapInputBytes'] = (await feed(app, pieces, options, cwd, user.count, emit, async () => {
      for (const g of groupers) await g.maybeSpill();
    })).bytes;
    counters['mapOutputRecords'] = emitted;
    await mkdir(outDir, { recursive: true });
    const files: string[] = [];
    for (const [r, g] of groupers.entries()) {
      const file = join(outDir, outputName(r));
      counters['outputBytes']! += await writeAtomically(file, async (w) => {
        counters['outputRecords']! += (await reduceGroups(app, g, ctx, w)).written;
      });
      if (g.spills) counters['reduceSpills'] = (counters['reduceSpills'] ?? 0) + g.spills;
      if (g.combineIn) {
        counters['reduceCombineInputRecords'] = (counters['reduceCombineInputRecords'] ?? 0) + g.combineIn;
        counters['reduceCombineOutputRecords'] = (counters['reduceCombineOutputRecords'] ?? 0) + g.combineOut;
      }
      files.push(file);
    }
    counters['reduceInputGroups'] = counters['outputRecords']!;
    user.addTo(counters);
    return { file: files[0]!, files, counters };
  } finally {
    for (const g of groupers) await g.close();
  }
}
