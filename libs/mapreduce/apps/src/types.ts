/**
 * The contract between MapReduce apps, the executors that run them (worker
 * and `mr seq`), and the coordinator (which validates app names/options).
 */

/** Emits one intermediate key/value pair. */
export type Emit = (key: string, value: string) => void;

export interface TaskContext {
  /** Job options (e.g. {pattern} for grep), already validated. */
  options: Readonly<Record<string, string>>;
  /** Directory the app may use for side files (the lab apps use the process cwd). */
  cwd: string;
}

export interface MrApp {
  name: string;
  description: string;
  /** Checks job options; returns a message saying what is wrong, or undefined. */
  validateOptions?(options: Readonly<Record<string, string>>): string | undefined;
  /**
   * Map over one whole input file. `filename` is the input path as given in
   * the job; `contents` its raw bytes (apps decide how to decode).
   */
  map(filename: string, contents: Buffer, emit: Emit, ctx: TaskContext): void | Promise<void>;
  /** Reduce all values of one key to the output value (`key value` line). */
  reduce(key: string, values: string[], ctx: TaskContext): string | Promise<string>;
  /**
   * Optional combiner, run on each map task's output per key before it is
   * written. Must be such that reduce(combine(parts)) == reduce(all values).
   * The executors may call it zero or more times per key (they skip keys
   * with a single value).
   */
  combine?(key: string, values: string[]): string[];
  /**
   * Optional partitioner (the paper's user-defined partitioning function),
   * returning 0..reduces-1. Default: partitionOf (the lab's ihash % reduces).
   */
  partition?(key: string, reduces: number): number;
}

export interface MapTaskSpec {
  app: MrApp;
  options: Readonly<Record<string, string>>;
  /** Input file path as given in the job (passed to map as filename unless `name` is set). */
  input: string;
  /** The file name map sees, when it differs from the path read (e.g. relative as the user typed it). */
  name?: string | undefined;
  /** Map task number: intermediate files are named mr-<mapIndex>-<r>. */
  mapIndex: number;
  reduces: number;
  /** Directory to write the intermediate files into (created if missing). */
  outputDir: string;
  /** cwd for app side files; default process.cwd(). */
  cwd?: string;
}

export interface MapTaskResult {
  /** Intermediate files written (absolute), one per reduce partition, index = partition. */
  files: string[];
  counters: Record<string, number>;
}

export interface ReduceTaskSpec {
  app: MrApp;
  options: Readonly<Record<string, string>>;
  /** Partition number: output file is mr-out-<reduceIndex>. */
  reduceIndex: number;
  /** Intermediate files of this partition, one per map task. */
  inputs: string[];
  /** Directory for mr-out-<reduceIndex> (temp file + atomic rename). */
  outputDir: string;
  cwd?: string;
}

export interface ReduceTaskResult {
  /** The output file (absolute). */
  file: string;
  counters: Record<string, number>;
}
