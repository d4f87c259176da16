/**
 * Range partitioning for total order (Hadoop's TotalOrderPartitioner): keys
 * below the first split point go to reduce 0, keys from point i-1 up to
 * point i to reduce i, and keys from the last point on to the last reduce.
 * Each reduce sorts its keys, so mr-out-0, mr-out-1, ... concatenated are
 * sorted. The points are sampled from the input at submit: the app's map
 * runs over a few evenly spaced pieces of the input, and the points are the
 * quantiles of the keys it emits.
 */
import type { InputPiece, MrApp, TaskContext } from './types.ts';
import { compareBytes, sortBytes } from './order.ts';
import { lineChunks, openInput } from './input.ts';
import { ERR_BAD_OPTIONS } from './errors.ts';

/** Pieces sampled by default, and bytes of whole lines read at each. */
export const RANGE_SAMPLES = 32;
export const RANGE_SAMPLE_BYTES = 32 << 10;
/** Keys kept from the sample (every n-th past it, so memory stays bounded). */
const MAX_SAMPLED_KEYS = 100_000;

/** The partition of `key`: how many points are at or below it (points sorted in byte order). */
export function rangePartition(points: readonly string[], key: string): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(points[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A point cut to at most `max` UTF-16 code units, never inside a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const c = s.charCodeAt(max - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

/**
 * Split points for `reduces` partitions from sampled keys: the keys at the
 * quantiles i/reduces, cut to `maxLength`, without repeats (fewer points
 * than reduces - 1 when the sample has few distinct keys: the last reduces
 * then get nothing).
 */
export function splitPoints(keys: string[], reduces: number, maxLength: number): string[] {
  const sorted = sortBytes(keys.slice());
  const out: string[] = [];
  if (sorted.length === 0) return out;
  for (let i = 1; i < reduces; i++) {
    const p = cut(sorted[Math.min(sorted.length - 1, Math.floor((i * sorted.length) / reduces))]!, maxLength);
    if (out.length === 0 || compareBytes(out[out.length - 1]!, p) < 0) out.push(p);
  }
  return out;
}

export interface SampleSpec {
  app: MrApp;
  options: Readonly<Record<string, string>>;
  /** The inputs (path, name, index) and their sizes in bytes. */
  inputs: { piece: InputPiece; size: number }[];
  reduces: number;
  cwd?: string | undefined;
  samples?: number | undefined;
  sampleBytes?: number | undefined;
  maxPointLength: number;
}

/**
 * Runs the app's map over `samples` evenly spaced pieces of the input (the
 * whole lines starting in sampleBytes from each spot) and returns the split
 * points of its keys. Only 'lines' apps can be sampled.
 */
export async function sampleSplitPoints(spec: SampleSpec): Promise<string[]> {
  const { app } = spec;
  if ((app.input ?? 'whole-file') !== 'lines') throw ERR_BAD_OPTIONS(`app ${app.name} reads whole files: the range partitioner samples line-oriented apps only`);
  const cwd = spec.cwd ?? process.cwd();
  const total = spec.inputs.reduce((n, f) => n + f.size, 0);
  const samples = Math.max(1, spec.samples ?? RANGE_SAMPLES);
  const bytes = spec.sampleBytes ?? RANGE_SAMPLE_BYTES;
  let keys: string[] = [];
  let seen = 0;
  let stride = 1;
  const emit = (k: string): void => {
    if (seen++ % stride !== 0) return;
    keys.push(String(k));
    if (keys.length >= MAX_SAMPLED_KEYS) {
      keys = keys.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
  };
  const ctx = (index: number, offset: number): TaskContext => ({ options: spec.options, cwd, count: () => undefined, input: { index, offset } });
  for (let s = 0; s < samples && total > 0; s++) {
    // The spot s/samples through the whole input, and the file it falls in.
    let at = Math.floor((s * total) / samples);
    const f = spec.inputs.find((x) => {
      if (at < x.size) return true;
      at -= x.size;
      return false;
    });
    if (!f) break;
    const fh = await openInput(f.piece, cwd);
    try {
      for await (const c of lineChunks(fh, at, Math.min(f.size, at + bytes), bytes)) {
        await app.map(f.piece.name ?? f.piece.path, c.buf, emit, ctx(f.piece.index ?? 0, c.offset));
      }
    } finally {
      await fh.close();
    }
  }
  return splitPoints(keys, spec.reduces, spec.maxPointLength);
}
