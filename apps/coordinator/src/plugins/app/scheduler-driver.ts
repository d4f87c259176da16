/**
 * The shell loop around the pure scheduler: feed it inputs, make fx.persist
 * durable, then send fx.replies and turn fx.events into metrics, spans and
 * server-sent events. Time reaches the core as ticks from one unref'd timer.
 */
import { EventEmitter } from 'node:events';
import { context, trace, type Span } from '@opentelemetry/api';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { Scheduler, type CoreJobView, type PersistRecord, type ReplyBody, type SchedulerConfig, type SchedulerEvent, type SchedulerInput } from '@mr/mapreduce-core';
import type { JobView, WorkerView } from '@mr/mapreduce-protocol';
import { tracer, injectContext } from '@mr/observability';
import { Journal, type JournalLine } from './journal.ts';

type Request = Extract<SchedulerInput, { requestId: string }>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestInput = DistributiveOmit<Request, 'requestId'>;

interface Times {
  submittedAt: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

export interface DriverOptions {
  config: Partial<SchedulerConfig>;
  journalFile: string;
  registry: Registry;
  log: FastifyBaseLogger;
}

const tr = tracer('mr-coordinator');

export class SchedulerDriver extends EventEmitter {
  readonly core: Scheduler;
  readonly journal: Journal;
  readonly tickMs: number;
  #log: FastifyBaseLogger;
  #seq = 0;
  #pending = new Map<string, (body: ReplyBody | Error) => void>();
  /** Worker of each outstanding poll, to report who was told to exit. */
  #pollWorker = new Map<string, string>();
  #times = new Map<string, Times>();
  #spans = new Map<string, Span>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #failed: Error | undefined;
  #m: {
    tasks: Counter<'phase' | 'outcome'>;
    duration: Histogram<'phase'>;
    fsync: Histogram;
  };

  private constructor(core: Scheduler, journal: Journal, lines: JournalLine[], opts: DriverOptions) {
    super();
    this.setMaxListeners(0);
    this.core = core;
    this.journal = journal;
    this.tickMs = core.config.tickMs;
    this.#log = opts.log;
    for (const l of lines) this.#noteTime(l);
    const reg = [opts.registry];
    this.#m = {
      tasks: new Counter({ name: 'mr_tasks_total', help: 'Task attempts by phase and outcome', labelNames: ['phase', 'outcome'], registers: reg }),
      duration: new Histogram({
        name: 'mr_task_duration_seconds',
        help: 'Duration of committed task attempts, as reported by workers',
        labelNames: ['phase'],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: reg,
      }),
      fsync: new Histogram({ name: 'mr_journal_fsync_seconds', help: 'Journal write+fsync time per batch', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers: reg }),
    };
    const live = (): Scheduler => this.core;
    new Gauge({
      name: 'mr_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers: reg,
      collect() {
        const counts: Record<string, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
        for (const j of live().jobs()) counts[j.state] = (counts[j.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({ name: 'mr_workers', help: 'Live workers', registers: reg, collect() { this.set(live().workers().length); } });
    new Gauge({ name: 'mr_parked_polls', help: 'Worker polls waiting for a task', registers: reg, collect() { this.set(live().parkedPolls()); } });
    new Gauge({
      name: 'mr_tasks',
      help: 'Tasks of unfinished jobs by phase and state',
      labelNames: ['phase', 'state'],
      registers: reg,
      collect() {
        const acc = { map: { pending: 0, running: 0, done: 0 }, reduce: { pending: 0, running: 0, done: 0 } };
        for (const j of live().jobs()) {
          if (j.state !== 'queued' && j.state !== 'running') continue;
          for (const phase of ['map', 'reduce'] as const) for (const s of ['pending', 'running', 'done'] as const) acc[phase][s] += j.tasks[phase][s];
        }
        for (const phase of ['map', 'reduce'] as const) for (const s of ['pending', 'running', 'done'] as const) this.set({ phase, state: s }, acc[phase][s]);
      },
    });
    journal.onFsync = (s) => this.#m.fsync.observe(s);
  }

  /** Opens the journal, rebuilds the scheduler from it, and starts ticking. */
  static async start(opts: DriverOptions): Promise<SchedulerDriver> {
    const { journal, lines } = await Journal.open(opts.journalFile);
    const core = Scheduler.restore(opts.config, lines);
    const d = new SchedulerDriver(core, journal, lines, opts);
    const unfinished = core.jobs().filter((j) => j.state === 'queued' || j.state === 'running');
    for (const j of unfinished) d.#startSpan(j.id);
    if (lines.length) opts.log.info({ records: lines.length, jobs: core.jobIds().length, unfinished: unfinished.length, boot: core.boot }, 'journal replayed');
    d.#flush();
    d.#timer = setInterval(() => d.#drive({ type: 'tick' }), d.tickMs);
    d.#timer.unref();
    return d;
  }

  /** Steps the core with a request input and resolves with its reply (maybe much later: long polls). */
  request(input: RequestInput, onRequestId?: (id: string) => void): Promise<ReplyBody> {
    if (this.#failed) return Promise.reject(this.#failed);
    const requestId = `q${++this.#seq}`;
    onRequestId?.(requestId);
    if (input.type === 'poll') this.#pollWorker.set(requestId, input.workerId);
    return new Promise<ReplyBody>((resolve, reject) => {
      this.#pending.set(requestId, (r) => (r instanceof Error ? reject(r) : resolve(r)));
      this.#drive({ ...input, requestId } as SchedulerInput);
    });
  }

  /** A long-poll client went away. */
  forget(requestId: string): void {
    this.#pollWorker.delete(requestId);
    if (!this.#pending.delete(requestId)) return;
    this.#drive({ type: 'poll-gone', requestId });
  }

  /** Answers every parked poll with 'exit' and refuses new work. */
  shutdown(reason: string): void {
    this.#drive({ type: 'shutdown', reason });
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const s of this.#spans.values()) s.end();
    this.#spans.clear();
    await this.journal.close();
  }

  #drive(input: SchedulerInput): void {
    if (this.#failed) return;
    try {
      this.core.step(input);
    } catch (err) {
      // A broken invariant: stop serving; a restart replays the journal.
      this.#fail(err as Error, 'scheduler invariant broken; stopping');
      return;
    }
    this.#flush();
  }

  #flush(): void {
    const fx = this.core.ready();
    const persist = fx.persist.slice();
    const replies = fx.replies.slice();
    const events = fx.events.slice();
    this.core.advance();
    for (const p of persist) this.#noteTime({ ...p, at: new Date().toISOString() });
    for (const e of events) this.#record(e);
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
    // Durable first: replies of a step wait for its records and every record before them.
    if (persist.length === 0 && !this.journal.pending) return send();
    this.journal.append(persist).then(send, (err: Error) => this.#fail(err, 'journal write failed; stopping'));
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
    if (body.kind !== 'poll' || (body.reply.type !== 'map' && body.reply.type !== 'reduce')) return body;
    const span = this.#spans.get(body.reply.jobId);
    if (!span) return body;
    const carrier = injectContext(trace.setSpan(context.active(), span));
    return { kind: 'poll', reply: { ...body.reply, ...(carrier['traceparent'] ? { traceparent: carrier['traceparent'] } : {}), ...(carrier['tracestate'] ? { tracestate: carrier['tracestate'] } : {}) } };
  }

  #noteTime(l: PersistRecord & { at: string }): void {
    if (l.type === 'job-accepted') this.#times.set(l.jobId, { submittedAt: l.at });
    const t = 'jobId' in l ? this.#times.get(l.jobId) : undefined;
    if (!t) return;
    if (l.type === 'task-committed' || l.type === 'job-started') t.startedAt ??= l.at;
    if (l.type === 'job-finished') t.finishedAt = l.at;
  }

  #startSpan(jobId: string): void {
    const j = this.core.job(jobId);
    if (!j || this.#spans.has(jobId)) return;
    this.#spans.set(jobId, tr.startSpan('mr.job', { attributes: { 'mr.job.id': jobId, 'mr.job.app': j.app, 'mr.job.inputs': j.inputs, 'mr.job.reduces': j.reduces } }));
  }

  #record(e: SchedulerEvent): void {
    const now = new Date().toISOString();
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
        return;
      case 'task-failed':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'failed' });
        this.#log.warn({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId, error: e.error, retryable: e.retryable }, 'task attempt failed');
        return;
      case 'lease-expired':
        this.#m.tasks.inc({ phase: e.phase, outcome: 'expired' });
        this.#log.info({ jobId: e.jobId, taskId: e.taskId, attempt: e.attempt, workerId: e.workerId }, 'lease expired; task goes to another worker');
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
      case 'worker-gone':
        this.#log.info({ workerId: e.workerId }, 'idle worker gone');
        return;
      case 'job-finished': {
        const t = this.#times.get(e.jobId);
        if (t) t.finishedAt ??= now;
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
