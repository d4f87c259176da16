/**
 * Where a worker's tasks run. The user's map/reduce code must never block the
 * worker's protocol (polls, heartbeats, reports): with `ThreadRunner` each
 * slot runs its tasks in its own thread (node:worker_threads), so a map that
 * computes for minutes leaves the main thread free to heartbeat, and a task
 * the coordinator cancels is stopped by terminating its thread. `InlineRunner`
 * runs tasks on the main thread (tests with stand-in executors).
 */
import { readdir, rm } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import type { InputPiece, InputRecord, MapTaskResult, MapTaskSpec, MrApp, PartitionerSpec, ReduceTaskResult, ReduceTaskSpec } from '@mr/mapreduce-apps';
import { RecordSlot } from './record-slot.ts';
import { ERR_TASK_CANCELLED, ERR_TASK_THREAD, ERR_UNKNOWN_APP } from './errors.ts';

/** What the worker runs tasks with in-process (the apps library, or a stand-in in tests). */
export interface Executors {
  getApp(name: string): MrApp | undefined | Promise<MrApp | undefined>;
  runMapTask(spec: MapTaskSpec): Promise<MapTaskResult>;
  runReduceTask(spec: ReduceTaskSpec): Promise<ReduceTaskResult>;
}

interface Common {
  app: string;
  options: Record<string, string>;
  outputDir: string;
  cwd: string;
  /** Unique per attempt: temporary files carry it, so a killed attempt's leftovers can be removed. */
  tempTag: string;
  /** False: the job turned the app's combiner off. */
  combine?: boolean | undefined;
  /** The job skips bad records (the assignment's skip): records to leave out, and whether map goes per record. */
  skip?: { perRecord: boolean; records: InputRecord[] } | undefined;
}
export type TaskRequest =
  | (Common & { kind: 'map'; pieces: InputPiece[]; mapIndex: number; reduces: number; partitioner?: PartitionerSpec | undefined })
  | (Common & { kind: 'reduce'; reduceIndex: number; inputs: string[]; spillDir?: string | undefined });

export interface TaskResult {
  files: string[];
  counters: Record<string, number>;
}

export interface TaskRunner {
  /** Starts what the slots need (threads load the apps before the first task). */
  start(slots: number): void;
  run(slot: number, req: TaskRequest): Promise<TaskResult>;
  /** Stops the slot's running task (its run() rejects MR_ERR_TASK_CANCELLED) and removes its temporary files. */
  cancel(slot: number): Promise<void>;
  /** Work the slot's tasks did so far (bytes and records processed): grows while a task makes progress. */
  progress(slot: number): number;
  /** The record the slot's task's user code is on (tasks that skip bad records), or undefined. */
  record(slot: number): InputRecord | undefined;
  close(): Promise<void>;
}

/** Runs a request with the given executors (in this thread); `at` is told each record user code is called on (tasks that skip bad records). */
export async function execute(executors: Executors, req: TaskRequest, progress?: (units: number) => void, at?: (r: InputRecord) => void): Promise<TaskResult> {
  const app = await executors.getApp(req.app);
  if (!app) throw ERR_UNKNOWN_APP(req.app);
  const skip = req.skip && { ...req.skip, at };
  if (req.kind === 'map') {
    const r = await executors.runMapTask({
      app, options: req.options, pieces: req.pieces, mapIndex: req.mapIndex, reduces: req.reduces, outputDir: req.outputDir, cwd: req.cwd, tempTag: req.tempTag, progress,
      combine: req.combine, partitioner: req.partitioner, skip,
    });
    return { files: r.files, counters: r.counters };
  }
  const r = await executors.runReduceTask({
    app, options: req.options, reduceIndex: req.reduceIndex, inputs: req.inputs, outputDir: req.outputDir, cwd: req.cwd, tempTag: req.tempTag, spillDir: req.spillDir, progress,
    combine: req.combine, skip,
  });
  return { files: [r.file], counters: r.counters };
}

/** Runs tasks on the calling thread: app code that computes blocks the worker's protocol meanwhile. */
export class InlineRunner implements TaskRunner {
  readonly #progress: number[] = [];
  readonly #record: (InputRecord | undefined)[] = [];
  constructor(private readonly executors: Executors) {}
  start(): void {}
  run(slot: number, req: TaskRequest): Promise<TaskResult> {
    this.#record[slot] = undefined;
    return execute(this.executors, req, (n) => (this.#progress[slot] = (this.#progress[slot] ?? 0) + n), (r) => (this.#record[slot] = r));
  }
  progress(slot: number): number {
    return this.#progress[slot] ?? 0;
  }
  record(slot: number): InputRecord | undefined {
    return this.#record[slot];
  }
  async cancel(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Removes the temporary files (`.tmp-<name>-<tag>`) a killed attempt left in its output directory. */
async function removeTemps(req: TaskRequest): Promise<void> {
  const dir = resolvePath(req.cwd, req.outputDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith('.tmp-') && n.endsWith(`-${req.tempTag}`)).map((n) => rm(`${dir}/${n}`, { force: true })));
}

type Reply = { id: number; ok: true; result: TaskResult } | { id: number; ok: false; error: { message: string; code?: string; statusCode?: number; retryable?: boolean; record?: InputRecord } };

interface Pending {
  id: number;
  req: TaskRequest;
  resolve: (r: TaskResult) => void;
  reject: (e: Error) => void;
}

// Compiled (dist/*.js, what every bin runs) the thread starts at thread-main.js
// itself; from the TypeScript sources (tests under tsx) thread-entry.mjs first
// registers tsx in the thread.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './thread-entry.mjs' : './thread-main.js', import.meta.url);

class SlotThread {
  #thread: Thread | undefined;
  #pending: Pending | undefined;
  #seq = 0;
  #closed = false;
  /** The slot's progress counter, shared with its thread (which adds to it as its tasks work); kept across threads. */
  readonly #progress = new BigInt64Array(new SharedArrayBuffer(8));
  /** The record its task's user code is on, written by the thread (tasks that skip bad records). */
  readonly #record = new RecordSlot();
  constructor(private readonly opts: ThreadRunnerOptions) {}

  get progress(): number {
    return Number(Atomics.load(this.#progress, 0));
  }

  get record(): InputRecord | undefined {
    return this.#record.read();
  }

  #ensure(): Thread {
    if (this.#thread) return this.#thread;
    const t = new Thread(ENTRY, {
      workerData: { pluginDir: this.opts.pluginDir, progress: this.#progress, record: this.#record.buffer },
      // Stack traces from app code point at the .ts sources through the maps beside the JS.
      ...(FROM_SOURCE ? {} : { execArgv: [...process.execArgv, '--enable-source-maps'] }),
      ...(this.opts.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: this.opts.maxHeapMb } } : {}),
    });
    t.unref();
    t.on('message', (m: Reply) => {
      const p = this.#pending;
      if (!p || p.id !== m.id) return;
      this.#pending = undefined;
      if (m.ok) p.resolve(m.result);
      else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code, statusCode: m.error.statusCode, retryable: m.error.retryable, ...(m.error.record ? { record: m.error.record } : {}) }));
    });
    t.on('error', (err) => {
      // An exception the app threw outside the task's promise chain, or the heap limit: the thread is gone.
      const p = this.#pending;
      this.#pending = undefined;
      if (this.#thread === t) this.#thread = undefined;
      // It died in user code on a record (a throw outside the task's promises, the heap limit): that record is named.
      const record = p?.req.skip ? this.#record.read() : undefined;
      p?.reject(Object.assign(ERR_TASK_THREAD(err.message), record ? { record } : {}));
    });
    t.on('exit', (code) => {
      if (this.#thread === t) this.#thread = undefined;
      const p = this.#pending;
      if (!p) return;
      this.#pending = undefined;
      // App code called process.exit (the lab's crash app): it meant the worker process.
      this.opts.onAppExit?.(code);
      p.reject(ERR_TASK_THREAD(`app code ended the task's thread (exit code ${code})`));
    });
    this.#thread = t;
    return t;
  }

  warm(): void {
    this.#ensure();
  }

  run(req: TaskRequest): Promise<TaskResult> {
    if (this.#pending) return Promise.reject(new Error('slot busy'));
    const t = this.#ensure();
    const id = ++this.#seq;
    this.#record.clear();
    return new Promise((resolve, reject) => {
      this.#pending = { id, req, resolve, reject };
      t.postMessage({ id, req });
    });
  }

  async cancel(): Promise<void> {
    const t = this.#thread;
    const p = this.#pending;
    if (!t || !p) return;
    this.#pending = undefined;
    this.#thread = undefined;
    await t.terminate();
    await removeTemps(p.req);
    p.reject(ERR_TASK_CANCELLED());
    // The replacement starts loading now, so the slot's next task does not wait for it (nor show no progress meanwhile).
    if (!this.#closed) this.#ensure();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const t = this.#thread;
    this.#thread = undefined;
    const p = this.#pending;
    this.#pending = undefined;
    if (t) await t.terminate();
    if (p) {
      await removeTemps(p.req);
      p.reject(ERR_TASK_CANCELLED());
    }
  }
}

export interface ThreadRunnerOptions {
  /** Plugin apps to load in every thread (the worker's --plugins). */
  pluginDir?: string | undefined;
  /** Heap limit per task thread (MiB); past it the task fails (retryable) instead of the worker. */
  maxHeapMb?: number | undefined;
  /** Called when app code ends its thread with process.exit(code) during a task. */
  onAppExit?: ((code: number) => void) | undefined;
}

/** One thread per slot, reused from task to task; a cancelled task's thread is terminated and replaced. */
export class ThreadRunner implements TaskRunner {
  readonly #slots: SlotThread[] = [];
  constructor(private readonly opts: ThreadRunnerOptions = {}) {}

  #slot(i: number): SlotThread {
    while (this.#slots.length <= i) this.#slots.push(new SlotThread(this.opts));
    return this.#slots[i]!;
  }

  start(slots: number): void {
    for (let i = 0; i < slots; i++) this.#slot(i).warm();
  }

  run(slot: number, req: TaskRequest): Promise<TaskResult> {
    return this.#slot(slot).run(req);
  }

  cancel(slot: number): Promise<void> {
    return this.#slot(slot).cancel();
  }

  progress(slot: number): number {
    return this.#slot(slot).progress;
  }

  record(slot: number): InputRecord | undefined {
    return this.#slot(slot).record;
  }

  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.close()));
  }
}
