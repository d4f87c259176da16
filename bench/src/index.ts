export type { Benchmark, BenchContext } from './benchmark.ts';
export { median } from './benchmark.ts';
export { seqWc, makeCorpus } from './seq-wc.ts';
export { vmCpu } from './vm-cpu.ts';
