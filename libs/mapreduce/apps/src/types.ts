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
  /**
   * Where the current map call's contents come from: the input's position in
   * the job (0-based), the byte offset of `contents` in the file, and, for
   * apps that are not splittable, the 1-based number of its first line.
   */
  input?: { index: number; offset: number; line?: number | undefined } | undefined;
  /**
   * Adds n (default 1; a safe integer, may be negative) to the user counter
   * `name` (1-64 characters [A-Za-z0-9_.-], a letter first; at most 32 names
   * per task). The job shows it as `user.<name>`, counted once per task: only
   * the committed attempt's counts are added, however many attempts ran.
   */
  count(name: string, n?: number): void;
}

/**
 * How an app takes its input.
 * - 'whole-file' (the default, the lab's contract): map is called once per
 *   input file with its whole contents. Such a file is never divided or
 *   combined with others: one file, one map task (memory: the file's size).
 * - 'lines': map is called many times per file, each time with a chunk of
 *   whole lines (every chunk but a file's last ends with \n), possibly from
 *   different map tasks. Its output must not depend on how a file's lines are
 *   cut into chunks. Files are divided into splits (unless `splittable` is
 *   false) and small files are combined into one split.
 */
export type InputMode = 'whole-file' | 'lines';

export interface MrApp {
  name: string;
  description: string;
  /** Default 'whole-file'. */
  input?: InputMode;
  /** With input 'lines': may one file be divided among map tasks (default true)? */
  splittable?: boolean;
  /** Checks job options; returns a message saying what is wrong, or undefined. */
  validateOptions?(options: Readonly<Record<string, string>>): string | undefined;
  /**
   * Map over one whole input file ('whole-file' apps) or a chunk of its lines
   * ('lines' apps). `filename` is the input's name as given in the job;
   * `contents` raw bytes (apps decide how to decode).
   */
  map(filename: string, contents: Buffer, emit: Emit, ctx: TaskContext): void | Promise<void>;
  /** Reduce all values of one key to the output value (`key value` line). */
  reduce(key: string, values: string[], ctx: TaskContext): string | Promise<string>;
  /**
   * Optional combiner, run on each map task's output per key before it is
   * written, and on a reduce's groups when they are spilled to sorted runs.
   * Must be such that reduce(combine(parts)) == reduce(all values), and
   * combine(a ++ combine(b)) must be valid input again. The executors may
   * call it zero or more times per key (they skip keys with a single value).
   */
  combine?(key: string, values: string[]): string[];
  /**
   * Optional partitioner (the paper's user-defined partitioning function),
   * returning 0..reduces-1. Default: partitionOf (the lab's ihash % reduces).
   */
  partition?(key: string, reduces: number): number;
}

/** One input file's part of a map task: the lines that start in [start, end). */
export interface InputPiece {
  /** The file to read (relative to the task's cwd). */
  path: string;
  /** The file name map sees; default `path`. */
  name?: string | undefined;
  /** The input's position in the job (TaskContext.input.index); default 0. */
  index?: number | undefined;
  /** First byte of the range; default 0. A line starting before it belongs to the previous split. */
  start?: number | undefined;
  /** End of the range (exclusive); default the end of the file. The line that starts before it is read to its end. */
  end?: number | undefined;
  /**
   * `path` is a real path (symlinks resolved when the job was accepted): the
   * opened file must still be that path, or the task fails (MR_INPUT_ESCAPED).
   */
  verifyRealPath?: boolean | undefined;
}

export interface MapTaskSpec {
  app: MrApp;
  options: Readonly<Record<string, string>>;
  /** The input pieces, read in order. When absent, `input` (and `name`) as one whole file. */
  pieces?: InputPiece[] | undefined;
  /** Input file path as given in the job (passed to map as filename unless `name` is set). */
  input?: string | undefined;
  /** The file name map sees, when it differs from the path read (e.g. relative as the user typed it). */
  name?: string | undefined;
  /** Map task number: intermediate files are named mr-<mapIndex>-<r>. */
  mapIndex: number;
  reduces: number;
  /** Directory to write the intermediate files into (created if missing). */
  outputDir: string;
  /** cwd for app side files; default process.cwd(). */
  cwd?: string;
  /** Memory budget for buffered map output, bytes (see exec.ts MEMORY). */
  memoryBytes?: number | undefined;
  /** Temporary files get this tag in their names (so a killed attempt's leftovers can be found). */
  tempTag?: string | undefined;
  /** False: do not run the app's combiner (default: run it when the app has one). */
  combine?: boolean | undefined;
  /** The job's partitioner, when not the app's own (absent: app.partition, else the hash). */
  partitioner?: PartitionerSpec | undefined;
  /** Called as the task works (input bytes read, records read, groups reduced): the worker reports the sum as progress. */
  progress?: ((units: number) => void) | undefined;
  /** The job skips bad records: user code's failures name their record (error.record), these records are skipped. */
  skip?: SkipSpec | undefined;
}

/**
 * An input record as the worker protocol names it (RecordRef): a map's line
 * ('lines' apps) or whole file, with `records` the number of records in the
 * user call (1: exactly this one); a reduce's key group, by its number in the
 * task's sorted key order (key cut to 256 UTF-8 bytes, for people).
 */
export type InputRecord =
  | { phase: 'map'; input: number; offset: number; bytes: number; records: number; line?: number | undefined }
  | { phase: 'reduce'; group: number; key: string };

/** Bad-record skipping (paper §4.6) for a task of a job that asks for it. */
export interface SkipSpec {
  /** Call map once per record (line or whole file) instead of with chunks of lines, so a failure names its record. */
  perRecord: boolean;
  /** Records not handed to user code (counted in `skippedRecords`). */
  records: readonly InputRecord[];
  /** Told the record before each call of user code: where it is, should it hang. */
  at?: ((r: InputRecord) => void) | undefined;
}

/** A partitioner a job chose: the lab's hash, or range split points (sorted in byte order). */
export type PartitionerSpec = { type: 'hash' } | { type: 'range'; points: string[] };

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
  /** Memory budget for grouping reduce input, bytes; past it sorted runs are spilled to `spillDir`. */
  memoryBytes?: number | undefined;
  /** Directory for spilled runs (a private subdirectory is made and removed); default the OS temp dir. */
  spillDir?: string | undefined;
  /** Temporary files get this tag in their names (so a killed attempt's leftovers can be found). */
  tempTag?: string | undefined;
  /** False: do not run the app's combiner on spilled runs (default: run it when the app has one). */
  combine?: boolean | undefined;
  /** Called as the task works (input bytes read, records read, groups reduced): the worker reports the sum as progress. */
  progress?: ((units: number) => void) | undefined;
  /** The job skips bad records: user code's failures name their record (error.record), these records are skipped. */
  skip?: SkipSpec | undefined;
}

export interface ReduceTaskResult {
  /** The output file (absolute). */
  file: string;
  counters: Record<string, number>;
}
