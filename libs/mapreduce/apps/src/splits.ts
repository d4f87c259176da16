/**
 * Input splits: how a job's input files become map tasks.
 *
 * - 'lines' apps that are splittable: a file bigger than the split size is
 *   divided into byte ranges of the split size (line-aligned when read, see
 *   input.ts), one map task each.
 * - 'lines' apps: files no bigger than the split size are combined, in input
 *   order, into one split up to the split size (Hadoop's
 *   CombineFileInputFormat), so many small files do not mean many tiny tasks.
 *   Opening a file costs too: each file counts as at least 1/64 of the split
 *   size (Spark's openCostInBytes), so a split holds at most 64 files and
 *   10,000 tiny files make 157 map tasks that workers run in parallel, not
 *   one task that opens them all in a row.
 * - 'whole-file' apps (the lab's contract): one file, one map task.
 */
import type { MrApp } from './types.ts';

/** Default split size: 64 MiB (Hadoop's classic block size). */
export const DEFAULT_SPLIT_BYTES = 64 << 20;
/** Smallest split size accepted (tests use tiny ones). */
export const MIN_SPLIT_BYTES = 1;
/** At most this many files go into one combined split (each file counts as at least splitBytes / MAX_FILES_PER_SPLIT bytes). */
export const MAX_FILES_PER_SPLIT = 64;

/** One file's part of a split: input index, byte range [start, end) (end absent: to the end of the file). */
export interface SplitPiece {
  input: number;
  start: number;
  end?: number | undefined;
}

/** A split is the input of one map task. */
export type Split = SplitPiece[];

/**
 * Plans the splits of inputs with the given sizes (bytes) for `app`. Every
 * byte of every input is in exactly one split; pieces of one file are in
 * order; a file's last piece has no `end`.
 */
export function planSplits(app: Pick<MrApp, 'input' | 'splittable'>, sizes: readonly number[], splitBytes = DEFAULT_SPLIT_BYTES): Split[] {
  if (!Number.isInteger(splitBytes) || splitBytes < MIN_SPLIT_BYTES) throw new RangeError(`split size must be an integer >= ${MIN_SPLIT_BYTES}, got ${splitBytes}`);
  const out: Split[] = [];
  if ((app.input ?? 'whole-file') === 'whole-file') {
    for (let i = 0; i < sizes.length; i++) out.push([{ input: i, start: 0 }]);
    return out;
  }
  const splittable = app.splittable ?? true;
  const openCost = Math.floor(splitBytes / MAX_FILES_PER_SPLIT);
  let cur: Split = [];
  let curBytes = 0;
  const flush = (): void => {
    if (cur.length) out.push(cur);
    cur = [];
    curBytes = 0;
  };
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i]!;
    if (size > splitBytes) {
      flush();
      if (!splittable) {
        out.push([{ input: i, start: 0 }]);
        continue;
      }
      for (let s = 0; s < size; s += splitBytes) out.push([s + splitBytes >= size ? { input: i, start: s } : { input: i, start: s, end: s + splitBytes }]);
      continue;
    }
    const cost = Math.max(size, openCost);
    if (cur.length && curBytes + cost > splitBytes) flush();
    cur.push({ input: i, start: 0 });
    curBytes += cost;
  }
  flush();
  return out;
}
