/** One benchmark: runs, prints as it goes, and returns its headline figures. */
export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Record<string, number | string>>;
}

export interface BenchContext {
  /** Smaller sizes / fewer repetitions (BENCH_QUICK=1 or --quick). */
  quick: boolean;
  log(line: string): void;
  /** Write CPU profiles, flame graphs and top-function summaries (--cpu-prof; MapReduce benches). */
  cpuProf: boolean;
  /**
   * Another checkout (BENCH_AGAINST=DIR, built) to run side by side with this
   * one in the same run, for before/after ratios (benches that spawn `mr`).
   */
  against: string | undefined;
}

/** Median of some numbers. */
export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
