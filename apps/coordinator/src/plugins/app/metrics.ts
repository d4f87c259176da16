/**
 * The coordinator's metrics (names are what deploy/ dashboards and alerts
 * query) and its invariant monitors. The driver feeds them the scheduler's
 * events; gauges read the live core when scraped.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { zeroCounter } from '@mr/observability';
import type { Scheduler, SchedulerEvent } from '@mr/mapreduce-core';

const PHASES = ['map', 'reduce'] as const;
/** mr_tasks_total outcomes: what happened to attempts, and why late completions were ignored (the core's reasons). */
const TASK_OUTCOMES = ['committed', 'reissued', 'failed', 'expired', 'stalled', 'already-done', 'stale-attempt', 'not-lease-holder', 'job-not-running', 'unknown-task'] as const;
const JOB_END_STATES = ['succeeded', 'failed', 'cancelled'] as const;
/** Distinct counter names mr_job_counters_total labels (per coordinator process); further names count under name="other". */
export const MAX_COUNTER_LABELS = 200;

/**
 * Invariant monitors of the coordinator (mr_invariant_violations_total{invariant}),
 * must stay 0. The driver checks every commit the scheduler core makes against a
 * ledger of its own, built from the core's events (see CommitLedger):
 * - `task-committed-twice` (happened): a task the core had already committed was committed again;
 * - `stale-attempt-accepted` (happened): a completion was accepted from an attempt that held
 *   no lease (never handed out, failed, of a task already done, or expired and superseded by a
 *   new hand-out; an expired attempt's holder may complete it until then, as the core allows);
 * - `non-holder-accepted` (happened): a completion was accepted from a worker other than the
 *   one the attempt was handed to.
 */
export const COORDINATOR_INVARIANTS = ['task-committed-twice', 'stale-attempt-accepted', 'non-holder-accepted'] as const;
export type CoordinatorInvariant = (typeof COORDINATOR_INVARIANTS)[number];

/**
 * The driver's own account of leases and commits, fed the core's events in
 * order: which attempts of which task hold a lease (and which worker holds
 * each), and which tasks are committed. A commit it cannot explain is an
 * invariant violation. Memory: the tasks of unfinished jobs.
 */
export class CommitLedger {
  /** `${jobId}\u0000${taskId}` -> attempt -> worker holding its lease. */
  readonly #leases = new Map<string, Map<number, string>>();
  /**
   * Attempts whose lease ran out while the task was not handed out again: their holder may still
   * complete them (scheduler.ts Task.holder) until a new attempt is handed out.
   */
  readonly #expired = new Map<string, Map<number, string>>();
  readonly #committed = new Set<string>();
  /** Keys per job, dropped when the job finishes. */
  readonly #byJob = new Map<string, Set<string>>();

  #key(jobId: string, taskId: string): string {
    const k = `${jobId}\u0000${taskId}`;
    let keys = this.#byJob.get(jobId);
    if (!keys) this.#byJob.set(jobId, (keys = new Set()));
    keys.add(k);
    return k;
  }

  /**
   * Seeds the leases of running tasks after a restart (the core's view), so
   * that their completions are not taken for stale ones.
   */
  seed(leases: Iterable<{ jobId: string; taskId: string; attempt: number; workerId: string }>, committed: Iterable<{ jobId: string; taskId: string }>): void {
    for (const l of leases) this.#hold(this.#key(l.jobId, l.taskId), l.attempt, l.workerId);
    for (const c of committed) this.#committed.add(this.#key(c.jobId, c.taskId));
  }

  #hold(k: string, attempt: number, workerId: string): void {
    let m = this.#leases.get(k);
    if (!m) this.#leases.set(k, (m = new Map()));
    m.set(attempt, workerId);
  }

  /** Feeds one event; returns the invariants the event breaks (usually none). */
  observe(e: SchedulerEvent): CoordinatorInvariant[] {
    switch (e.type) {
      case 'task-assigned': {
        const k = this.#key(e.jobId, e.taskId);
        // A new hand-out supersedes the attempts whose lease ran out.
        this.#expired.delete(k);
        this.#hold(k, e.attempt, e.workerId);
        return [];
      }
      case 'lease-expired': {
        const k = this.#key(e.jobId, e.taskId);
        const holder = this.#leases.get(k)?.get(e.attempt);
        this.#leases.get(k)?.delete(e.attempt);
        if (holder !== undefined) {
          let m = this.#expired.get(k);
          if (!m) this.#expired.set(k, (m = new Map()));
          m.set(e.attempt, holder);
        }
        return [];
      }
      case 'task-stalled':
      case 'task-failed': {
        const k = this.#key(e.jobId, e.taskId);
        this.#leases.get(k)?.delete(e.attempt);
        this.#expired.get(k)?.delete(e.attempt);
        return [];
      }
      case 'task-committed': {
        const k = this.#key(e.jobId, e.taskId);
        const out: CoordinatorInvariant[] = [];
        if (this.#committed.has(k)) out.push('task-committed-twice');
        const holder = this.#leases.get(k)?.get(e.attempt) ?? this.#expired.get(k)?.get(e.attempt);
        if (holder === undefined) {
          if (!this.#committed.has(k)) out.push('stale-attempt-accepted');
        } else if (holder !== e.workerId) out.push('non-holder-accepted');
        this.#committed.add(k);
        this.#leases.delete(k);
        this.#expired.delete(k);
        return out;
      }
      case 'map-output-lost':
        // The committed output is gone (worker shuffle): the map runs again and may commit once more.
        this.#committed.delete(this.#key(e.jobId, e.taskId));
        return [];
      case 'job-finished': {
        for (const k of this.#byJob.get(e.jobId) ?? []) {
          this.#leases.delete(k);
          this.#expired.delete(k);
          this.#committed.delete(k);
        }
        this.#byJob.delete(e.jobId);
        return [];
      }
      default:
        return [];
    }
  }

  /** Tasks tracked (tests: the ledger forgets finished jobs). */
  get size(): number {
    return this.#leases.size + this.#expired.size + this.#committed.size;
  }
}

/**
 * Creates the coordinator's metrics on `registry`; `live()` is the scheduler
 * core the gauges read when scraped.
 */
export function coordinatorMetrics(registry: Registry, live: () => Scheduler, journal: () => { records: number; bytes: number; full: boolean }) {
  const registers = [registry];
  const m = {
    tasks: new Counter({ name: 'mr_tasks_total', help: 'Task attempts by phase and outcome', labelNames: ['phase', 'outcome'] as const, registers }),
    duration: new Histogram({
      name: 'mr_task_duration_seconds',
      help: 'Duration of committed task attempts, as reported by workers',
      labelNames: ['phase'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'mr_job_duration_seconds',
      help: 'Jobs from submission to their end, by final state (_count{state="failed"}: jobs failed)',
      labelNames: ['state'] as const,
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    fsync: new Histogram({ name: 'mr_journal_fsync_seconds', help: 'Journal write+fsync time per batch', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers }),
    compactions: new Histogram({ name: 'mr_journal_compaction_seconds', help: 'Journal rewrites from a snapshot, by duration', buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5], registers }),
    counters: new Counter({
      name: 'mr_job_counters_total',
      help: `Job counters (built-in and user.*) of committed task attempts, all jobs together; at most ${MAX_COUNTER_LABELS} names, later ones under name="other"`,
      labelNames: ['name'] as const,
      registers,
    }),
    reexecutions: new Counter({
      name: 'mr_map_reexecutions_total',
      help: 'Committed maps run again because their output was lost (worker shuffle: worker lost, or fetch failures)',
      registers,
    }),
    fetchFailures: new Counter({
      name: 'mr_fetch_failures_total',
      help: 'Fetch failures reduces reported (worker shuffle: a map output that could not be fetched after retries)',
      registers,
    }),
    invariants: new Counter({
      name: 'mr_invariant_violations_total',
      help: 'Invariant monitors, must stay 0: commits the coordinator cannot explain (task-committed-twice, stale-attempt-accepted, non-holder-accepted: all happened)',
      labelNames: ['invariant'] as const,
      registers,
    }),
  };
  zeroCounter(m.tasks, { phase: PHASES, outcome: TASK_OUTCOMES });
  zeroCounter(m.invariants, { invariant: COORDINATOR_INVARIANTS });
  for (const state of JOB_END_STATES) m.jobDuration.zero({ state });
  for (const phase of PHASES) m.duration.zero({ phase });

  new Gauge({ name: 'mr_journal_records', help: 'Records in the journal file (since its last compaction)', registers, collect() { this.set(journal().records); } });
  new Gauge({ name: 'mr_journal_bytes', help: 'Size of the journal file in bytes', registers, collect() { this.set(journal().bytes); } });
  new Gauge({ name: 'mr_journal_full', help: '1 while the journal cannot be written for want of space (new work refused with 507, the write retried every second)', registers, collect() { this.set(journal().full ? 1 : 0); } });
  new Gauge({
    name: 'mr_jobs',
    help: 'Jobs by state',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const counts: Record<string, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
      for (const j of live().jobs()) counts[j.state] = (counts[j.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'mr_jobs_retired',
    help: 'Finished jobs retired (beyond --retain-jobs) by final state',
    labelNames: ['state'] as const,
    registers,
    collect() {
      for (const [state, n] of Object.entries(live().retired())) this.set({ state }, n);
    },
  });
  new Gauge({ name: 'mr_workers', help: 'Live workers', registers, collect() { this.set(live().workers().length); } });
  new Gauge({ name: 'mr_parked_polls', help: 'Worker polls waiting for a task', registers, collect() { this.set(live().parkedPolls()); } });
  new Gauge({
    name: 'mr_tasks',
    help: 'Tasks of unfinished jobs by phase and state',
    labelNames: ['phase', 'state'] as const,
    registers,
    collect() {
      const acc = { map: { pending: 0, running: 0, done: 0 }, reduce: { pending: 0, running: 0, done: 0 } };
      for (const j of live().jobs()) {
        if (j.state !== 'queued' && j.state !== 'running') continue;
        for (const phase of PHASES) for (const s of ['pending', 'running', 'done'] as const) acc[phase][s] += j.tasks[phase][s];
      }
      for (const phase of PHASES) for (const s of ['pending', 'running', 'done'] as const) this.set({ phase, state: s }, acc[phase][s]);
    },
  });
  return m;
}
export type CoordinatorMetrics = ReturnType<typeof coordinatorMetrics>;
