/**
 * The shell loop around the pure scheduler: feed it inputs, make fx.persist
 * durable, then send fx.replies and turn fx.events into metrics, spans and
 * server-sent events. Time reaches the core as ticks from one unref'd timer.
 */
import { EventEmitter } from 'node:events';
import { copyFile, mkdir, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { hasCode } from '@mr/errors';
import { Scheduler, type SchedulerImage, type CoreJobView, type PersistRecord, type Publish, type ReplyBody, type SchedulerConfig, type SchedulerEvent, type SchedulerInput } from '@mr/mapreduce-core';
import type { Assignment, JobView, TaskList, TaskView, WorkerView } from '@mr/mapreduce-protocol';
import { tracer, injectContext } from '@mr/observability';
import type { DiskFaults } from '@mr/service-kit';
import { Journal, type JobTimes, type JournalLine } from './journal.ts';
import { CommitLedger, coordinatorMetrics, MAX_COUNTER_LABELS, type CoordinatorMetrics } from './metrics.ts';
import { AttemptLog } from './attempts.ts';
import { JobIdSource } from './job-ids.ts';
import { ERR_NOT_ACTIVE } from '../../errors.ts';

type Request = Extract<SchedulerInput, { requestId: string }>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestInput = DistributiveOmit<Request, 'requestId'>;

type Times = JobTimes;

export interface DriverOptions {
  config: Partial<SchedulerConfig>;
  journalFile: string;
  registry: Registry;
  log: FastifyBaseLogger;
  /**
   * The journal is rewritten from a snapshot once it holds this many records
   * more than twice the snapshot's size. Default 10,000.
   */
  compactRecords?: number | undefined;
  /** Keep a finished job's intermediate files (debugging). Default false: removed when the job ends. */
  keepIntermediates?: boolean | undefined;
  /** Injected disk faults for the journal (drills only: --drill-unsafe). */
  diskFaults?: DiskFaults | undefined;
  /** Retry period of a journal write while the disk is full (default 1 s). */
  journalSpaceRetryMs?: number | undefined;
  /**
   * Request ids are this prefix and a counter. Two coordinators that may
   * follow one another (active and standby) need different ones: polls the
   * old active parked are still in the core the standby takes over.
   */
  requestPrefix?: string | undefined;
}

/**
 * The active's side of replication (replication/source.ts): every input is
 * recorded before it is stepped, and a step's publishes and replies wait
 * for `released(seq)` (the output rule; undefined: nothing to wait for).
 */
export interface InputLog {
  record(input: SchedulerInput, at: string): number;
  stepped(seq: number, input: SchedulerInput): void;
  released(seq: number): Promise<void> | undefined;
}

/** One replicated step, as a standby applies it. */
export interface LogEntry {
  seq: number;
  at: string;
  input: SchedulerInput;
}

export const DEFAULT_COMPACT_RECORDS = 10_000;
export { MAX_COUNTER_LABELS } from './metrics.ts';

const tr = tracer('mr-coordinator');

export class SchedulerDriver extends EventEmitter {
  #core: Scheduler;
  readonly journal: Journal;
  #log: FastifyBaseLogger;
  #seq = 0;
  #requestPrefix: string;
  /** The replication log (active with an arbiter); undefined: alone, as without one. */
  #inputLog: InputLog | undefined;
  /** A standby applies the active's inputs (apply()) and sends nothing until it goes live. */
  #following = false;
  #pending = new Map<string, (body: ReplyBody | Error) => void>();
  /** Worker of each outstanding poll, to report who was told to exit. */
  #pollWorker = new Map<string, string>();
  #times = new Map<string, Times>();
  #spans = new Map<string, Span>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #failed: Error | undefined;
  #compactRecords: number;
  #compacting: Promise<void> | undefined;
  #keepIntermediates: boolean;
  /** Cleanups of finished jobs still running (close() waits for them). */
  #cleanups = new Set<Promise<void>>();
  /** Steps whose records, publishes and replies are still in flight; replies go out in step order. */
  #inflight = 0;
  #tail: Promise<void> | undefined;
  #m: CoordinatorMetrics;
  /** The driver's own account of leases and commits: the invariant monitors (see CommitLedger). */
  #ledger = new CommitLedger();
  /** Each task's attempts with wall-clock times, for GET /v1/jobs/:id/tasks (bounded: see AttemptLog). */
  #attempts = new AttemptLog();
  /** Counter names given a label of their own so far (at most MAX_COUNTER_LABELS; the rest go to 'other'). */
  #counterLabels = new Set<string>();
  /** The id each submission offers the core (ULIDs, newer than the journal's newest). */
  #jobIds: JobIdSource;

  private constructor(core: Scheduler, journal: Journal, times: Map<string, Times>, opts: DriverOptions) {
    super();
    this.setMaxListeners(0);
    this.#core = core;
    this.#requestPrefix = opts.requestPrefix ?? 'q';
    this.journal = journal;
    this.#log = opts.log;
    this.#times = times;
    this.#compactRecords = opts.compactRecords ?? DEFAULT_COMPACT_RECORDS;
    this.#keepIntermediates = opts.keepIntermediates ?? false;
    this.#m = coordinatorMetrics(opts.registry, () => this.core, () => ({ ...journal.size, full: journal.full !== undefined }));
    this.#jobIds = new JobIdSource(core.lastJobId());
    this.#seedLedger();
    journal.onFsync = (s) => this.#m.fsync.observe(s);
    journal.onCompact = (c) => {
      this.#m.compactions.observe(c.seconds);
      this.#log.info({ records: c.records, bytes: c.bytes, ms: Math.round(c.seconds * 1000) }, 'journal compacted');
    };
    journal.onFull = (err, waiting) => {
      this.#log.error({ err, waitingRecords: waiting }, 'journal disk full: new work refused (507 MR_ERR_JOURNAL_FULL), polls answered "wait", reads served; the write is retried every second');
      this.emit('journal-full', err);
    };
    journal.onSpace = (ms) => {
      this.#log.warn({ fullForMs: Math.round(ms) }, 'journal writable again: taking new work');
      this.emit('journal-space');
    };
    journal.onCompactNoSpace = (err) => this.#log.warn({ err }, 'journal compaction given up for want of space; the journal goes on as it was');
  }

  /**
   * Opens the journal, rebuilds the scheduler from it (streamed, record by
   * record), removes work directories no unfinished job owns, and starts ticking.
   */
  static async start(opts: DriverOptions): Promise<SchedulerDriver> {
    const t0 = performance.now();
    const times = new Map<string, Times>();
    const { journal, result: core, stats } = await Journal.open(opts.journalFile, (lines) => {
      let n = 0;
      const noted = function* (): Generator<JournalLine> {
        for (const l of lines) {
          noteTime(times, l);
          yield l;
          // Times of jobs a long history retired are dropped as the replay goes.
          if (++n % 50_000 === 0 && times.size > 100_000) times.clear();
        }
      };
      return Scheduler.restore(opts.config, noted());
    }, { faults: opts.diskFaults, spaceRetryMs: opts.journalSpaceRetryMs });
    for (const id of [...times.keys()]) if (!core.job(id)) times.delete(id);
    const d = new SchedulerDriver(core, journal, times, opts);
    const unfinished = core.jobs().filter((j) => j.state === 'queued' || j.state === 'running');
    for (const j of unfinished) d.#startSpan(j.id);
    if (stats.records) {
      opts.log.info(
        { records: stats.records, bytes: stats.bytes, tornTail: stats.tornTail, jobs: core.jobCount(), retired: core.retired(), unfinished: unfinished.length, boot: core.boot, ms: Math.round(performance.now() - t0) },
        'journal replayed',
      );
    }
    d.#flush();
    // Commits whose rename into the output dir was not recorded: redo them before serving anything.
    for (const p of core.owedPublishes()) {
      const error = await publishOutput(p, true);
      opts.log.info({ jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error }, 'owed output publish redone');
      d.#drive(error === undefined ? { type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt } : { type: 'publish-failed', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error });
    }
    await d.#tail;
    await d.#sweepOrphans(unfinished.map((j) => j.id));
    return d;
  }

  get core(): Scheduler {
    return this.#core;
  }

  get tickMs(): number {
    return this.#core.config.tickMs;
  }

  /**
   * A standby's driver: the active's state (its image) in a fresh journal
   * (whatever the data dir held is replaced), following: apply() steps the
   * active's inputs, nothing is sent, published or ticked until goLive().
   */
  static async follow(opts: DriverOptions, image: { core: SchedulerImage; times: [string, Times][] } = { core: new Scheduler(opts.config, 1, false).image(), times: [] }): Promise<SchedulerDriver> {
    await rm(opts.journalFile, { force: true });
    const { journal } = await Journal.open(opts.journalFile, (lines) => {
      for (const _ of lines) void _;
    }, { faults: opts.diskFaults, spaceRetryMs: opts.journalSpaceRetryMs });
    const d = new SchedulerDriver(Scheduler.fromImage(image.core), journal, new Map(image.times), opts);
    d.#following = true;
    await journal.compact(() => d.#snapshotLines());
    return d;
  }

  /** A standby's new state transfer (its stream to the active was re-opened): the state is replaced. */
  async reload(image: { core: SchedulerImage; times: [string, Times][] }): Promise<void> {
    if (!this.#following) throw new Error('reload() is for a standby');
    this.#core = Scheduler.fromImage(image.core);
    this.#times = new Map(image.times);
    this.#ledger = new CommitLedger();
    this.#seedLedger();
    await this.journal.compact(() => this.#snapshotLines());
  }

  #seedLedger(): void {
    this.#ledger.seed(
      this.#core.workers().flatMap((w) => w.tasks.map((t) => ({ ...t, workerId: w.id }))),
      [],
    );
  }

  /** True while this driver is a standby's (following an active). */
  get following(): boolean {
    return this.#following;
  }

  /** The active's side of replication: inputs recorded, replies held by the output rule. */
  setInputLog(log: InputLog | undefined): void {
    this.#inputLog = log;
  }

  /** The exact state for a standby (between steps only): clone it at once. */
  image(): { core: SchedulerImage; times: [string, Times][] } {
    return { core: this.#core.image(), times: [...this.#times] };
  }

  /**
   * A standby steps one of the active's inputs: same records into its own
   * journal, same events (metrics, attempt log, job times from the active's
   * clock); replies and publishes are the active's, so they are dropped.
   * Resolves once the step's records are durable here (then it may be acked).
   */
  apply(e: LogEntry): Promise<void> {
    if (!this.#following) return Promise.reject(new Error('apply() is for a standby'));
    if (this.#failed) return Promise.reject(this.#failed);
    try {
      this.#core.step(e.input);
    } catch (err) {
      this.#fail(err as Error, 'scheduler invariant broken while following the active; stopping');
      return Promise.reject(err as Error);
    }
    const fx = this.#core.ready();
    const persist = fx.persist.slice();
    const lazy = fx.persistLazy.slice();
    const events = fx.events.slice();
    this.#core.advance();
    const durable = persist.length ? this.journal.append(persist) : this.journal.durable();
    this.journal.note(lazy);
    for (const p of persist) noteTime(this.#times, { ...p, at: e.at });
    for (const ev of events) this.#record(ev, e.at);
    if (persist.length) this.#maybeCompact();
    return durable;
  }

  /**
   * The standby won arbitration: it serves from the state it holds. Polls the
   * dead active had parked are forgotten (their clients are gone), owed
   * publishes are redone, and the clock starts.
   */
  async goLive(): Promise<void> {
    if (!this.#following) return;
    this.#following = false;
    // New job ids continue after the newest the active made (it may have had a faster clock).
    this.#jobIds = new JobIdSource(this.#core.lastJobId());
    for (const id of this.#core.parkedRequestIds()) this.#drive({ type: 'poll-gone', requestId: id });
    for (const j of this.#core.jobs()) if (j.state === 'queued' || j.state === 'running') this.#startSpan(j.id);
    for (const p of this.#core.owedPublishes()) {
      const error = await publishOutput(p, true);
      this.#log.info({ jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error }, 'owed output publish redone');
      this.#drive(error === undefined ? { type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt } : { type: 'publish-failed', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error });
    }
    this.startTicking();
  }

  /**
   * Starts the clock. Called once the server is ready to take requests: a
   * restored worker is lost after the heartbeat timeout counted in ticks, so
   * the time a slow start spends before it can hear from workers must not count.
   */
  startTicking(): void {
    if (this.#timer || this.#failed || this.#following) return;
    this.#timer = setInterval(() => {
      this.#drive({ type: 'tick' });
      // Lazy records (leases) not carried by a durable write meanwhile go to disk within a tick.
      this.journal.flushNotes();
    }, this.tickMs);
    this.#timer.unref();
  }

  /** Work directories of jobs that are not unfinished (a crash before their cleanup) are removed. */
  async #sweepOrphans(unfinished: string[]): Promise<void> {
    const root = this.core.config.workRoot;
    const keep = new Set(unfinished);
    let names: string[];
    try {
      names = await readdir(root);
    } catch {
      return;
    }
    let removed = 0;
    for (const name of names) {
      if (keep.has(name) || this.#keepIntermediates) continue;
      const work = join(root, name, 'work');
      try {
        await rm(work, { recursive: true, force: true });
        removed++;
        await rmdir(join(root, name)).catch(() => {});
      } catch (err) {
        this.#log.warn({ err, dir: work }, 'cannot remove an orphaned work directory');
      }
    }
    if (removed) this.#log.info({ dirs: removed }, 'orphaned work directories removed');
  }

  /** Removes a finished job's intermediates and any temporary file left in its output directory. */
  #cleanup(e: Extract<SchedulerEvent, { type: 'job-finished' }>): void {
    const p = (async () => {
      if (!this.#keepIntermediates) {
        await rm(e.workDir, { recursive: true, force: true });
        // The per-job directory under the data dir goes too when nothing else (a default output) is in it.
        await rmdir(join(e.workDir, '..')).catch(() => {});
      }
      let names: string[] = [];
      try {
        names = await readdir(e.output);
      } catch {
        return;
      }
      // Temporary names of reduce outputs (see @mr/mapreduce-apps tempNameFor): an attempt killed mid-write.
      for (const n of names) if (n.startsWith('.tmp-mr-out-')) await rm(join(e.output, n), { force: true });
    })().catch((err: unknown) => this.#log.warn({ err, jobId: e.jobId }, 'cleanup of a finished job failed'));
    this.#cleanups.add(p);
    void p.finally(() => this.#cleanups.delete(p));
  }

  /** Rewrites the journal from a snapshot once it grew past twice the snapshot's size plus compactRecords. */
  #maybeCompact(): void {
    if (this.#compacting || this.#failed) return;
    const size = this.journal.size.records;
    if (size < this.#compactRecords + 2 * (this.core.jobCount() + 1)) return;
    this.#compacting = this.journal
      .compact(() => this.#snapshotLines())
      .catch((err: Error) => this.#fail(err, 'journal compaction failed; stopping'))
      .finally(() => {
        this.#compacting = undefined;
      });
  }

  /** Why new work is refused now: the journal's write waiting for space, or undefined. */
  get journalFull(): NodeJS.ErrnoException | undefined {
    return this.journal.full;
  }

  /** Resolves once the journal is writable again, or after `ms`, whichever comes first. */
  async writableOrAfter(ms: number): Promise<void> {
    if (!this.journal.full) return;
    let done!: () => void;
    const p = new Promise<void>((r) => (done = r));
    const timer = setTimeout(done, ms);
    this.once('journal-space', done);
    await p;
    clearTimeout(timer);
    this.off('journal-space', done);
  }

  /** Waits for a compaction in progress (tests). */
  async compacted(): Promise<void> {
    await this.#compacting;
  }

  /** Forces a compaction now (tests, tools). */
  compactNow(): Promise<void> {
    this.#compacting ??= this.journal.compact(() => this.#snapshotLines()).finally(() => {
      this.#compacting = undefined;
    });
    return this.#compacting;
  }

  #snapshotLines(): JournalLine[] {
    const at = new Date().toISOString();
    return this.#core.snapshot().map((r) => {
      const t = 'jobId' in r ? this.#times.get(r.jobId) : undefined;
      return { ...r, at, ...(t ? { times: t } : {}) };
    });
  }

  /** Steps the core with a request input and resolves with its reply (maybe much later: long polls). */
  request(input: RequestInput, onRequestId?: (id: string) => void): Promise<ReplyBody> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#following) return Promise.reject(ERR_NOT_ACTIVE('this coordinator is a standby'));
    const requestId = `${this.#requestPrefix}${++this.#seq}`;
    onRequestId?.(requestId);
    if (input.type === 'poll') this.#pollWorker.set(requestId, input.workerId);
    return new Promise<ReplyBody>((resolve, reject) => {
      this.#pending.set(requestId, (r) => (r instanceof Error ? reject(r) : resolve(r)));
      this.#drive({ ...input, requestId } as SchedulerInput);
    });
  }

  /** Submits a job under a new id (the core keeps it only if it accepts the job). */
  submit(job: Extract<RequestInput, { type: 'submit' }>['job'], idempotency: Extract<RequestInput, { type: 'submit' }>['idempotency']): Promise<ReplyBody> {
    return this.request({ type: 'submit', jobId: this.#jobIds.next(), job, idempotency });
  }

  /** A long-poll client went away. */
  forget(requestId: string): void {
    if (this.#following) return;
    this.#pollWorker.delete(requestId);
    if (!this.#pending.delete(requestId)) return;
    this.#drive({ type: 'poll-gone', requestId });
  }

  /** Stops serving (a deposed coordinator): waiting requests fail, 'fatal' tells the server to close. */
  halt(why: string): void {
    this.#fail(ERR_NOT_ACTIVE(why), why);
  }

  /** Answers every parked poll with 'exit' and refuses new work. */
  shutdown(reason: string): void {
    if (this.#following) return;
    this.#drive({ type: 'shutdown', reason });
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const s of this.#spans.values()) s.end();
    this.#spans.clear();
    await Promise.allSettled([...this.#cleanups]);
    await this.#compacting;
    await this.journal.close();
  }

  #drive(input: SchedulerInput): void {
    if (this.#failed || this.#following) return;
    const at = new Date().toISOString();
    // Recorded before it is stepped: the standby steps the inputs in this order.
    const seq = this.#inputLog?.record(input, at);
    try {
      this.#core.step(input);
    } catch (err) {
      // A broken invariant: stop serving; a restart replays the journal.
      this.#fail(err as Error, 'scheduler invariant broken; stopping');
      return;
    }
    if (seq !== undefined) this.#inputLog!.stepped(seq, input);
    this.#flush(at, seq);
  }

  #flush(at = new Date().toISOString(), seq?: number): void {
    const fx = this.#core.ready();
    const persist = fx.persist.slice();
    const lazy = fx.persistLazy.slice();
    const replies = fx.replies.slice();
    const events = fx.events.slice();
    const publish = fx.publish.slice();
    this.#core.advance();
    // The output rule: the step's publishes and replies wait for the standby's ack of its input.
    const replicated = seq === undefined ? undefined : this.#inputLog?.released(seq);
    // Awaited below, after the journal: a deposal's rejection must not count as unhandled meanwhile.
    replicated?.catch(() => {});
    // Lazy records go into the journal after the step's durable ones, and are written with them or with a later write.
    const durable = persist.length ? this.journal.append(persist) : undefined;
    this.journal.note(lazy);
    for (const p of persist) noteTime(this.#times, { ...p, at });
    for (const e of events) this.#record(e, at);
    const send = (): void => {
      for (const r of replies) {
        const resolve = this.#pending.get(r.requestId);
        const worker = this.#pollWorker.get(r.requestId);
        this.#pollWorker.delete(r.requestId);
        if (!resolve) continue;
        this.#pending.delete(r.requestId);
        resolve(this.#decorate(r.body));
        if (worker !== undefined && r.body.kind === 'poll' && r.body.reply.type === 'exit') this.emit('told-exit', worker);
      }
      for (const e of events) this.emit('event', e);
    };
    // Durable first: replies of a step wait for its records and every record before them,
    // then for the step's publishes (a reduce's output renamed into the job's output dir
    // only after the core accepted it and the commit is durable), and for earlier steps.
    if (persist.length === 0 && publish.length === 0 && !this.journal.pending && this.#inflight === 0 && replicated === undefined) return send();
    this.#inflight++;
    const prev = this.#tail;
    const step = (async () => {
      await (durable ?? this.journal.durable());
      if (replicated) await replicated;
      if (prev) await prev;
      for (const p of publish) {
        const error = await publishOutput(p, false);
        if (error !== undefined) this.#log.error({ jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error }, 'could not publish a reduce output');
        this.#drive(error === undefined ? { type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt } : { type: 'publish-failed', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt, error });
      }
    })();
    this.#tail = step.then(
      () => {
        this.#inflight--;
        send();
      },
      (err: Error) => {
        this.#inflight--;
        this.#fail(err, hasCode(err, ERR_NOT_ACTIVE.code) ? 'deposed: another coordinator holds a newer epoch; stopping' : 'journal write failed; stopping');
      },
    );
    if (persist.length) this.#maybeCompact();
  }

  /** Stops serving: every waiting request fails (500), and 'fatal' tells the server to close. */
  #fail(err: Error, msg: string): void {
    if (this.#failed) return;
    this.#failed = err;
    this.#log.fatal({ err }, msg);
    for (const settle of this.#pending.values()) settle(err);
    this.#pending.clear();
    this.emit('fatal', err);
  }

  /** Adds the job span's trace context to assignments. */
  #decorate(body: ReplyBody): ReplyBody {
    if (body.kind !== 'poll') return body;
    const r = body.reply;
    if (r.type === 'batch') return { kind: 'poll', reply: { type: 'batch', tasks: r.tasks.map((a) => this.#traced(a)) } };
    if (r.type !== 'map' && r.type !== 'reduce') return body;
    return { kind: 'poll', reply: this.#traced(r) };
  }

  #traced<A extends Assignment>(a: A): A {
    const span = this.#spans.get(a.jobId);
    if (!span) return a;
    // The job's span alone, not the context this reply is sent in (a later step's, maybe an untraced poll's or none).
    const carrier = injectContext(trace.setSpan(ROOT_CONTEXT, span));
    return { ...a, ...(carrier['traceparent'] ? { traceparent: carrier['traceparent'] } : {}), ...(carrier['tracestate'] ? { tracestate: carrier['tracestate'] } : {}) };
  }

  #startSpan(jobId: string): void {
    const j = this.core.job(jobId);
    if (!j || this.#spans.has(jobId)) return;
    this.#spans.set(jobId, tr.startSpan('mr.job', { attributes: { 'mr.job.id': jobId, 'mr.job.app': j.app, 'mr.job.inputs': j.inputs, 'mr.job.reduces': j.reduces } }));
  }

  /** A committed attempt's counters into mr_job_counters_total (label values bounded: see MAX_COUNTER_LABELS). */
  #countersMetric(counters: Record<string, number>): void {
    for (const [k, v] of Object.entries(counters)) {
      if (!(v > 0)) continue; // a Prometheus counter only goes up
      if (!this.#counterLabels.has(k) && this.#counterLabels.size < MAX_COUNTER_LABELS) this.#counterLabels.add(k);
      this.#m.counters.inc({ name: this.#counterLabels.has(k) ? k : 'other' }, v);
    }
  }

  #record(e: SchedulerEvent, now: string): void {
    this.#attempts.observe(e, now);
    for (const invariant of this.#ledger.observe(e)) {
      this.#m.invariants.inc({ invariant });
      this.#log.error({ invariant, event: e }, `invariant violated: ${invariant}`);
    }
    switch (e.type) {
      case 'job-accepted':
        this.#startSpan(e.jobId);
        this.#log.info({ jobId: e.jobId }, 'job accepted');
        return;
      case 'job-started': {
        const t = this.#times.get(e.jobId);
        if (t) t.startedAt ??= now;
        this.#spans.get(e.jobId)?.addEvent('started');
        return;
      }
      case 'task-assigned':
        if (e.reissue) this.#m.tasks.inc({ phase: e.phase, outcome: 'reissued' });
        this.#spans.get(e.jobId)?.addEvent('task-assigned', { task: e.taskId, attempt: e.attempt, worker: e.workerId });
        return;
      case 'task-committed':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'committed' });
        this.#m.duration.observe({ phase: e.phase }, e.durationMs / 1000);
        this.#countersMetric(e.counters);
        return;
      case 'task-failed':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'failed' });
        this.#log.warn({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, error: e.error, retryable: e.retryable }, 'task attempt failed');
        return;
      case 'lease-expired':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'expired' });
        this.#log.info({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId }, 'lease expired; task goes to another worker');
        return;
      case 'task-stalled':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'stalled' });
        this.#log.warn({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, progress: e.progress }, 'no progress within the task progress timeout; attempt abandoned, task goes to the queue');
        return;
      case 'stale-completion':
        this.#m.tasks.inc({ phase: e.taskId.startsWith('map') ? 'map' : 'reduce', outcome: e.reason });
        return;
      case 'worker-registered':
        this.#log.info({ workerId: e.workerId }, 'worker registered');
        return;
      case 'worker-lost':
        this.#log.warn({ workerId: e.workerId, released: e.released }, 'worker lost; its tasks go to other workers');
        return;
      case 'map-output-lost':
        this.#m.reexecutions.inc();
        this.#log.warn({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, reason: e.reason }, 'map output lost; the map runs again');
        this.#spans.get(e.jobId)?.addEvent('map-output-lost', { task: e.taskId, attempt: e.attempt, worker: e.workerId, reason: e.reason });
        return;
      case 'fetch-failed':
        this.#m.fetchFailures.inc();
        this.#log.info({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, map: e.map, mapAttempt: e.mapAttempt, error: e.error }, 'a reduce could not fetch a map output');
        return;
      case 'worker-gone':
        this.#log.info({ workerId: e.workerId }, 'idle worker gone');
        return;
      case 'job-finished': {
        this.#cleanup(e);
        const t = this.#times.get(e.jobId);
        if (t) {
          t.finishedAt ??= now;
          // The core emits job-finished once per job (never on replay).
          this.#m.jobDuration.observe({ state: e.state }, Math.max(0, Date.parse(t.finishedAt) - Date.parse(t.submittedAt)) / 1000);
        }
        // Retired jobs' times go (at most one job retires per finish).
        if (this.#times.size > this.core.jobCount() + 64) for (const id of [...this.#times.keys()]) if (!this.core.job(id)) this.#times.delete(id);
        const span = this.#spans.get(e.jobId);
        if (span) {
          span.setAttribute('mr.job.state', e.state);
          if (e.state === 'failed') span.setStatus({ code: 2, message: e.error ?? 'failed' });
          span.end();
          this.#spans.delete(e.jobId);
        }
        this.#log.info({ jobId: e.jobId, state: e.state, error: e.error }, 'job finished');
        return;
      }
      case 'backup':
        this.#log.info({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, outcome: e.outcome }, e.outcome === 'running' ? 'backup attempt launched for a straggler' : 'backup race decided');
        this.#spans.get(e.jobId)?.addEvent('backup', { task: e.taskId, attempt: e.attempt, worker: e.workerId, outcome: e.outcome });
        return;
      case 'record-skipped':
        this.#log.warn({ jobId: e.jobId, taskId: e.taskId, record: e.record, failures: e.failures }, 'bad record skipped from now on');
        this.#spans.get(e.jobId)?.addEvent('record-skipped', { task: e.taskId, failures: e.failures, record: JSON.stringify(e.record) });
        return;
      case 'job-progress':
      case 'all-done':
        return;
    }
  }

  // ------------------------------------------------------------ views

  jobView(id: string): JobView | undefined {
    const j = this.core.job(id);
    return j ? this.#jobView(j) : undefined;
  }

  jobViews(): JobView[] {
    return this.core.jobs().map((j) => this.#jobView(j));
  }

  #jobView(j: CoreJobView): JobView {
    const t = this.#times.get(j.id);
    return {
      ...j,
      submittedAt: t?.submittedAt ?? new Date(0).toISOString(),
      ...(t?.startedAt ? { startedAt: t.startedAt } : {}),
      ...(t?.finishedAt ? { finishedAt: t.finishedAt } : {}),
    };
  }

  /**
   * Up to `limit` tasks of a job from position `start` (maps by index, then
   * reduces) with their attempts; undefined for a job not kept. An unfinished
   * job's tasks come from the core; a finished job keeps none there, so its
   * tasks are numbered from its totals, with what the attempt log still holds.
   */
  taskPage(jobId: string, start: number, limit: number): TaskList | undefined {
    const job = this.core.job(jobId);
    if (!job) return undefined;
    const detail = this.#attempts.has(jobId);
    const attemptsOf = (taskId: string) => this.#attempts.task(jobId, taskId);
    const live = this.core.tasks(jobId, start, limit);
    let total: number;
    let tasks: TaskView[];
    if (live && live.total > 0) {
      total = live.total;
      tasks = live.tasks.map((t) => {
        const log = attemptsOf(t.id);
        return { id: t.id, phase: t.phase, index: t.index, state: t.state === 'leased' ? 'running' : t.state, attemptCount: t.attempts, attempts: log?.attempts ?? [] };
      });
    } else {
      const maps = job.tasks.map.total;
      total = maps + job.tasks.reduce.total;
      tasks = [];
      for (let i = Math.max(0, start); i < total && tasks.length < limit; i++) {
        const phase = i < maps ? 'map' : 'reduce';
        const index = i < maps ? i : i - maps;
        const id = `${phase}-${index}`;
        const log = attemptsOf(id);
        const done = job.state === 'succeeded' || (log?.attempts.some((a) => a.outcome === 'committed') ?? false);
        tasks.push({ id, phase, index, state: done ? 'done' : 'pending', attemptCount: log?.count ?? 0, attempts: log?.attempts ?? [] });
      }
    }
    const end = Math.max(0, start) + tasks.length;
    return { jobId, total, tasks, detail, ...(end < total && tasks.length > 0 ? { next: tasks[tasks.length - 1]!.id } : {}) };
  }

  workerViews(): WorkerView[] {
    const now = Date.now();
    const tick = this.core.tick;
    const at = (t: number): string => new Date(now - (tick - t) * this.tickMs).toISOString();
    return this.core.workers().map((w) => ({
      id: w.id,
      name: w.name,
      pid: w.pid,
      host: w.host,
      slots: w.slots,
      registeredAt: at(w.registeredTick),
      lastContactAt: at(w.lastContactTick),
      tasks: w.tasks,
    }));
  }
}

/** Wall-clock times of jobs, from the journal's lines (a snapshot's records carry them). */
function noteTime(times: Map<string, Times>, l: PersistRecord & { at: string; times?: Times | undefined }): void {
  if (l.type === 'job-summary' || l.type === 'job-image') {
    times.set(l.jobId, l.times ?? { submittedAt: l.at });
    return;
  }
  if (l.type === 'job-accepted') times.set(l.jobId, { submittedAt: l.at });
  const t = 'jobId' in l ? times.get(l.jobId) : undefined;
  if (!t) return;
  if (l.type === 'task-committed' || l.type === 'job-started') t.startedAt ??= l.at;
  if (l.type === 'job-finished') t.finishedAt = l.at;
}

/**
 * Renames a committed reduce attempt's output into the job's output dir
 * (creating it). Across file systems: copy next to the target, then rename.
 * Returns an error message, or undefined when done. On replay (`redo`), a
 * source that is gone while the target exists means the rename happened.
 */
async function publishOutput(p: Publish, redo: boolean): Promise<string | undefined> {
  try {
    await mkdir(dirname(p.to), { recursive: true });
    try {
      await rename(p.from, p.to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const tmp = `${dirname(p.to)}/.${p.jobId}-${p.taskId}-a${p.attempt}.publishing`;
      await copyFile(p.from, tmp);
      await rename(tmp, p.to);
      await unlink(p.from);
    }
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (redo && e.code === 'ENOENT' && (await stat(p.to).then((s) => s.isFile(), () => false))) return undefined;
    return e.code === 'ENOENT' ? `the attempt's output ${p.from} does not exist` : `${e.code ?? 'error'}: ${e.message}`;
  }
}
