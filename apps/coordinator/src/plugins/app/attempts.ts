/**
 * The attempts of each task as this coordinator saw them (worker, start, end,
 * outcome, reason), from the scheduler's events, for GET /v1/jobs/:id/tasks.
 * The core keeps only what scheduling needs (the last attempt, its lease, the
 * winner); this log is the shell's own account, with wall-clock times. It is
 * not journaled: after a restart it starts empty.
 *
 * Bounded: at most MAX_ATTEMPTS_PER_TASK attempts per task (the latest; the
 * count of all stays), and at most MAX_ATTEMPT_RECORDS attempts in all. Finished
 * jobs keep their detail until the bound needs room or more than
 * MAX_FINISHED_WITH_DETAIL jobs finished after them (oldest finished first);
 * when only unfinished jobs are left, further attempts are counted but not listed.
 */
import type { AttemptOutcome, AttemptView } from '@mr/mapreduce-protocol';
import type { SchedulerEvent } from '@mr/mapreduce-core';

export const MAX_ATTEMPTS_PER_TASK = 8;
export const MAX_ATTEMPT_RECORDS = 200_000;
export const MAX_FINISHED_WITH_DETAIL = 100;

interface Attempt extends AttemptView {
  jobId: string;
  taskId: string;
}

interface TaskAttempts {
  /** Attempts handed out (listed or not). */
  count: number;
  list: Attempt[];
}

export class AttemptLog {
  #jobs = new Map<string, Map<string, TaskAttempts>>();
  /** Finished jobs with detail, oldest first. */
  #finished: string[] = [];
  /** Running attempts (a lost worker's, a finished job's are closed through it). */
  #open = new Set<Attempt>();
  #records = 0;
  readonly #maxRecords: number;

  constructor(maxRecords = MAX_ATTEMPT_RECORDS) {
    this.#maxRecords = maxRecords;
  }

  /** Attempts held in all (for tests and the bound). */
  get size(): number {
    return this.#records;
  }

  /** Whether the job's attempt detail is kept (false once a finished job's was dropped, or for a job not seen since start). */
  has(jobId: string): boolean {
    return this.#jobs.has(jobId);
  }

  task(jobId: string, taskId: string): { count: number; attempts: AttemptView[] } | undefined {
    const t = this.#jobs.get(jobId)?.get(taskId);
    return t && { count: t.count, attempts: t.list.map(({ jobId: _j, taskId: _t, ...view }) => view) };
  }

  observe(e: SchedulerEvent, now: string): void {
    switch (e.type) {
      case 'job-accepted':
        this.#jobs.set(e.jobId, new Map());
        return;
      case 'task-assigned':
        this.#start(e.jobId, e.taskId, e.attempt, e.workerId, now);
        return;
      case 'task-stalled':
        this.#close(e.jobId, e.taskId, e.attempt, 'stalled', now, 'no progress within the progress timeout');
        return;
      case 'task-committed': {
        const a = this.#find(e.jobId, e.taskId, e.attempt) ?? this.#start(e.jobId, e.taskId, e.attempt, e.workerId, now);
        if (a) {
          this.#end(a, 'committed', now);
          a.durationMs = e.durationMs;
        }
        for (const other of this.#jobs.get(e.jobId)?.get(e.taskId)?.list ?? []) if (other.outcome === 'running') this.#end(other, 'superseded', now);
        return;
      }
      case 'task-failed':
        this.#close(e.jobId, e.taskId, e.attempt, 'failed', now, e.error);
        return;
      case 'lease-expired':
        this.#close(e.jobId, e.taskId, e.attempt, 'expired', now, 'lease expired');
        return;
      case 'stale-completion':
        this.#close(e.jobId, e.taskId, e.attempt, 'stale', now, e.reason);
        return;
      case 'worker-lost':
        for (const a of [...this.#open]) if (a.workerId === e.workerId) this.#end(a, 'lost', now, `worker ${e.workerId} lost`);
        return;
      case 'job-finished': {
        for (const a of [...this.#open]) {
          if (a.jobId !== e.jobId) continue;
          if (e.state === 'cancelled') this.#end(a, 'cancelled', now, 'job cancelled');
          else if (e.state === 'failed') this.#end(a, 'abandoned', now, `job failed: ${e.error ?? ''}`);
          else this.#end(a, 'superseded', now);
        }
        if (this.#jobs.has(e.jobId)) this.#finished.push(e.jobId);
        while (this.#finished.length > MAX_FINISHED_WITH_DETAIL) this.#drop(this.#finished.shift()!);
        return;
      }
      default:
        return;
    }
  }

  #find(jobId: string, taskId: string, attempt: number): Attempt | undefined {
    return this.#jobs.get(jobId)?.get(taskId)?.list.find((a) => a.attempt === attempt);
  }

  #start(jobId: string, taskId: string, attempt: number, workerId: string, now: string, reason?: string): Attempt | undefined {
    let job = this.#jobs.get(jobId);
    if (!job) {
      // A job accepted before this process started (replayed from the journal).
      job = new Map();
      this.#jobs.set(jobId, job);
    }
    let t = job.get(taskId);
    if (!t) {
      t = { count: 0, list: [] };
      job.set(taskId, t);
    }
    t.count++;
    while (this.#records >= this.#maxRecords && this.#finished.length > 0) this.#drop(this.#finished.shift()!);
    if (this.#records >= this.#maxRecords) return undefined;
    const a: Attempt = { jobId, taskId, attempt, workerId, startedAt: now, outcome: 'running', ...(reason ? { reason } : {}) };
    t.list.push(a);
    this.#records++;
    this.#open.add(a);
    if (t.list.length > MAX_ATTEMPTS_PER_TASK) {
      const old = t.list.shift()!;
      this.#open.delete(old);
      this.#records--;
    }
    return a;
  }

  #close(jobId: string, taskId: string, attempt: number, outcome: AttemptOutcome, now: string, reason: string): void {
    const a = this.#find(jobId, taskId, attempt);
    // A late report about an attempt that already ended (e.g. a completion after its lease expired) keeps the first outcome and reason.
    if (a && a.outcome === 'running') this.#end(a, outcome, now, reason);
  }

  #end(a: Attempt, outcome: AttemptOutcome, now: string, reason?: string): void {
    a.outcome = outcome;
    a.endedAt = now;
    if (reason !== undefined) a.reason = reason;
    this.#open.delete(a);
  }

  #drop(jobId: string): void {
    const job = this.#jobs.get(jobId);
    if (!job) return;
    for (const t of job.values()) {
      this.#records -= t.list.length;
      for (const a of t.list) this.#open.delete(a);
    }
    this.#jobs.delete(jobId);
  }
}
