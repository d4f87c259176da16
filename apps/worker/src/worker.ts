import { rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { context, trace, SpanStatusCode, type Span } from '@opentelemetry/api';
import { extractContext, tracer } from '@mr/observability/telemetry';
import { hasCode } from '@mr/errors';
import { Compile } from 'typebox/compile';
import { RecordRef, type MapAssignment, type PollReply, type ReduceAssignment, type TaskAck, type TaskComplete, type TaskRef, type WorkerRegistered } from '@mr/mapreduce-protocol';
import type { Registry } from 'prom-client';
import { CoordinatorClient, type CoordinatorClientOptions } from './client.ts';
import { workerMetrics, type WorkerMetrics } from './metrics.ts';
import { ERR_COORDINATOR_UNAVAILABLE, ERR_NO_SHUFFLE_SERVER, ERR_SHUFFLE_FULL, ERR_UNKNOWN_APP, ERR_WORKER_CONFIG } from './errors.ts';
import type { IntermediateStore, IntermediateStoreOptions } from './intermediate-store.ts';
import { ShuffleFetcher, type ShuffleFetcherOptions } from './shuffle-fetch.ts';
import { InlineRunner, ThreadRunner, type Executors, type TaskRequest, type TaskRunner } from './task-runner.ts';

export type { Executors } from './task-runner.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, message: string) => void;

export interface WorkerOptions {
  /** Coordinator base URL. */
  coordinator: string;
  token?: string | undefined;
  /** Tasks run at once. Default 1. */
  slots?: number;
  /** Directory for the apps' side files (the lab apps write into their cwd). Default process.cwd(). */
  cwd?: string;
  /**
   * Keep retrying an unreachable coordinator this long (it may be restarting),
   * then exit with code 1. Default 300000 (5 minutes).
   */
  unreachableMs?: number;
  /** First delay between reconnection attempts; doubles (with jitter) up to reconnectMaxMs. Default 100. */
  reconnectMinMs?: number;
  /**
   * Longest delay between reconnection attempts. Default 2000: below the
   * coordinator's heartbeat timeout (5 s), so that a restarted coordinator
   * hears from a worker that held leases before it declares it lost.
   */
  reconnectMaxMs?: number;
  /** A label for the coordinator's worker list. */
  name?: string;
  /** Where log lines go. Default: warn and error to stderr. */
  log?: LogFn;
  /** Stand-in executors, run on the main thread (tests). Default: the built-in apps in task threads. */
  executors?: Executors;
  /**
   * 'threads' (default without `executors`): each slot runs its tasks in its own
   * thread, so app code never delays heartbeats, and a cancelled task is stopped.
   * 'inline': on the main thread (app code that computes blocks the protocol).
   */
  execution?: 'threads' | 'inline';
  /** Plugin apps the task threads load (the CLI's --plugins). */
  pluginDir?: string | undefined;
  /** Heap limit per task thread in MiB (a task past it fails, retryable). Default 4096. */
  taskHeapMb?: number;
  /** Directory for reduce spill files (private subdirectories, removed after each task). Default the OS temp dir. */
  spillDir?: string | undefined;
  /** Extra options of the HTTP client (timeouts, retries). */
  client?: Omit<CoordinatorClientOptions, 'url' | 'token'>;
  /** Where this worker's metrics go (see metrics.ts; `mr worker --metrics-port` serves them). Default: none. */
  registry?: Registry | undefined;
  /**
   * Worker shuffle: keep served maps' output in `dir` and serve it at host:port
   * (advertised as `advertise`); tokens come from `token` (MR_TOKEN) and
   * `workerToken`. Absent: this worker serves no intermediates (served maps fail
   * retryably and go to other workers).
   */
  shuffle?: Omit<IntermediateStoreOptions, 'token' | 'workerToken'> | undefined;
  /** The worker credential (MR_WORKER_TOKEN) for the shuffle: served on our server, sent to others'. Default: `token`. */
  workerToken?: string | undefined;
  /** Fetch retries and parallelism of served reduces. */
  fetch?: Omit<ShuffleFetcherOptions, 'workerToken'>;
  /** How often the worker asks which jobs it keeps output for are over (then deletes it). Default 2000. */
  heldCheckMs?: number;
}

export interface WorkerExit {
  /** 0: told to exit or stopped; 1: coordinator unreachable; 2: coordinator rejected us; 3: token refused. */
  code: number;
  reason: string;
}

interface Running {
  ref: TaskRef;
  slot: number;
  abandoned: boolean;
  /** Aborts what the main thread does for the task (a served reduce's fetches). */
  abort: AbortController;
  /** Bytes a served reduce fetched (its progress before the reduce runs). */
  fetched: number;
  /** The job skips bad records: heartbeats name the record the task's user code is on. */
  skip: boolean;
}

const checkRecord = Compile(RecordRef);
/** The record a failed task's error names (user code failed on it; jobs that skip bad records), if well-formed. */
function failedRecord(err: unknown): RecordRef | undefined {
  if (typeof err !== 'object' || err === null || !('record' in err)) return undefined;
  const r = err.record;
  return checkRecord.Check(r) ? r : undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A plain stderr logger that prints the levels at or above `min`. */
export function stderrLog(min: LogLevel = 'warn', prefix = 'mr worker'): LogFn {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const floor = order.indexOf(min);
  return (level, message) => {
    if (order.indexOf(level) >= floor) process.stderr.write(`${prefix}: ${message}\n`);
  };
}

/**
 * The polling worker: registers, runs `slots` long-poll loops, runs each
 * assigned task through the executors, reports complete/fail with the
 * attempt, heartbeats while tasks run. run() resolves when the coordinator
 * says exit, when it has been unreachable for unreachableMs, or after stop().
 */
export class Worker {
  readonly #client: CoordinatorClient;
  readonly #slots: number;
  readonly #cwd: string;
  readonly #unreachableMs: number;
  readonly #reconnectMinMs: number;
  readonly #reconnectMaxMs: number;
  readonly #name: string | undefined;
  readonly #log: LogFn;
  readonly #runner: TaskRunner;
  readonly #spillDir: string | undefined;
  readonly #abort = new AbortController();
  readonly #running = new Map<string, Running>();
  readonly #tracer = tracer('mr-worker');
  readonly #metrics: WorkerMetrics | undefined;

  #registration: Promise<WorkerRegistered & { workerId: string }> | undefined;
  #unreachableSince: number | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #heartbeatMs = 2000;
  #exit: WorkerExit | undefined;
  /** Set by stop() before it aborts the polls, so an aborted poll is not taken for an error. */
  #stopping = false;
  #resolveExit!: (e: WorkerExit) => void;
  readonly #exited: Promise<WorkerExit>;
  #tasksDone = 0;
  /** Completions waiting to be sent: sent together while an earlier send is in flight. */
  #completions: { body: TaskComplete; resolve: (a: TaskAck) => void; reject: (e: unknown) => void }[] = [];
  #completing = false;
  /** Slots (thread indices) not running a task, and the poll loop's wake-up when one frees. */
  #freeSlots: number[] = [];
  #slotFreed: (() => void) | undefined;
  readonly #shuffleOptions: WorkerOptions['shuffle'];
  readonly #token: string | undefined;
  readonly #workerToken: string | undefined;
  readonly #fetcher: ShuffleFetcher;
  readonly #heldCheckMs: number;
  #store: IntermediateStore | undefined;
  /** The store's start (its server and the service kit load in the background after registration: a worker that runs only shared-shuffle jobs starts as fast as before). */
  #storeStart: Promise<IntermediateStore | undefined> | undefined;
  #heldTimer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: WorkerOptions) {
    if (typeof opts !== 'object' || opts === null) throw ERR_WORKER_CONFIG('options must be an object');
    const slots = opts.slots ?? 1;
    if (!Number.isInteger(slots) || slots < 1 || slots > 64) throw ERR_WORKER_CONFIG(`slots must be an integer in [1, 64], got ${String(opts.slots)}`);
    const unreachableMs = opts.unreachableMs ?? 300_000;
    if (!Number.isFinite(unreachableMs) || unreachableMs < 0) throw ERR_WORKER_CONFIG(`unreachableMs must be >= 0, got ${String(opts.unreachableMs)}`);
    const reconnectMinMs = opts.reconnectMinMs ?? 100;
    if (!Number.isFinite(reconnectMinMs) || reconnectMinMs < 1) throw ERR_WORKER_CONFIG(`reconnectMinMs must be >= 1, got ${String(opts.reconnectMinMs)}`);
    this.#slots = slots;
    this.#metrics = opts.registry ? workerMetrics(opts.registry, slots, () => this.#running.size) : undefined;
    this.#freeSlots = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.#unreachableMs = unreachableMs;
    this.#reconnectMinMs = reconnectMinMs;
    const reconnectMaxMs = opts.reconnectMaxMs ?? Math.max(2000, reconnectMinMs);
    if (!Number.isFinite(reconnectMaxMs) || reconnectMaxMs < reconnectMinMs) throw ERR_WORKER_CONFIG(`reconnectMaxMs must be >= reconnectMinMs, got ${String(opts.reconnectMaxMs)}`);
    this.#reconnectMaxMs = reconnectMaxMs;
    this.#cwd = resolvePath(opts.cwd ?? process.cwd());
    this.#name = opts.name;
    this.#log = opts.log ?? stderrLog('warn');
    const execution = opts.execution ?? (opts.executors ? 'inline' : 'threads');
    if (execution !== 'threads' && execution !== 'inline') throw ERR_WORKER_CONFIG(`execution must be 'threads' or 'inline', got ${String(opts.execution)}`);
    if (execution === 'inline') this.#runner = new InlineRunner(opts.executors ?? lazyExecutors());
    else {
      if (opts.executors) throw ERR_WORKER_CONFIG("executors run inline: give execution 'inline' or no executors");
      this.#runner = new ThreadRunner({
        pluginDir: opts.pluginDir,
        maxHeapMb: opts.taskHeapMb ?? 4096,
        // The lab's crash app calls process.exit in map/reduce: that ends the worker, as in the lab.
        onAppExit: (code) => process.exit(code),
      });
    }
    this.#spillDir = opts.spillDir;
    this.#shuffleOptions = opts.shuffle;
    this.#token = opts.token;
    this.#workerToken = opts.workerToken ?? opts.token;
    this.#fetcher = new ShuffleFetcher({ ...opts.fetch, workerToken: this.#workerToken });
    this.#heldCheckMs = opts.heldCheckMs ?? 2000;
    if (!Number.isFinite(this.#heldCheckMs) || this.#heldCheckMs < 10) throw ERR_WORKER_CONFIG(`heldCheckMs must be >= 10, got ${String(opts.heldCheckMs)}`);
    this.#client = new CoordinatorClient({ connections: slots + 2, ...opts.client, url: opts.coordinator, token: opts.token });
    this.#exited = new Promise((r) => (this.#resolveExit = r));
  }

  get coordinatorUrl(): string {
    return this.#client.url;
  }

  /** Tasks this worker finished and reported (accepted or not). */
  get tasksDone(): number {
    return this.#tasksDone;
  }

  /** The base URL this worker serves map output at (worker shuffle), once run() started it. */
  get shuffleLocation(): string | undefined {
    return this.#store?.location;
  }

  /**
   * Starts the intermediate store and its server once (worker shuffle). A
   * store that cannot start (address in use, bad directory) ends the worker
   * (code 2): it could not serve what it is asked to.
   */
  #startStore(): Promise<IntermediateStore | undefined> {
    const o = this.#shuffleOptions;
    if (!o) return Promise.resolve(undefined);
    this.#storeStart ??= import('./intermediate-store.ts')
      .then((m) => m.IntermediateStore.open({ ...o, token: this.#token, workerToken: this.#workerToken }))
      .then(
        async (store) => {
          if (this.#exit) {
            await store.close();
            return undefined;
          }
          this.#store = store;
          this.#log('info', `serving map output at ${store.location} from ${store.root}`);
          this.#heldTimer = setInterval(() => void this.#checkHeld(), this.#heldCheckMs);
          this.#heldTimer.unref();
          return store;
        },
        (err: unknown) => {
          const reason = `cannot start the shuffle server: ${String((err as { message?: unknown }).message)}`;
          this.#log('error', reason);
          this.#finish({ code: 2, reason });
          return undefined;
        },
      );
    return this.#storeStart;
  }

  async run(): Promise<WorkerExit> {
    this.#runner.start(this.#slots);
    void this.#pollLoop().catch((err: unknown) => {
      this.#finish({ code: 1, reason: `worker loop crashed: ${(err as Error)?.stack ?? String(err)}` });
    });
    const exit = await this.#exited;
    this.#stopHeartbeats();
    await this.#storeStart;
    if (this.#heldTimer) clearInterval(this.#heldTimer);
    await this.#runner.close();
    // The worker's map output goes with it (a killed worker's is removed by the next one started on the same directory).
    await this.#store?.close().catch((err: unknown) => this.#log('warn', `cannot remove the intermediate store: ${String((err as { message?: unknown }).message)}`));
    await this.#fetcher.close();
    await this.#client.close();
    return exit;
  }

  /** Deletes the map output of jobs the coordinator says are over (success, failure, cancel, or forgotten). */
  async #checkHeld(): Promise<void> {
    const store = this.#store;
    const reg = this.#registration;
    if (!store || !reg || store.jobs.length === 0 || this.#exit) return;
    try {
      const { workerId } = await reg;
      const { drop } = await this.#client.heldIntermediates(workerId, { jobs: store.jobs.slice(0, 1000) });
      for (const jobId of drop) {
        await store.drop(jobId);
        this.#log('debug', `job ${jobId} is over: its map output here was deleted`);
      }
    } catch (err) {
      this.#log('debug', `intermediates check failed: ${String((err as { message?: unknown }).message)}`);
    }
  }

  /**
   * Stops polling; tasks still running are reported as failed (retryable)
   * so the coordinator can hand them out again at once. run() resolves 0.
   */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.#exit || this.#stopping) return;
    this.#stopping = true;
    const reg = this.#registration;
    const running = [...this.#running.values()];
    for (const r of running) {
      r.abandoned = true;
      r.abort.abort();
    }
    this.#abort.abort();
    if (reg && running.length) {
      const id = await reg.then((r) => r.workerId).catch(() => undefined);
      if (id) {
        await Promise.allSettled(
          running.map((r) => this.#client.fail(id, { ...r.ref, error: `worker ${reason}`, retryable: true })),
        );
      }
    }
    this.#finish({ code: 0, reason });
  }

  #finish(e: WorkerExit): void {
    if (this.#exit) return;
    this.#exit = e;
    this.#abort.abort();
    this.#slotFreed?.();
    this.#resolveExit(e);
  }

  async #workerId(): Promise<string> {
    this.#registration ??= this.#retrying('register', () =>
      this.#client.register({ pid: process.pid, host: hostname(), slots: this.#slots, ...(this.#name ? { name: this.#name } : {}) }),
    ).then((r) => {
      this.#heartbeatMs = Math.max(50, r.heartbeatIntervalMs);
      this.#log('info', `registered as ${r.workerId} with ${this.#client.url} (${this.#slots} slot${this.#slots > 1 ? 's' : ''})`);
      void this.#startStore();
      return r;
    });
    try {
      return (await this.#registration).workerId;
    } catch (err) {
      this.#registration = undefined;
      throw err;
    }
  }

  async #pollTimeoutMs(): Promise<number> {
    return (await this.#registration!).pollTimeoutMs;
  }

  /**
   * Runs `fn` until it succeeds. While the coordinator is unavailable it
   * retries with backoff; once unavailable for unreachableMs it ends the
   * worker (code 1). Other errors end the worker with their exit code.
   * Throws Stopped when the worker is ending.
   */
  async #retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = this.#reconnectMinMs;
    while (true) {
      if (this.#exit || this.#stopping) throw new Stopped();
      try {
        const v = await fn();
        this.#unreachableSince = undefined;
        return v;
      } catch (err) {
        if (this.#exit || this.#stopping) throw new Stopped();
        if (hasCode(err, ERR_COORDINATOR_UNAVAILABLE.code)) {
          const now = Date.now();
          this.#unreachableSince ??= now;
          const down = now - this.#unreachableSince;
          if (down >= this.#unreachableMs) {
            const secs = Math.round(this.#unreachableMs / 100) / 10;
            this.#log('error', `coordinator ${this.#client.url} unreachable for ${secs}s; exiting`);
            this.#finish({ code: 1, reason: `coordinator ${this.#client.url} unreachable for ${secs}s` });
            throw new Stopped();
          }
          // Equal jitter: workers that lost the coordinator together do not come back in lockstep.
          const wait = Math.round(delay / 2 + Math.random() * (delay / 2));
          if (down === 0) this.#log('warn', `${what}: coordinator ${this.#client.url} unavailable (${String((err as { message?: unknown }).message)}); retrying for up to ${Math.round(this.#unreachableMs / 1000)}s`);
          else this.#log('debug', `${what}: ${String((err as { message?: unknown }).message)}; retrying in ${wait} ms`);
          await sleep(Math.min(wait, Math.max(1, this.#unreachableMs - down)));
          delay = Math.min(delay * 2, this.#reconnectMaxMs);
          continue;
        }
        if (hasCode(err, 'MR_ERR_WORKER_UNKNOWN')) throw err;
        if (hasCode(err, 'MR_ERR_COORDINATOR_UNAUTHORIZED')) {
          this.#log('error', String((err as { message?: unknown }).message));
          this.#finish({ code: 3, reason: String((err as { message?: unknown }).message) });
          throw new Stopped();
        }
        if (hasCode(err, 'MR_ERR_COORDINATOR_REJECTED')) {
          this.#log('error', `${what}: ${String((err as { message?: unknown }).message)}`);
          this.#finish({ code: 2, reason: String((err as { message?: unknown }).message) });
          throw new Stopped();
        }
        throw err;
      }
    }
  }

  /**
   * One long poll at a time asks for as many tasks as there are free slots
   * (the coordinator answers a batch when free > 1); each task runs in its
   * slot while the next poll goes out. With every slot busy, no poll is sent
   * until one frees up (heartbeats keep the worker alive meanwhile).
   */
  async #pollLoop(): Promise<void> {
    while (!this.#exit && !this.#stopping) {
      if (this.#freeSlots.length === 0) {
        await new Promise<void>((r) => (this.#slotFreed = r));
        continue;
      }
      let reply: PollReply;
      const polledAt = Date.now();
      try {
        const id = await this.#workerId();
        const timeout = await this.#pollTimeoutMs();
        reply = await this.#retrying('poll', () => this.#client.poll(id, this.#freeSlots.length, timeout, this.#abort.signal));
      } catch (err) {
        if (err instanceof Stopped || this.#exit || this.#stopping) return;
        if (hasCode(err, 'MR_ERR_WORKER_UNKNOWN')) {
          this.#log('warn', 'the coordinator no longer knows this worker; registering again');
          this.#registration = undefined;
          continue;
        }
        throw err;
      }
      if (reply.type === 'wait') {
        // A coordinator holds polls; one that answers 'wait' at once must not make us spin.
        if (Date.now() - polledAt < 20) await sleep(50);
        continue;
      }
      if (reply.type === 'exit') {
        this.#log('info', `coordinator says exit: ${reply.reason}`);
        this.#finish({ code: 0, reason: reply.reason });
        return;
      }
      for (const a of reply.type === 'batch' ? reply.tasks : [reply]) {
        const slot = this.#freeSlots.pop();
        if (slot === undefined) throw new Error(`the coordinator handed out more tasks than the ${this.#slots} free slots asked for`);
        void this.#runTask(slot, a)
          .catch((err: unknown) => this.#finish({ code: 1, reason: `worker loop crashed: ${(err as Error)?.stack ?? String(err)}` }))
          .finally(() => {
            this.#freeSlots.push(slot);
            const wake = this.#slotFreed;
            this.#slotFreed = undefined;
            wake?.();
          });
      }
    }
  }

  async #runTask(slot: number, a: MapAssignment | ReduceAssignment): Promise<void> {
    const ref: TaskRef = { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt };
    const key = `${a.jobId}/${a.taskId}/${a.attempt}`;
    const entry: Running = { ref, slot, abandoned: false, skip: a.skip !== undefined, abort: new AbortController(), fetched: 0 };
    this.#running.set(key, entry);
    this.#startHeartbeats();
    this.#log('debug', `running ${a.type} ${a.taskId} attempt ${a.attempt} of job ${a.jobId}`);

    const parent = extractContext({ traceparent: a.traceparent, tracestate: a.tracestate });
    const span = this.#tracer.startSpan(
      `mr.task.${a.type}`,
      { attributes: { 'mr.job.id': a.jobId, 'mr.task.id': a.taskId, 'mr.task.attempt': a.attempt, 'mr.job.app': a.app, 'mr.task.type': a.type, 'mr.task.index': a.index } },
      parent,
    );
    const started = performance.now();
    let outcome: Executed | { ok: false; error: string; retryable: boolean; record?: RecordRef | undefined };
    try {
      outcome = await context.with(trace.setSpan(parent, span), () => this.#execute(slot, a, entry));
    } catch (err) {
      const e = err as Error & { retryable?: boolean };
      const retryable = hasCode(err, ERR_UNKNOWN_APP.code) ? false : e?.retryable !== false;
      const record = a.skip ? failedRecord(err) : undefined;
      outcome = { ok: false, error: (e?.message ?? String(err)).slice(0, 4000), retryable, ...(record ? { record } : {}) };
      recordError(span, e);
    } finally {
      this.#running.delete(key);
      if (this.#running.size === 0) this.#stopHeartbeats();
    }
    const durationMs = Math.max(0, performance.now() - started);
    span.setAttribute('mr.task.outcome', outcome.ok ? 'done' : 'failed');
    const abandoned = entry.abandoned || this.#exit !== undefined || this.#stopping;
    this.#metrics?.attempt(a.type, abandoned ? 'abandoned' : outcome.ok ? 'done' : 'failed', durationMs / 1000, outcome.ok ? outcome.counters : undefined);
    if (abandoned) {
      span.setAttribute('mr.task.abandoned', true);
      span.end();
      this.#log('debug', `${a.taskId} attempt ${a.attempt}: abandoned, not reported`);
      await this.#discard(a);
      return;
    }
    try {
      const id = await this.#workerId();
      span.setAttribute('mr.worker.id', id);
      const ack = outcome.ok
        ? await this.#complete({ ...ref, durationMs, files: outcome.files, counters: outcome.counters, ...(outcome.location ? { location: outcome.location } : {}) })
        : await this.#retrying('fail', () => this.#client.fail(id, { ...ref, error: outcome.error, retryable: outcome.retryable, ...(outcome.record ? { record: outcome.record } : {}) }));
      this.#tasksDone++;
      span.setAttribute('mr.task.accepted', ack.accepted);
      if (!ack.accepted || !outcome.ok) await this.#discard(a);
      else if (outcome.local && this.#store) await this.#store.committed(a.jobId, outcome.local);
      if (!ack.accepted) this.#log('debug', `${a.taskId} attempt ${a.attempt}: not accepted (${ack.reason ?? 'no reason'})`);
      else if (!outcome.ok) this.#log('warn', `${a.type} ${a.taskId} attempt ${a.attempt} failed: ${outcome.error}`);
    } catch (err) {
      if (!(err instanceof Stopped) && !hasCode(err, 'MR_ERR_WORKER_UNKNOWN')) throw err;
      // Our registration is gone: the coordinator re-issues the task on its own.
      if (hasCode(err, 'MR_ERR_WORKER_UNKNOWN')) this.#registration = undefined;
    } finally {
      span.end();
    }
  }

  /**
   * Reports a completion. One alone goes at once; those that finish while a
   * report is in flight go together in the next request (complete-batch),
   * so the coordinator steps them at once and fsyncs them once.
   */
  #complete(body: TaskComplete): Promise<TaskAck> {
    return new Promise<TaskAck>((resolve, reject) => {
      this.#completions.push({ body, resolve, reject });
      void this.#sendCompletions();
    });
  }

  async #sendCompletions(): Promise<void> {
    if (this.#completing) return;
    this.#completing = true;
    try {
      while (this.#completions.length) {
        const batch = this.#completions.splice(0, 64);
        try {
          const id = await this.#workerId();
          if (batch.length === 1) {
            const ack = await this.#retrying('complete', () => this.#client.complete(id, batch[0]!.body));
            batch[0]!.resolve(ack);
          } else {
            const acks = await this.#retrying('complete', () => this.#client.completeBatch(id, batch.map((b) => b.body)));
            batch.forEach((b, i) => b.resolve(acks[i] ?? { accepted: false, reason: 'unknown-task' }));
          }
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.#completing = false;
    }
  }

  /**
   * A map attempt that failed, was abandoned or lost to another leaves no
   * files behind: its attempt-private directory goes, and the job's work
   * directory too when that was the last thing in it (a finished job's
   * directory the coordinator removed must not come back).
   */
  async #discard(a: MapAssignment | ReduceAssignment): Promise<void> {
    if (a.type !== 'map') return;
    if (a.serve) {
      if (this.#store) await rm(this.#store.attemptDir(a.jobId, a.outputDir), { recursive: true, force: true }).catch(() => {});
      return;
    }
    const dir = resolvePath(this.#cwd, a.outputDir);
    try {
      await rm(dir, { recursive: true, force: true });
      await rmdir(dirname(dir)).catch(() => {});
    } catch (err) {
      this.#log('warn', `cannot remove ${dir}: ${(err as Error).message}`);
    }
  }

  async #execute(slot: number, a: MapAssignment | ReduceAssignment, entry: Running): Promise<Executed> {
    // A served map writes into this worker's store (the coordinator's outputDir names the attempt) and reports the logical names.
    let outputDir = a.outputDir;
    if (a.type === 'map' && a.serve) {
      const store = await this.#startStore();
      if (!store) throw ERR_NO_SHUFFLE_SERVER();
      if (store.usedBytes >= store.maxBytes) throw ERR_SHUFFLE_FULL(store.usedBytes, store.maxBytes);
      outputDir = store.attemptDir(a.jobId, a.outputDir);
    }
    const common = {
      app: a.app, options: a.options, outputDir, cwd: this.#cwd, tempTag: `${a.jobId}-${a.taskId}-a${a.attempt}`,
      ...(a.combiner === false ? { combine: false } : {}),
      ...(a.skip ? { skip: a.skip } : {}),
    };
    if (a.type === 'reduce' && a.sources) {
      // A served reduce: fetch its partition of every map's output from the workers that keep it, then reduce the local copies.
      const fetched = await this.#fetcher.fetchAll({
        jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, partition: a.index, sources: a.sources, dir: this.#spillDir, signal: entry.abort.signal,
        progress: (n) => (entry.fetched += n),
        report: async (body) => this.#client.fetchFailure(await this.#workerId(), body),
      });
      try {
        const r = await this.#runner.run(slot, { kind: 'reduce', ...common, reduceIndex: a.index, inputs: fetched.files, spillDir: this.#spillDir });
        return { ok: true, files: r.files, counters: { ...r.counters, shuffleFetchedBytes: fetched.bytes } };
      } finally {
        await fetched.cleanup();
      }
    }
    const req: TaskRequest =
      a.type === 'map'
        ? {
            kind: 'map',
            ...common,
            // Split pieces name real paths: the file opened must still be that path (a symlink re-pointed since submit is refused).
            pieces: a.split ? a.split.map((p) => ({ ...p, verifyRealPath: true })) : [{ path: a.input, name: a.name }],
            mapIndex: a.index,
            reduces: a.reduces,
            partitioner: a.partitioner,
          }
        : { kind: 'reduce', ...common, reduceIndex: a.index, inputs: a.inputs, spillDir: this.#spillDir };
    const r = await this.#runner.run(slot, req);
    if (a.type === 'map' && a.serve) {
      return { ok: true, files: r.files.map((f) => `${a.outputDir}/${basename(f)}`), counters: r.counters, location: this.#store!.location, local: r.files };
    }
    return { ok: true, files: r.files, counters: r.counters };
  }

  #startHeartbeats(): void {
    if (this.#heartbeatTimer) return;
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), this.#heartbeatMs);
    this.#heartbeatTimer.unref();
  }

  #stopHeartbeats(): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  async #heartbeat(): Promise<void> {
    const reg = this.#registration;
    if (!reg || this.#running.size === 0 || this.#exit) return;
    try {
      const { workerId } = await reg;
      // Each attempt with its slot's progress count: the coordinator abandons an attempt whose count stops growing.
      // Jobs that skip bad records: also the record its user code is on (where it is stuck, if the count stops).
      const tasks = [...this.#running.values()].slice(0, 64).map((r) => {
        const record = r.skip ? this.#runner.record(r.slot) : undefined;
        return { ...r.ref, progress: this.#runner.progress(r.slot) + r.fetched, ...(record ? { record } : {}) };
      });
      const reply = await this.#client.heartbeat(workerId, { tasks });
      this.#unreachableSince = undefined;
      for (const t of reply.abandon) {
        const r = this.#running.get(`${t.jobId}/${t.taskId}/${t.attempt}`);
        if (r && !r.abandoned) {
          r.abandoned = true;
          r.abort.abort();
          this.#log('debug', `coordinator says abandon ${t.taskId} attempt ${t.attempt}: stopping it`);
          void this.#runner.cancel(r.slot);
        }
      }
    } catch (err) {
      // A missed heartbeat is not fatal: the lease decides. The poll/report paths handle outages.
      this.#log('debug', `heartbeat failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

/** A task's result: a served map's also names where its output is served and its local files. */
interface Executed {
  ok: true;
  files: string[];
  counters: Record<string, number>;
  location?: string | undefined;
  local?: string[] | undefined;
}

class Stopped extends Error {
  override name = 'Stopped';
}

function recordError(span: Span, e: Error): void {
  try {
    span.recordException(e);
  } catch {
    // non-Error values
  }
  span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message ?? 'failed' });
}

/** The apps library, imported on first use (inline execution without stand-ins). */
function lazyExecutors(): Executors {
  const m = import('@mr/mapreduce-apps');
  return {
    getApp: async (name) => (await m).getApp(name),
    runMapTask: async (spec) => (await m).runMapTask(spec),
    runReduceTask: async (spec) => (await m).runReduceTask(spec),
  };
}
