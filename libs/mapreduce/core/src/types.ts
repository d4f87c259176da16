import type {
  BackupDecision, FetchFailureReply, HeartbeatReply, HeartbeatTask, JobSettings, JobState, MapReexecution, MapSource, PollReply, RecordRef, Shuffle, SkippedRecord, TaskAck, TaskPhase, TaskRef,
} from '@mr/mapreduce-protocol';

export type { BackupDecision, JobSettings, MapReexecution, MapSource, RecordRef, Shuffle, SkippedRecord };

/** Plain-object config with explicit limits; see validateConfig(). Units go last. */
export interface SchedulerConfig {
  /** Milliseconds per tick (only used to tell workers their lease in ms). */
  tickMs: number;
  /** A task not finished this many ticks after it was handed out goes to another worker. */
  leaseTicks: number;
  /** A worker silent for longer than this (and not parked in a poll) is declared lost. */
  heartbeatTimeoutTicks: number;
  /** How often workers should heartbeat while they run tasks (told at registration). */
  heartbeatIntervalTicks: number;
  /** A parked poll is answered 'wait' after this many ticks. */
  pollTimeoutTicks: number;
  /** Attempts per task before the job fails (lease expiries and failures count). */
  maxAttempts: number;
  /** Answer polls with 'exit' once at least one job was submitted and every job finished. */
  exitWhenDone: boolean;
  /** Jobs not yet finished that the scheduler accepts at once. */
  maxActiveJobs: number;
  /** Workers in the registry. */
  maxWorkers: number;
  /** Where per-job directories go when a JobSpec names none: <workRoot>/<jobId>/{work,out}. */
  workRoot: string;
  /**
   * Finished jobs kept (in memory, in the journal's snapshot, in GET /v1/jobs).
   * Older finished jobs are retired: only their count per state is kept, and
   * their idempotency keys are forgotten.
   */
  retainJobs: number;
  /**
   * After a restart with unfinished jobs, tasks are not handed out for this
   * many ticks. Leases are journaled, so attempts of the previous boot keep
   * their holder without it; a hold only spares re-running the few attempts
   * whose lease record was not yet on disk at the crash. Default 0.
   */
  recoveryTicks: number;
  /**
   * An attempt whose worker reported no progress (heartbeats carry a count of
   * bytes and records processed) for this many ticks is abandoned: its worker
   * is told to stop it and the task goes to the queue. Heartbeats renew a
   * lease, so this is what catches a task stuck on a live worker. A worker that
   * reports no progress at all gets this long per attempt. 0: no limit.
   */
  progressTimeoutTicks: number;
  /**
   * A heartbeat from the worker that holds a task's lease renews it (leaseTicks
   * from then), so a long task on a live worker is not handed out again; a
   * worker that falls silent loses its leases after heartbeatTimeoutTicks.
   * False: the lease runs from the hand-out whatever the heartbeats (the lab's
   * plain 10-second rule).
   */
  renewLeases: boolean;
  /**
   * Attempt fencing: a completion or heartbeat counts only from the attempt
   * that holds the task's lease, on the worker it was handed to. false BREAKS
   * THE RULE on purpose (chaos drills only; `mr coordinator` refuses it without
   * --drill-unsafe): completions of stale attempts are accepted while the task
   * is not done, and heartbeats never tell a stale attempt to abandon.
   */
  fencing: boolean;
  /** maps x reduces (intermediate files) of one job. */
  maxIntermediatesPerJob: number;
  /** Tasks (maps + reduces) of all unfinished jobs together. */
  maxQueuedTasks: number;
  /**
   * Backup (speculative) attempts, paper §3.6: once a phase has no pending
   * task and at least backupDoneFraction of it is done, a running task that
   * has run backupSlowness times the phase's median (and at least
   * backupMinTicks) gets a second attempt on an idle worker; the first
   * valid completion wins. Jobs may turn it off (settings.backupTasks).
   */
  backupTasks: boolean;
  backupSlowness: number;
  backupMinTicks: number;
  backupDoneFraction: number;
  /** Where jobs that do not choose keep map output (JobSettings.shuffle): the shared filesystem, or the map worker. */
  shuffle: Shuffle;
  /**
   * Worker-served shuffle: a committed map's output is declared lost (and the
   * map run again) after this many fetch failures reported for it, even while
   * its worker still heartbeats (reduces cannot reach it). A lost worker's
   * outputs are lost at once.
   */
  fetchFailuresToRerun: number;
  /**
   * Worker-served shuffle: run again the committed maps of a lost worker (or
   * of an unreachable output). false BREAKS THE RULE on purpose (tests that
   * prove the rule; `mr coordinator` refuses it without --drill-unsafe): the
   * reduces then wait for an output that never comes back.
   */
  reexecuteLostMaps: boolean;
  /**
   * Bad-record skipping (paper §4.6, jobs with settings.skipBadRecords): a
   * record the worker names as the one user code failed on (threw, or made
   * no progress for progressTimeoutTicks) this many times is skipped by the
   * task's next attempts. Each skipped record gives its task this many more
   * attempts beyond maxAttempts.
   */
  skipAfterFailures: number;
}

/** Records a job skips at most when it does not say (settings.maxSkippedRecords). */
export const DEFAULT_MAX_SKIPPED_RECORDS = 10;

export const DEFAULT_CONFIG: SchedulerConfig = {
  tickMs: 100,
  leaseTicks: 100,
  heartbeatTimeoutTicks: 50,
  heartbeatIntervalTicks: 10,
  pollTimeoutTicks: 100,
  maxAttempts: 10,
  exitWhenDone: false,
  maxActiveJobs: 1000,
  maxWorkers: 10_000,
  workRoot: '/tmp/mr/jobs',
  retainJobs: 1000,
  recoveryTicks: 0,
  progressTimeoutTicks: 6000,
  renewLeases: true,
  fencing: true,
  maxIntermediatesPerJob: 1_000_000,
  maxQueuedTasks: 1_000_000,
  backupTasks: true,
  backupSlowness: 2,
  backupMinTicks: 10,
  backupDoneFraction: 0.5,
  shuffle: 'shared',
  fetchFailuresToRerun: 3,
  reexecuteLostMaps: true,
  skipAfterFailures: 2,
};

/**
 * The journal's format, written in every 'boot' and 'snapshot' record; it
 * applies to the records after it. 1 (no format field): job ids j<N> and a
 * snapshot's jobSeq is the highest N. 2: ULID job ids; a snapshot also carries
 * legacySeq, lastId and retiredThrough. restore() reads both and refuses newer ones.
 */
export const JOURNAL_FORMAT = 2;

/** Attempt numbers of boot b start above (b-1) * ATTEMPT_EPOCH, so a restart never reuses one. */
export const ATTEMPT_EPOCH = 1000;

/** What the shell hands over for a validated submission. */
export interface JobSpec {
  app: string;
  /** Absolute, validated input files. */
  inputs: string[];
  /** File names map functions see, one per input (default: the inputs). */
  names?: string[] | undefined;
  reduces: number;
  /** Absolute output directory (reduce outputs mr-out-<r>); default <workRoot>/<jobId>/out. */
  output?: string | undefined;
  /** Per-job work directory; map attempts write into <workDir>/m<idx>-a<attempt>; default <workRoot>/<jobId>/work. */
  workDir?: string | undefined;
  options: Record<string, string>;
  name?: string | undefined;
  /**
   * The map tasks' inputs, computed by the shell at submit (it stats the
   * files): map task m reads splits[m], pieces of inputs by index and byte
   * range. Default: one map task per whole input.
   */
  splits?: JobSplit[] | undefined;
  /** The framework's job options (the paper's refinements); absent: the defaults. */
  settings?: JobSettings | undefined;
}


/** One input's part of a split: the lines starting in [start, end) (end absent: to the end of the file). */
export interface JobSplitPiece {
  input: number;
  start: number;
  end?: number | undefined;
}
export type JobSplit = JobSplitPiece[];

/** A JobSpec with its directories resolved (as persisted). */
export type ResolvedJobSpec = JobSpec & { output: string; workDir: string };

export interface WorkerInfo {
  name: string;
  pid: number;
  host: string;
  slots: number;
}

/**
 * Worker inputs carry `credential`: what the shell derived from the secret the
 * worker was given at registration (a hash). Only the registered worker of an
 * id may act for it; ids that never registered in this boot are refused.
 */
export type SchedulerInput =
  | { type: 'tick' }
  /**
   * `idempotency`: a client's key and a fingerprint of its request (the shell
   * hashes the body). A key already used answers the job it created (same
   * fingerprint) or is refused (another fingerprint).
   */
  /**
   * jobId: the id the job gets if accepted, chosen by the shell (a ULID, see
   * @mr/mapreduce-protocol job-id.ts) and newer than every id accepted before
   * (a broken promise is an assertion); unused when the submission is refused
   * or its idempotency key names an earlier job. A legacy id j<N> above every
   * one seen is accepted too (transcripts use them).
   */
  | { type: 'submit'; requestId: string; jobId: string; job: JobSpec; idempotency?: Idempotency | undefined }
  | { type: 'cancel'; requestId: string; jobId: string }
  | { type: 'register'; requestId: string; worker: WorkerInfo; credential: string }
  | { type: 'poll'; requestId: string; workerId: string; credential: string; free?: number | undefined }
  /** The client of a parked poll went away: forget it without answering. */
  | { type: 'poll-gone'; requestId: string }
  | {
      type: 'complete';
      requestId: string;
      workerId: string;
      credential: string;
      jobId: string;
      taskId: string;
      attempt: number;
      durationMs: number;
      /** A map's declared outputs (checked to be its attempt's mr-<m>-<r> files); ignored for reduces. */
      files: string[];
      counters?: Record<string, number> | undefined;
      /** A served map's output: the base URL of the worker's intermediate server (required for worker-shuffle maps). */
      location?: string | undefined;
    }
  /** A reduce attempt could not fetch map `map`'s output (attempt `mapAttempt`): answered with what to do (FetchFailureReply). */
  | { type: 'fetch-failed'; requestId: string; workerId: string; credential: string; jobId: string; taskId: string; attempt: number; map: number; mapAttempt: number; error: string }
  /** A worker names the jobs whose map output it keeps: answered with those that are over (it deletes their files). */
  | { type: 'held'; requestId: string; workerId: string; credential: string; jobs: string[] }
  /** record: the record user code failed on (jobs that skip bad records). */
  | { type: 'fail'; requestId: string; workerId: string; credential: string; jobId: string; taskId: string; attempt: number; error: string; retryable: boolean; record?: RecordRef | undefined }
  /** tasks: the attempts the worker runs, each with its progress (a count that grows while it works). */
  | { type: 'heartbeat'; requestId: string; workerId: string; credential: string; tasks: HeartbeatTask[] }
  /** The shell carried out a Publish (renamed the attempt's output into the job's output dir). */
  | { type: 'published'; jobId: string; taskId: string; attempt: number }
  /** The shell could not carry out a Publish: the job fails. */
  | { type: 'publish-failed'; jobId: string; taskId: string; attempt: number; error: string }
  /** The coordinator is closing: answer every parked poll with 'exit' and refuse new work. */
  | { type: 'shutdown'; reason: string };

export interface Idempotency {
  key: string;
  fingerprint: string;
}

export type ReplyBody =
  | { kind: 'poll'; reply: PollReply }
  | { kind: 'ack'; ack: TaskAck }
  | { kind: 'heartbeat'; reply: HeartbeatReply }
  | { kind: 'fetch'; reply: FetchFailureReply }
  | { kind: 'drop'; jobs: string[] }
  | { kind: 'registered'; workerId: string }
  /** existing: the idempotency key was seen before; this is the job it created. */
  | { kind: 'created'; jobId: string; state: JobState; existing?: boolean }
  | { kind: 'cancelled'; jobId: string; state: JobState }
  | {
      kind: 'refused';
      code:
        | 'not-found'
        | 'too-many-jobs'
        | 'too-many-workers'
        | 'shutting-down'
        | 'idempotency-conflict'
        | 'job-too-big'
        | 'output-in-use'
        | 'unknown-worker'
        | 'worker-credential'
        | 'bad-completion'
        | 'bad-report';
      message: string;
    };

export interface Reply {
  requestId: string;
  body: ReplyBody;
}

/** How many jobs were retired (dropped after retainJobs newer ones finished), by final state. */
export interface RetiredCounts {
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** A finished job as kept after it ended (no per-task state, no input list). */
export interface JobSummary {
  spec: Omit<ResolvedJobSpec, 'inputs' | 'names'>;
  inputs: number;
  state: 'succeeded' | 'failed' | 'cancelled';
  error?: string | undefined;
  counts: { map: PhaseCountsView; reduce: PhaseCountsView };
  attempts: { started: number; reissued: number; failed: number };
  counters: Record<string, number>;
  idempotency?: Idempotency | undefined;
  backups?: BackupDecision[] | undefined;
  reexecutions?: MapReexecution[] | undefined;
  skipped?: SkippedRecord[] | undefined;
}

/** An unfinished job as written in a snapshot: its spec, its committed tasks and totals. */
export interface ActiveJobImage {
  spec: ResolvedJobSpec;
  state: 'queued' | 'running';
  /** workerId, location: a served map's output (worker shuffle). */
  committed: { taskId: string; attempt: number; files: string[]; workerId?: string | undefined; location?: string | undefined }[];
  /** Unfinished maps run again after their output was lost, whose counters the job already holds (absent: none). */
  counted?: string[] | undefined;
  reexecutions?: MapReexecution[] | undefined;
  /** Attempts holding a lease (absent: none): after a restart only their holder may report them. */
  leases?: { taskId: string; attempt: number; workerId: string }[] | undefined;
  /** Attempts handed out so far per unfinished task (absent: none), counted toward maxAttempts. */
  issued?: Record<string, number> | undefined;
  /** Committed reduces whose output was renamed into the output dir (absent: none). */
  published?: string[] | undefined;
  attempts: { started: number; reissued: number; failed: number };
  counters: Record<string, number>;
  idempotency?: Idempotency | undefined;
  /** The decision log so far (absent: none); a decision still 'running' is a backup attempt whose holder may report it after a restart. */
  backups?: BackupDecision[] | undefined;
  /** Records skipped so far (absent: none); their tasks' next attempts skip them. */
  skipped?: SkippedRecord[] | undefined;
}

/**
 * Durable records: the shell writes them (fsync) before it sends the step's replies.
 * A compacted journal starts with the records of Scheduler.snapshot(): one
 * 'snapshot' record, then one 'job-summary' or 'job-image' per job kept.
 */
export type PersistRecord =
  | { type: 'boot'; boot: number; format?: number | undefined }
  /**
   * jobSeq: jobs accepted so far. Format 2 adds legacySeq (the highest N of a
   * j<N> id, when there was one), lastId (the newest ULID accepted) and
   * retiredThrough (the newest ULID of a retired job).
   */
  | {
      type: 'snapshot';
      boot: number;
      jobSeq: number;
      retired: RetiredCounts;
      format?: number | undefined;
      legacySeq?: number | undefined;
      lastId?: string | undefined;
      retiredThrough?: string | undefined;
    }
  | { type: 'job-summary'; jobId: string; summary: JobSummary }
  | { type: 'job-image'; jobId: string; image: ActiveJobImage }
  | { type: 'job-accepted'; jobId: string; job: ResolvedJobSpec; idempotency?: Idempotency | undefined }
  | { type: 'job-started'; jobId: string }
  /** credential: what the shell derived from the worker's secret (a hash), so a restart still knows the worker. */
  | { type: 'worker-registered'; workerId: string; credential: string; worker: WorkerInfo }
  /** files: a map's checked outputs; a reduce's output is its attempt's (see Publish), files is []. */
  | {
      type: 'task-committed'; jobId: string; taskId: string; attempt: number; files: string[]; counters: Record<string, number>;
      /** A served map's: the worker that keeps its output and where it serves it. */
      workerId?: string | undefined; location?: string | undefined;
    }
  /** A committed map's output was lost (its worker lost, or fetch failures): the map runs again; lazy. */
  | { type: 'map-output-lost'; jobId: string; taskId: string; attempt: number; workerId: string; reason: string; reducesWaiting: number }
  /** A reduce reported a failed fetch of a map's output (counted; enough of them lose the output); lazy. */
  | { type: 'fetch-failed'; jobId: string; taskId: string; attempt: number }
  /** A committed reduce's output was renamed into the output directory. */
  | { type: 'output-published'; jobId: string; taskId: string; attempt: number }
  /** An attempt was handed to a worker: durable before the worker hears of it (a backup taking over a lost original is journaled lazily). */
  | { type: 'task-leased'; jobId: string; taskId: string; attempt: number; workerId: string }
  /** The attempt's lease ended without a commit (expired, failed, no progress, worker lost); lazy. */
  | { type: 'task-released'; jobId: string; taskId: string; attempt: number }
  /**
   * A backup attempt was handed to a worker, with its decision (why): durable
   * before the worker hears of it, like task-leased, so a restart keeps the
   * decision log and the backup's holder may still report its attempt.
   */
  | { type: 'backup-launched'; jobId: string; taskId: string; attempt: number; workerId: string; decision: BackupDecision }
  /**
   * A backup race was decided (not 'job-ended': job-finished carries the log);
   * 'original-lost': the backup became the task's holder. Lazy.
   */
  | { type: 'backup-ended'; jobId: string; taskId: string; attempt: number; outcome: Exclude<BackupDecision['outcome'], 'running' | 'job-ended'>; originalRanMs: number; backupRanMs: number }
  /** A bad record is skipped from now on by its task's attempts: durable before an attempt that skips it is handed out. */
  | { type: 'record-skipped'; jobId: string; skipped: SkippedRecord }
  /** The worker was declared lost (silent past the heartbeat timeout): a restart does not bring it back; lazy. */
  | { type: 'worker-lost'; workerId: string }
  /** backups: the job's backup decision log (kept with the finished job). */
  | {
      type: 'job-finished'; jobId: string; state: 'succeeded' | 'failed' | 'cancelled'; error?: string | undefined; backups?: BackupDecision[] | undefined;
      reexecutions?: MapReexecution[] | undefined;
    };

export type SchedulerEvent =
  | { type: 'job-accepted'; jobId: string }
  | { type: 'job-started'; jobId: string }
  | { type: 'job-progress'; jobId: string }
  /** workDir and output: where the job's intermediates and outputs are, for the shell's cleanup. */
  | { type: 'job-finished'; jobId: string; state: 'succeeded' | 'failed' | 'cancelled'; error?: string | undefined; workDir: string; output: string }
  | { type: 'task-assigned'; jobId: string; taskId: string; phase: TaskPhase; attempt: number; workerId: string; reissue: boolean }
  /** counters: the committed attempt's (the ones added to the job). */
  | { type: 'task-committed'; jobId: string; taskId: string; phase: TaskPhase; attempt: number; workerId: string; durationMs: number; counters: Record<string, number> }
  | { type: 'task-failed'; jobId: string; taskId: string; phase: TaskPhase; attempt: number; workerId: string; error: string; retryable: boolean }
  | { type: 'lease-expired'; jobId: string; taskId: string; phase: TaskPhase; attempt: number; workerId: string }
  /** The attempt reported no progress for progressTimeoutTicks: abandoned (its worker is told to stop it) and re-queued. */
  | { type: 'task-stalled'; jobId: string; taskId: string; phase: TaskPhase; attempt: number; workerId: string; progress: number }
  /** A backup attempt was launched for a straggler, or its race was decided (outcome). */
  | { type: 'backup'; jobId: string; taskId: string; outcome: BackupDecision['outcome']; attempt: number; workerId: string }
  /** A committed map's output was lost and the map goes back to the queue (paper §3.3). */
  | { type: 'map-output-lost'; jobId: string; taskId: string; attempt: number; workerId: string; reason: string }
  /** A reduce attempt reported that it could not fetch map `map`'s output from the worker that keeps it. */
  | { type: 'fetch-failed'; jobId: string; taskId: string; attempt: number; workerId: string; map: number; mapAttempt: number; error: string }
  /** A bad record was put on its task's skip list (its next attempts skip it). */
  | { type: 'record-skipped'; jobId: string; taskId: string; record: RecordRef; failures: number }
  | { type: 'stale-completion'; jobId: string; taskId: string; attempt: number; workerId: string; reason: string }
  | { type: 'worker-registered'; workerId: string }
  | { type: 'worker-lost'; workerId: string; released: number }
  | { type: 'worker-gone'; workerId: string }
  | { type: 'all-done' };

/**
 * The commit of a reduce attempt: rename `from` (the attempt's file in the job's
 * work dir) to `to` (in the job's output dir). The shell does it after the
 * step's records are durable and before the step's replies, then steps
 * 'published' (or 'publish-failed'). Only an accepted reduce completion of a
 * running job emits one; replay re-emits those owed (see Scheduler.owedPublishes).
 */
export interface Publish {
  jobId: string;
  taskId: string;
  attempt: number;
  from: string;
  to: string;
}

export interface Effects {
  replies: Reply[];
  /** Durable before any of the step's replies is sent. */
  persist: PersistRecord[];
  /**
   * Records no reply waits for (releases, lost workers, a backup's take-over):
   * the shell writes them in order with the next durable batch, or soon.
   * Losing the last few in a crash costs at most re-running an attempt
   * (a released lease comes back and expires; a lost worker comes back and
   * times out). Leases handed to a worker are durable (persist), not lazy.
   */
  persistLazy: PersistRecord[];
  events: SchedulerEvent[];
  publish: Publish[];
}

export interface PhaseCountsView {
  total: number;
  pending: number;
  running: number;
  done: number;
}

/** The core's part of a JobView (the shell adds wall-clock timestamps). */
export interface CoreJobView {
  id: string;
  name?: string | undefined;
  app: string;
  state: JobState;
  reduces: number;
  inputs: number;
  output: string;
  options: Record<string, string>;
  settings?: JobSettings | undefined;
  tasks: { map: PhaseCountsView; reduce: PhaseCountsView };
  attempts: { started: number; reissued: number; failed: number };
  counters: Record<string, number>;
  backups?: BackupDecision[] | undefined;
  reexecutions?: MapReexecution[] | undefined;
  skipped?: SkippedRecord[] | undefined;
  outputFiles: string[];
  error?: string | undefined;
}

/** One task of an unfinished job as the core holds it now (Scheduler.tasks). */
export interface CoreTaskView {
  id: string;
  phase: TaskPhase;
  index: number;
  state: 'pending' | 'leased' | 'done';
  /** Attempts handed out so far (this boot and earlier ones). */
  attempts: number;
  /** The attempt that holds the lease now, and its worker. */
  lease?: { attempt: number; workerId: string } | undefined;
  /** The attempt whose output was committed. */
  committed?: number | undefined;
}

export interface CoreWorkerView {
  id: string;
  name: string;
  pid: number;
  host: string;
  slots: number;
  registeredTick: number;
  lastContactTick: number;
  parked: boolean;
  tasks: TaskRef[];
}

/**
 * Scheduler.image(): the complete state of a scheduler between steps, for a
 * standby's state transfer. `state` is opaque (the scheduler's own fields,
 * with Maps, Sets and shared objects): clone it structurally (v8.serialize,
 * structuredClone), never as JSON.
 */
export interface SchedulerImage {
  version: 1;
  config: SchedulerConfig;
  boot: number;
  state: unknown;
}
