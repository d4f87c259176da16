/**
 * The MapReduce scheduler as a pure, deterministic state machine.
 *
 *   core.step(input); const fx = core.ready(); <persist fx.persist durably>;
 *   <send fx.replies, record fx.events>; core.advance();
 *
 * No I/O, no clock: time arrives as 'tick' inputs and everything is counted
 * in ticks. The shell must make fx.persist durable before it sends any of
 * that step's replies.
 */
import {
  LIMITS,
  MAX_POLL_BATCH,
  isUlidJobId,
  legacyJobNumber,
  type Assignment,
  type FetchFailureReply,
  type MapReexecution,
  type MapSource,
  type HeartbeatTask,
  type JobState,
  type MapAssignment,
  type PollReply,
  type ReduceAssignment,
  type TaskAck,
  type TaskPhase,
  type TaskRef,
} from '@mr/mapreduce-protocol';
import { checkMapOutputs, mapAttemptDir, partitionFile, reduceAttemptDir, reduceInputs } from './partition.ts';
import {
  ATTEMPT_EPOCH,
  DEFAULT_CONFIG,
  JOURNAL_FORMAT,
  DEFAULT_MAX_SKIPPED_RECORDS,
  type RecordRef,
  type SkippedRecord,
  type CoreJobView,
  type CoreWorkerView,
  type CoreTaskView,
  type Effects,
  type ActiveJobImage,
  type BackupDecision,
  type Idempotency,
  type JobSpec,
  type JobSplit,
  type JobSummary,
  type PersistRecord,
  type RetiredCounts,
  type PhaseCountsView,
  type Publish,
  type ReplyBody,
  type ResolvedJobSpec,
  type SchedulerConfig,
  type SchedulerEvent,
  type SchedulerImage,
  type SchedulerInput,
  type WorkerInfo,
} from './types.ts';

type TaskState = 'pending' | 'leased' | 'done';

interface Lease {
  jobId: string;
  taskId: string;
  attempt: number;
  workerId: string;
  expiresAtTick: number;
  /** The highest progress its worker reported, and the tick it last grew (or the lease began). */
  progress: number;
  progressTick: number;
  /** The record its user code was on at the last heartbeat (jobs that skip bad records). */
  record?: RecordRef | undefined;
}

/** A task's bad-record state (jobs that skip bad records; paper §4.6). */
interface TaskSkip {
  /** Attempts call map once per record (after a failure, so a failure names its record). */
  perRecord: boolean;
  /** Failures per record (recordKey) not yet skipped. */
  failures: Map<string, number>;
  /** Records the task's attempts skip. */
  records: RecordRef[];
}

/** The task's bad-record state (made on first use). */
function skipOf(task: Task): TaskSkip {
  if (!task.skip) {
    const records: RecordRef[] = [];
    task.skip = { perRecord: false, failures: new Map(), records };
  }
  return task.skip;
}

/** What identifies a record within its task. */
const recordKey = (r: RecordRef): string => (r.phase === 'map' ? `m${r.input}:${r.offset}` : `r${r.group}`);

interface Task {
  phase: TaskPhase;
  index: number;
  id: string;
  state: TaskState;
  /** Highest attempt number handed out (the fencing token a completion must carry). */
  lastAttempt: number;
  /** Attempts handed out in this boot and earlier ones (counts toward maxAttempts). */
  attemptsIssued: number;
  lease?: Lease | undefined;
  /** An attempt of an earlier boot whose journaled lease this boot restored (only its holder may report it). */
  adopted?: number | undefined;
  /** The worker lastAttempt was handed to: only it may complete or fail that attempt (also after its lease ran out, until the task is handed out again). */
  holder?: string | undefined;
  /** workerId, location: where a served map's output is kept (worker shuffle). */
  winner?: { attempt: number; files: string[]; workerId?: string | undefined; location?: string | undefined } | undefined;
  /** A map run again after its output was lost: its counters are in the job already (added once per task). */
  counted?: boolean | undefined;
  /** Fetch failures reduces reported for the winner's output (worker shuffle). */
  fetchFailures?: number | undefined;
  /** A committed reduce whose output the shell renamed into the output dir. */
  published?: boolean | undefined;
  /** When the holder's attempt was handed out (this boot), for straggler detection. */
  startedTick?: number | undefined;
  /** A backup attempt racing the holder's (at most one at a time). */
  backup?: Backup | undefined;
  /** Highest attempt number given to a backup (the next hand-out goes above it). */
  backupAttempt?: number | undefined;
  skip?: TaskSkip | undefined;
}

/** A running backup attempt: its own lease on another worker, and its entry in the job's decision log. */
interface Backup {
  attempt: number;
  workerId: string;
  lease: Lease;
  startedTick: number;
  /** The holder's attempt start, for the log. */
  originalStartedTick: number;
  log: BackupDecision;
}

interface Job {
  id: string;
  spec: ResolvedJobSpec;
  /** Number of inputs (kept when a finished job's input list is dropped). */
  inputCount: number;
  idempotency?: Idempotency | undefined;
  state: JobState;
  /** Empty once the job finished (a finished job keeps only its totals). */
  maps: Task[];
  reduces: Task[];
  counts: { map: PhaseCountsView; reduce: PhaseCountsView };
  attempts: { started: number; reissued: number; failed: number };
  counters: Record<string, number>;
  error?: string | undefined;
  /** Leased tasks (both phases), for straggler detection without a scan of every task. */
  running: Set<Task>;
  /** Ticks the committed attempts of this boot took, per phase (their median is a straggler's yardstick). */
  durations: { map: number[]; reduce: number[] };
  /** Stragglers found on the last tick, waiting for an idle worker to run their backup. */
  wanted: Map<Task, string>;
  /** The decision log: every backup launched (at most the job's cap). */
  backups: BackupDecision[];
  /** Bad records skipped (at most the job's maxSkippedRecords). */
  skipped: SkippedRecord[];
  median?: { phase: TaskPhase; n: number; value: number } | undefined;
  /** Maps run again because their output was lost (at most LIMITS.maxReexecutionLog kept). */
  reexecutions: MapReexecution[];
}

interface Worker {
  id: string;
  info: WorkerInfo;
  /** From the shell: derived from the secret handed out at registration. */
  credential: string;
  registeredTick: number;
  lastContactTick: number;
  leases: Map<string, Lease>;
}

interface Parked {
  requestId: string;
  workerId: string;
  sinceTick: number;
  /** Tasks the poll may take (the worker's free slots); above 1 the answer is a batch. */
  free: number;
}

/** The private state image() exposes (opaque outside this file). */
interface ImageState {
  tick: number;
  jobSeq: number;
  legacySeq: number;
  lastId: string | undefined;
  retiredThrough: string | undefined;
  workerSeq: number;
  jobs: Map<string, Job>;
  active: Job[];
  finished: Job[];
  retired: RetiredCounts;
  keys: Map<string, Job>;
  holdUntilTick: number;
  workers: Map<string, Worker>;
  parked: Parked[];
  shuttingDown: string | undefined;
  allDoneAnnounced: boolean;
}

export class SchedulerAssertion extends Error {
  override name = 'SchedulerAssertion';
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new SchedulerAssertion(msg);
}

export function validateConfig(c: SchedulerConfig): string | undefined {
  if (c.workRoot === '' || c.workRoot.endsWith('/')) return `workRoot must be a directory path without a trailing slash, got "${c.workRoot}"`;
  const pos = [
    'tickMs', 'leaseTicks', 'heartbeatTimeoutTicks', 'heartbeatIntervalTicks', 'pollTimeoutTicks', 'maxAttempts', 'maxActiveJobs', 'maxWorkers',
    'maxIntermediatesPerJob', 'maxQueuedTasks',
  ] as const;
  for (const k of pos) if (!Number.isInteger(c[k]) || c[k] < 1) return `${k} must be a positive integer, got ${c[k]}`;
  for (const k of ['retainJobs', 'recoveryTicks', 'progressTimeoutTicks'] as const) if (!Number.isInteger(c[k]) || c[k] < 0) return `${k} must be a non-negative integer, got ${c[k]}`;
  if (c.maxAttempts >= ATTEMPT_EPOCH) return `maxAttempts must be below ${ATTEMPT_EPOCH}`;
  if (!(c.backupSlowness >= 1)) return `backupSlowness must be at least 1, got ${c.backupSlowness}`;
  if (!Number.isInteger(c.backupMinTicks) || c.backupMinTicks < 1) return `backupMinTicks must be a positive integer, got ${c.backupMinTicks}`;
  if (!(c.backupDoneFraction >= 0 && c.backupDoneFraction <= 1)) return `backupDoneFraction must be within 0..1, got ${c.backupDoneFraction}`;
  if (!Number.isInteger(c.skipAfterFailures) || c.skipAfterFailures < 1) return `skipAfterFailures must be a positive integer, got ${c.skipAfterFailures}`;
  if (c.heartbeatIntervalTicks >= c.heartbeatTimeoutTicks) return 'heartbeatIntervalTicks must be below heartbeatTimeoutTicks';
  if (c.shuffle !== 'shared' && c.shuffle !== 'worker') return `shuffle must be 'shared' or 'worker', got ${String(c.shuffle)}`;
  if (!Number.isInteger(c.fetchFailuresToRerun) || c.fetchFailuresToRerun < 1) return `fetchFailuresToRerun must be a positive integer, got ${c.fetchFailuresToRerun}`;
  return undefined;
}

const key = (jobId: string, taskId: string): string => `${jobId}/${taskId}`;

/** Counter names one job keeps (built-in and user counters together); see #addCounters. */
export const MAX_JOB_COUNTERS = 128;
/** How many counter updates were dropped because the job had MAX_JOB_COUNTERS names already. */
export const DROPPED_COUNTER = 'countersDropped';

const wholeInputs = new WeakMap<JobSpec, JobSplit[]>();
/** The job's map tasks' inputs: its splits, or one whole input per map task. */
function mapSplits(spec: JobSpec): JobSplit[] {
  if (spec.splits) return spec.splits;
  let s = wholeInputs.get(spec);
  if (!s) {
    s = spec.inputs.map((_, i) => [{ input: i, start: 0 }]);
    wholeInputs.set(spec, s);
  }
  return s;
}

/**
 * Splits cover every input: each input's pieces appear in input order, the
 * first starting at 0, each next starting where the previous ended, the last
 * one open-ended; no split is empty.
 */
function splitsCover(splits: JobSplit[], inputs: number): boolean {
  let next = 0;
  let at = 0;
  for (const split of splits) {
    if (split.length === 0) return false;
    for (const p of split) {
      if (p.input !== next || p.start !== at || !Number.isInteger(p.start)) return false;
      if (p.end === undefined) {
        next++;
        at = 0;
      } else {
        if (!Number.isInteger(p.end) || p.end <= p.start) return false;
        at = p.end;
      }
    }
  }
  return next === inputs && at === 0;
}
/** a is b, or one lies inside the other (normalized absolute paths). */
const nested = (a: string, b: string): boolean => a === b || a.startsWith(b.endsWith('/') ? b : `${b}/`) || b.startsWith(a.endsWith('/') ? a : `${a}/`);
/** The median of a non-empty list of numbers. */
function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
const terminal = (s: JobState): boolean => s === 'succeeded' || s === 'failed' || s === 'cancelled';
/** The job's map output is kept and served by the workers that made it (worker shuffle). */
const served = (job: Job): boolean => job.spec.settings?.shuffle === 'worker';
/** Counters the scheduler itself keeps for a job (worker shuffle). */
export const FETCH_FAILURES_COUNTER = 'fetchFailures';
export const MAP_REEXECUTIONS_COUNTER = 'mapReexecutions';

export class Scheduler {
  readonly config: SchedulerConfig;
  readonly boot: number;
  #tick = 0;
  /** Jobs accepted so far. */
  #jobSeq = 0;
  /** The highest N of a job id j<N> (journals of format 1 named jobs so). */
  #legacySeq = 0;
  /** The newest ULID accepted: a new job's id must be newer. */
  #lastId: string | undefined;
  /** The newest ULID of a retired job: older ids not kept are retired (see isRetired). */
  #retiredThrough: string | undefined;
  #workerSeq = 0;
  /** Every job kept, in submission order (replay keeps it: a snapshot lists jobs in this order). */
  #jobs = new Map<string, Job>();
  /** FIFO of jobs not yet finished, in submission order. */
  #active: Job[] = [];
  /** Finished jobs still kept, oldest finish first (at most config.retainJobs). */
  #finished: Job[] = [];
  #retired: RetiredCounts = { succeeded: 0, failed: 0, cancelled: 0 };
  /** Idempotency key -> job, for every job kept. */
  #keys = new Map<string, Job>();
  /** No task is handed out before this tick (recovery after a restart). */
  #holdUntilTick = 0;
  #workers = new Map<string, Worker>();
  #parked: Parked[] = [];
  #shuttingDown: string | undefined;
  #allDoneAnnounced = false;
  #fx: Effects = { replies: [], persist: [], persistLazy: [], events: [], publish: [] };

  constructor(config: Partial<SchedulerConfig> = {}, boot = 1, announce = true) {
    this.config = { ...DEFAULT_CONFIG, ...config };
    const problem = validateConfig(this.config);
    if (problem) throw new RangeError(`scheduler config: ${problem}`);
    this.boot = boot;
    if (announce) this.#fx.persist.push({ type: 'boot', boot, format: JOURNAL_FORMAT });
  }

  /**
   * Rebuilds the state from persisted records (a journal) and starts a new
   * boot: every accepted job is known again, committed tasks stay committed,
   * and tasks of unfinished jobs that had not committed run again.
   */
  static restore(config: Partial<SchedulerConfig>, records: Iterable<PersistRecord>): Scheduler {
    // Records are consumed one at a time (a journal is streamed, never held whole).
    // The boot number is known only at the end: tasks are created with attempt
    // base 0 and moved to this boot's base once every record is in.
    const s = new Scheduler(config, 1, false);
    let boots = 0;
    for (const r of records) {
      if (r.type === 'boot' || r.type === 'snapshot') {
        assert((r.format ?? 1) <= JOURNAL_FORMAT, `journal: format ${r.format} is newer than this coordinator's (${JOURNAL_FORMAT}); run a newer coordinator`);
        boots = Math.max(boots, r.boot);
      }
      s.#replay(r);
    }
    s.#startBoot(boots + 1);
    // A job whose every reduce output was published but whose finish record was lost finishes now.
    for (const job of [...s.#active]) s.#finishIfPublished(job);
    if (s.#active.length > 0) s.#holdUntilTick = s.config.recoveryTicks;
    return s;
  }

  /** Sets the boot number after a replay: unfinished tasks' attempts start at this boot's base. */
  #startBoot(boot: number): void {
    (this as { boot: number }).boot = boot;
    const base = (boot - 1) * ATTEMPT_EPOCH;
    for (const job of this.#active) {
      for (const t of [...job.maps, ...job.reduces]) {
        if (t.state === 'done') continue;
        t.lastAttempt = Math.max(t.lastAttempt, base);
        // A journaled lease stays its holder's (only it may report the attempt), for a full term from now.
        if (t.lease) {
          t.adopted = t.lease.attempt;
          t.lease.expiresAtTick = this.#tick + this.config.leaseTicks;
          t.lease.progressTick = this.#tick;
        } else t.holder = undefined;
        // A journaled backup attempt stays its worker's too (it races the holder's as before).
        if (t.backup) {
          t.backup.lease.expiresAtTick = this.#tick + this.config.leaseTicks;
          t.backup.lease.progressTick = this.#tick;
          t.backup.startedTick = this.#tick;
          t.backup.originalStartedTick = this.#tick;
        }
      }
    }
    this.#persist({ type: 'boot', boot, format: JOURNAL_FORMAT });
  }

  /**
   * The state as records that restore() turns back into it: a compacted
   * journal starts with these. One record per kept job, however long its
   * history; retired jobs are only counted.
   */
  snapshot(): PersistRecord[] {
    const out: PersistRecord[] = [
      {
        type: 'snapshot',
        format: JOURNAL_FORMAT,
        boot: this.boot,
        jobSeq: this.#jobSeq,
        retired: { ...this.#retired },
        ...(this.#legacySeq > 0 ? { legacySeq: this.#legacySeq } : {}),
        ...(this.#lastId !== undefined ? { lastId: this.#lastId } : {}),
        ...(this.#retiredThrough !== undefined ? { retiredThrough: this.#retiredThrough } : {}),
      },
    ];
    for (const w of this.#workers.values()) out.push({ type: 'worker-registered', workerId: w.id, credential: w.credential, worker: w.info });
    for (const job of this.#jobs.values()) {
      if (terminal(job.state)) out.push({ type: 'job-summary', jobId: job.id, summary: this.#summary(job) });
      else {
        const image: ActiveJobImage = {
          spec: job.spec,
          state: job.state === 'running' ? 'running' : 'queued',
          committed: [...job.maps, ...job.reduces].filter((t) => t.state === 'done').map((t) => ({
            taskId: t.id, attempt: t.winner!.attempt, files: t.winner!.files,
            ...(t.winner!.workerId !== undefined ? { workerId: t.winner!.workerId, location: t.winner!.location } : {}),
          })),
          ...(job.maps.some((t) => t.counted && t.state !== 'done') ? { counted: job.maps.filter((t) => t.counted && t.state !== 'done').map((t) => t.id) } : {}),
          ...(job.reexecutions.length ? { reexecutions: job.reexecutions } : {}),
          published: job.reduces.filter((t) => t.published).map((t) => t.id),
          leases: [...job.maps, ...job.reduces].flatMap((t) => (t.lease ? [{ taskId: t.id, attempt: t.lease.attempt, workerId: t.lease.workerId }] : [])),
          issued: Object.fromEntries([...job.maps, ...job.reduces].filter((t) => t.state !== 'done' && t.attemptsIssued > 0).map((t) => [t.id, t.attemptsIssued])),
          attempts: { ...job.attempts },
          counters: { ...job.counters },
          ...(job.idempotency ? { idempotency: job.idempotency } : {}),
          ...(job.backups.length ? { backups: job.backups.map((b) => ({ ...b })) } : {}),
          ...(job.skipped.length ? { skipped: [...job.skipped] } : {}),
        };
        out.push({ type: 'job-image', jobId: job.id, image });
      }
    }
    return out;
  }

  /**
   * The whole state, exactly (a standby's state transfer; unlike snapshot(),
   * which restore() turns into a new boot). The graph shares objects (a
   * lease is both its task's and its worker's) and holds Maps and Sets: the
   * shell must structured-clone it at once (v8.serialize), before the next
   * step. Between steps only. Every field of the class is here: a field
   * missing would make a standby diverge (the standby's state-hash check).
   */
  image(): SchedulerImage {
    assert(this.#fx.replies.length + this.#fx.persist.length + this.#fx.persistLazy.length + this.#fx.events.length + this.#fx.publish.length === 0, 'image() with effects not yet advanced');
    return {
      version: 1,
      config: this.config,
      boot: this.boot,
      state: {
        tick: this.#tick,
        jobSeq: this.#jobSeq,
        legacySeq: this.#legacySeq,
        lastId: this.#lastId,
        retiredThrough: this.#retiredThrough,
        workerSeq: this.#workerSeq,
        jobs: this.#jobs,
        active: this.#active,
        finished: this.#finished,
        retired: this.#retired,
        keys: this.#keys,
        holdUntilTick: this.#holdUntilTick,
        workers: this.#workers,
        parked: this.#parked,
        shuttingDown: this.#shuttingDown,
        allDoneAnnounced: this.#allDoneAnnounced,
      },
    };
  }

  /** The scheduler an image() describes (a structured clone of one: it is taken over, not copied). */
  static fromImage(image: SchedulerImage): Scheduler {
    assert(image.version === 1, `scheduler image version ${String(image.version)} is not 1`);
    const s = new Scheduler(image.config, image.boot, false);
    const st = image.state as ImageState;
    s.#tick = st.tick;
    s.#jobSeq = st.jobSeq;
    s.#legacySeq = st.legacySeq;
    s.#lastId = st.lastId;
    s.#retiredThrough = st.retiredThrough;
    s.#workerSeq = st.workerSeq;
    s.#jobs = st.jobs;
    s.#active = st.active;
    s.#finished = st.finished;
    s.#retired = st.retired;
    s.#keys = st.keys;
    s.#holdUntilTick = st.holdUntilTick;
    s.#workers = st.workers;
    s.#parked = st.parked;
    s.#shuttingDown = st.shuttingDown;
    s.#allDoneAnnounced = st.allDoneAnnounced;
    return s;
  }

  /**
   * Renames owed after a restart: committed reduces of unfinished jobs whose
   * publication was not recorded (the coordinator stopped between the commit
   * record and the rename). The shell redoes each (a rename whose source is
   * gone was done already) and steps 'published', before it serves requests.
   */
  owedPublishes(): Publish[] {
    const out: Publish[] = [];
    for (const job of this.#active) {
      for (const t of job.reduces) if (t.state === 'done' && !t.published && t.winner) out.push(this.#publishOf(job, t, t.winner.attempt));
    }
    return out;
  }

  #summary(job: Job): JobSummary {
    const { inputs: _inputs, names: _names, ...spec } = job.spec;
    return {
      spec,
      inputs: job.inputCount,
      state: job.state as JobSummary['state'],
      ...(job.error !== undefined ? { error: job.error } : {}),
      counts: { map: { ...job.counts.map }, reduce: { ...job.counts.reduce } },
      attempts: { ...job.attempts },
      counters: { ...job.counters },
      ...(job.idempotency ? { idempotency: job.idempotency } : {}),
      ...(job.backups.length ? { backups: job.backups } : {}),
      ...(job.reexecutions.length ? { reexecutions: job.reexecutions } : {}),
      ...(job.skipped.length ? { skipped: job.skipped } : {}),
    };
  }

  #replay(r: PersistRecord): void {
    switch (r.type) {
      case 'worker-registered':
        // Known again, as if just heard from: silent past the heartbeat timeout, it is forgotten.
        if (!this.#workers.has(r.workerId)) this.#newWorker(r.workerId, r.worker, r.credential, true);
        return;
      case 'snapshot':
        this.#jobSeq = Math.max(this.#jobSeq, r.jobSeq);
        this.#retired = { ...r.retired };
        // Format 1 named jobs j1..j<jobSeq>.
        this.#legacySeq = Math.max(this.#legacySeq, r.format === undefined ? r.jobSeq : (r.legacySeq ?? 0));
        if (r.lastId !== undefined) this.#noteUlid(r.lastId);
        if (r.retiredThrough !== undefined && (this.#retiredThrough === undefined || r.retiredThrough > this.#retiredThrough)) this.#retiredThrough = r.retiredThrough;
        return;
      case 'job-summary': {
        const s = r.summary;
        const job = this.#addJob(r.jobId, { ...s.spec, inputs: [] }, s.idempotency);
        job.inputCount = s.inputs;
        job.maps = [];
        job.reduces = [];
        job.counts = { map: { ...s.counts.map }, reduce: { ...s.counts.reduce } };
        job.attempts = { ...s.attempts };
        job.counters = { ...s.counters };
        job.backups = s.backups ?? [];
        job.reexecutions = s.reexecutions ?? [];
        job.skipped = s.skipped ?? [];
        job.state = s.state;
        job.error = s.error;
        this.#active = this.#active.filter((j) => j !== job);
        this.#retain(job);
        return;
      }
      case 'job-image': {
        const im = r.image;
        const job = this.#addJob(r.jobId, im.spec, im.idempotency);
        job.state = im.state;
        for (const c of im.committed) {
          const task = this.#task(job, c.taskId);
          assert(task, `journal: job-image names unknown task ${r.jobId}/${c.taskId}`);
          task.lastAttempt = Math.max(task.lastAttempt, c.attempt);
          this.#setState(job, task, 'done');
          task.winner = { attempt: c.attempt, files: task.phase === 'map' ? c.files : [], ...(c.workerId !== undefined ? { workerId: c.workerId, location: c.location } : {}) };
        }
        for (const id of im.counted ?? []) {
          const task = this.#task(job, id);
          if (task) task.counted = true;
        }
        job.reexecutions = im.reexecutions ?? [];
        for (const id of im.published ?? []) {
          const task = this.#task(job, id);
          if (task?.state === 'done') task.published = true;
        }
        for (const [id, n] of Object.entries(im.issued ?? {})) {
          const task = this.#task(job, id);
          if (task && task.state !== 'done') task.attemptsIssued = n;
        }
        for (const l of im.leases ?? []) this.#replayLease(job, l.taskId, l.attempt, l.workerId);
        for (const d of im.backups ?? []) {
          const log = { ...d };
          job.backups.push(log);
          const task = this.#task(job, d.taskId);
          assert(task, `journal: job-image backup of unknown task ${r.jobId}/${d.taskId}`);
          task.backupAttempt = Math.max(task.backupAttempt ?? 0, d.backup.attempt);
          if (d.outcome === 'running') this.#replayBackup(job, task, log);
        }
        for (const sk of im.skipped ?? []) this.#replaySkipped(job, sk);
        job.attempts = { ...im.attempts };
        job.counters = { ...im.counters };
        return;
      }
      case 'record-skipped': {
        const job = this.#jobs.get(r.jobId);
        if (job && !terminal(job.state)) this.#replaySkipped(job, r.skipped);
        return;
      }
      case 'job-accepted':
        this.#jobSeq++;
        this.#addJob(r.jobId, r.job, r.idempotency);
        return;
      case 'job-started': {
        const job = this.#jobs.get(r.jobId);
        if (job && job.state === 'queued') job.state = 'running';
        return;
      }
      case 'task-committed': {
        const job = this.#jobs.get(r.jobId);
        // A job retired by a smaller retainJobs than the journal was written with.
        if (!job && this.#isRetired(r.jobId)) return;
        assert(job, `journal: task-committed for unknown job ${r.jobId}`);
        const task = this.#task(job, r.taskId);
        assert(task, `journal: task-committed for unknown task ${r.jobId}/${r.taskId}`);
        if (task.state === 'done') return;
        if (job.state === 'queued') job.state = 'running';
        task.lastAttempt = Math.max(task.lastAttempt, r.attempt);
        if (task.backup) this.#replayEndBackup(job, task, r.attempt === task.backup.attempt ? 'backup-won' : 'original-won');
        this.#dropLease(task);
        this.#setState(job, task, 'done');
        task.winner = { attempt: r.attempt, files: task.phase === 'map' ? r.files : [], ...(r.workerId !== undefined ? { workerId: r.workerId, location: r.location } : {}) };
        if (!task.counted) this.#addCounters(job, r.counters);
        return;
      }
      case 'map-output-lost': {
        const job = this.#jobs.get(r.jobId);
        const task = job && !terminal(job.state) ? this.#task(job, r.taskId) : undefined;
        if (!job || !task || task.state !== 'done' || task.winner?.attempt !== r.attempt) return;
        this.#loseOutput(job, task, r.reason, r.reducesWaiting);
        return;
      }
      case 'fetch-failed': {
        const job = this.#jobs.get(r.jobId);
        const task = job && !terminal(job.state) ? this.#task(job, r.taskId) : undefined;
        if (!job || !task) return;
        this.#addCounters(job, { [FETCH_FAILURES_COUNTER]: 1 });
        if (task.state === 'done' && task.winner?.attempt === r.attempt) task.fetchFailures = (task.fetchFailures ?? 0) + 1;
        return;
      }
      case 'output-published': {
        const job = this.#jobs.get(r.jobId);
        const task = job && this.#task(job, r.taskId);
        if (task && task.winner?.attempt === r.attempt) task.published = true;
        return;
      }
      case 'job-finished': {
        const job = this.#jobs.get(r.jobId);
        assert(job, `journal: job-finished for unknown job ${r.jobId}`);
        job.state = r.state;
        job.error = r.error;
        for (const t of [...job.maps, ...job.reduces]) if (t.backup) this.#replayEndBackup(job, t, 'job-ended');
        if (r.backups) job.backups = r.backups;
        if (r.reexecutions) job.reexecutions = r.reexecutions;
        for (const t of [...job.maps, ...job.reduces]) {
          if (t.state !== 'leased') continue;
          this.#dropLease(t);
          this.#setState(job, t, 'pending');
        }
        this.#active = this.#active.filter((j) => j !== job);
        this.#retain(job);
        return;
      }
      case 'task-leased': {
        const job = this.#jobs.get(r.jobId);
        if (!job || terminal(job.state)) return;
        const task = this.#task(job, r.taskId);
        assert(task, `journal: task-leased for unknown task ${r.jobId}/${r.taskId}`);
        if (task.state === 'done') return;
        if (job.state === 'queued') job.state = 'running';
        job.attempts.started++;
        if (task.attemptsIssued > 0 || task.counted) job.attempts.reissued++;
        task.attemptsIssued++;
        this.#replayLease(job, r.taskId, r.attempt, r.workerId);
        return;
      }
      case 'task-released': {
        const job = this.#jobs.get(r.jobId);
        const task = job && !terminal(job.state) ? this.#task(job, r.taskId) : undefined;
        if (!job || !task || task.lease?.attempt !== r.attempt) return;
        if (task.backup) return this.#replayEndBackup(job, task, 'original-lost');
        this.#dropLease(task);
        this.#setState(job, task, 'pending');
        return;
      }
      case 'backup-launched': {
        const job = this.#jobs.get(r.jobId);
        // A finished job's log comes with its job-finished record.
        if (!job || terminal(job.state)) return;
        const task = this.#task(job, r.taskId);
        assert(task, `journal: backup-launched for unknown task ${r.jobId}/${r.taskId}`);
        const log: BackupDecision = { ...r.decision, outcome: 'running' };
        job.backups.push(log);
        job.attempts.started++;
        task.attemptsIssued++;
        task.backupAttempt = Math.max(task.backupAttempt ?? 0, r.attempt);
        this.#replayBackup(job, task, log);
        return;
      }
      case 'backup-ended': {
        const job = this.#jobs.get(r.jobId);
        const task = job && !terminal(job.state) ? this.#task(job, r.taskId) : undefined;
        if (!job || !task) return;
        const log = job.backups.find((b) => b.taskId === r.taskId && b.backup.attempt === r.attempt);
        if (task.backup?.attempt === r.attempt) this.#replayEndBackup(job, task, r.outcome);
        if (log) {
          log.outcome = r.outcome;
          log.originalRanMs = r.originalRanMs;
          log.backupRanMs = r.backupRanMs;
        }
        return;
      }
      case 'worker-lost': {
        const w = this.#workers.get(r.workerId);
        if (!w) return;
        for (const lease of [...w.leases.values()]) {
          const job = this.#jobs.get(lease.jobId)!;
          const task = this.#task(job, lease.taskId)!;
          if (task.backup) {
            this.#replayEndBackup(job, task, task.backup.lease === lease ? 'backup-lost' : 'original-lost');
            continue;
          }
          this.#dropLease(task);
          this.#setState(job, task, 'pending');
        }
        this.#workers.delete(r.workerId);
        return;
      }
      case 'boot':
        return;
    }
  }

  /** A lease from the journal: the task is its worker's again (a newer attempt's lease replaces an older one). */
  #replayLease(job: Job, taskId: string, attempt: number, workerId: string): void {
    const task = this.#task(job, taskId);
    assert(task, `journal: lease of unknown task ${job.id}/${taskId}`);
    if (task.state === 'done' || attempt < (task.lease?.attempt ?? 0)) return;
    task.lastAttempt = Math.max(task.lastAttempt, attempt);
    this.#dropLease(task);
    if (task.state === 'leased') this.#setState(job, task, 'pending');
    const w = this.#workers.get(workerId);
    // Its worker was lost: nobody may report the attempt.
    if (!w) return;
    const lease: Lease = { jobId: job.id, taskId, attempt, workerId, expiresAtTick: this.#tick + this.config.leaseTicks, progress: 0, progressTick: this.#tick };
    task.lease = lease;
    task.holder = workerId;
    w.leases.set(key(job.id, taskId), lease);
    this.#setState(job, task, 'leased');
  }

  #replaySkipped(job: Job, sk: SkippedRecord): void {
    const task = this.#task(job, sk.taskId);
    assert(task, `journal: skipped record of unknown task ${job.id}/${sk.taskId}`);
    const s = skipOf(task);
    s.perRecord = true;
    s.records.push(sk.record);
    job.skipped.push(sk);
  }

  /** A journaled backup attempt racing the task's holder again (its worker known and the task still leased), else ended as lost. */
  #replayBackup(job: Job, task: Task, log: BackupDecision): void {
    const w = this.#workers.get(log.backup.workerId);
    if (!w || task.state !== 'leased' || task.backup || w.leases.has(key(job.id, task.id))) {
      log.outcome = 'backup-lost';
      return;
    }
    const lease: Lease = { jobId: job.id, taskId: task.id, attempt: log.backup.attempt, workerId: w.id, expiresAtTick: this.#tick + this.config.leaseTicks, progress: 0, progressTick: this.#tick };
    w.leases.set(key(job.id, task.id), lease);
    task.backup = { attempt: log.backup.attempt, workerId: w.id, lease, startedTick: this.#tick, originalStartedTick: this.#tick, log };
  }

  /** A replayed end of a backup race: as #endBackup, without events or records (the journal holds them). */
  #replayEndBackup(job: Job, task: Task, outcome: Exclude<BackupDecision['outcome'], 'running'>): void {
    const b = task.backup!;
    task.backup = undefined;
    if (b.log.outcome === 'running') b.log.outcome = outcome;
    if (outcome === 'original-lost') {
      this.#dropLease(task);
      task.lease = b.lease;
      task.holder = b.workerId;
      task.lastAttempt = Math.max(task.lastAttempt, b.attempt);
    } else this.#workers.get(b.workerId)?.leases.delete(key(job.id, task.id));
  }

  // ------------------------------------------------------------ the three verbs

  step(input: SchedulerInput): void {
    switch (input.type) {
      case 'tick':
        this.#onTick();
        break;
      case 'submit':
        this.#onSubmit(input.requestId, input.jobId, input.job, input.idempotency);
        break;
      case 'cancel':
        this.#onCancel(input.requestId, input.jobId);
        break;
      case 'register':
        this.#onRegister(input.requestId, input.worker, input.credential);
        break;
      case 'poll':
        this.#onPoll(input.requestId, input.workerId, input.credential, input.free);
        break;
      case 'poll-gone':
        this.#parked = this.#parked.filter((p) => p.requestId !== input.requestId);
        break;
      case 'complete':
        this.#onComplete(input);
        break;
      case 'fail':
        this.#onFail(input);
        break;
      case 'heartbeat':
        this.#onHeartbeat(input.requestId, input.workerId, input.credential, input.tasks);
        break;
      case 'fetch-failed':
        this.#onFetchFailed(input);
        break;
      case 'held':
        this.#onHeld(input.requestId, input.workerId, input.credential, input.jobs);
        break;
      case 'published':
        this.#onPublished(input.jobId, input.taskId, input.attempt);
        break;
      case 'publish-failed':
        this.#onPublishFailed(input.jobId, input.taskId, input.attempt, input.error);
        break;
      case 'shutdown':
        this.#shuttingDown = input.reason;
        break;
    }
    this.#dispatch();
  }

  ready(): Effects {
    return this.#fx;
  }

  advance(): void {
    this.#fx = { replies: [], persist: [], persistLazy: [], events: [], publish: [] };
  }

  // ------------------------------------------------------------ reads

  get tick(): number {
    return this.#tick;
  }

  jobIds(): string[] {
    return [...this.#jobs.keys()];
  }

  job(id: string): CoreJobView | undefined {
    const job = this.#jobs.get(id);
    return job ? this.#view(job) : undefined;
  }

  jobs(): CoreJobView[] {
    return [...this.#jobs.values()].map((j) => this.#view(j));
  }

  /**
   * Read-only: up to `limit` tasks of an unfinished job from position `start`
   * (maps by index, then reduces), and how many it has. A finished job keeps
   * no tasks (total 0); undefined for a job the core does not hold.
   */
  tasks(jobId: string, start: number, limit: number): { total: number; tasks: CoreTaskView[] } | undefined {
    const job = this.#jobs.get(jobId);
    if (!job) return undefined;
    const all = job.maps.length + job.reduces.length;
    const tasks: CoreTaskView[] = [];
    for (let i = Math.max(0, start); i < all && tasks.length < limit; i++) {
      const t = i < job.maps.length ? job.maps[i]! : job.reduces[i - job.maps.length]!;
      tasks.push({
        id: t.id, phase: t.phase, index: t.index, state: t.state, attempts: t.attemptsIssued,
        lease: t.lease ? { attempt: t.lease.attempt, workerId: t.lease.workerId } : undefined,
        committed: t.winner?.attempt,
      });
    }
    return { total: all, tasks };
  }

  workers(): CoreWorkerView[] {
    const parked = new Set(this.#parked.map((p) => p.workerId));
    return [...this.#workers.values()].map((w) => ({
      id: w.id,
      name: w.info.name,
      pid: w.info.pid,
      host: w.info.host,
      slots: w.info.slots,
      registeredTick: w.registeredTick,
      lastContactTick: w.lastContactTick,
      parked: parked.has(w.id),
      tasks: [...w.leases.values()].map((l) => ({ jobId: l.jobId, taskId: l.taskId, attempt: l.attempt })),
    }));
  }

  parkedPolls(): number {
    return this.#parked.length;
  }

  /** The newest ULID job id accepted (a new id must be newer), if any. */
  lastJobId(): string | undefined {
    return this.#lastId;
  }

  /** Request ids of the parked polls (a standby that goes live forgets those its dead active held). */
  parkedRequestIds(): string[] {
    return this.#parked.map((p) => p.requestId);
  }

  /** True once exit-when-done applies: at least one job, all finished. */
  allDone(): boolean {
    return this.#jobSeq > 0 && this.#active.length === 0;
  }

  /** True for the id of a job that existed but was retired (retainJobs newer jobs finished since). */
  isRetired(id: string): boolean {
    return this.#isRetired(id);
  }

  /** The job an idempotency key created, while that job is kept. */
  jobForKey(key: string): { jobId: string; fingerprint: string; state: JobState } | undefined {
    const job = this.#keys.get(key);
    return job ? { jobId: job.id, fingerprint: job.idempotency!.fingerprint, state: job.state } : undefined;
  }

  /** Jobs retired so far, by final state. */
  retired(): RetiredCounts {
    return { ...this.#retired };
  }

  /** Jobs kept: unfinished ones and up to retainJobs finished ones. */
  jobCount(): number {
    return this.#jobs.size;
  }

  /** Unfinished jobs. */
  activeCount(): number {
    return this.#active.length;
  }

  /**
   * A job id not kept is retired when it is a legacy id j<N> with N at most
   * the highest seen (those were handed out in sequence), or a ULID no newer
   * than the newest retired one. ULIDs are not numbered, so the second rule
   * also answers "retired" for an id that lies in that range but never named
   * a job here (another coordinator's, say).
   */
  #isRetired(id: string): boolean {
    if (this.#jobs.has(id)) return false;
    if (isUlidJobId(id)) return this.#retiredThrough !== undefined && id <= this.#retiredThrough;
    const n = legacyJobNumber(id);
    return n !== undefined && n <= this.#legacySeq;
  }

  /** True for an id a new job may take: a ULID newer than every one accepted, or j<N> above every N seen. */
  #isFreshId(id: string): boolean {
    if (isUlidJobId(id)) return this.#lastId === undefined || id > this.#lastId;
    const n = legacyJobNumber(id);
    return n !== undefined && n > this.#legacySeq;
  }

  #noteUlid(id: string): void {
    if (this.#lastId === undefined || id > this.#lastId) this.#lastId = id;
  }

  // ------------------------------------------------------------ inputs

  #reply(requestId: string, body: ReplyBody): void {
    this.#fx.replies.push({ requestId, body });
  }

  #event(e: SchedulerEvent): void {
    this.#fx.events.push(e);
  }

  #persist(r: PersistRecord): void {
    this.#fx.persist.push(r);
  }

  #lazy(r: PersistRecord): void {
    this.#fx.persistLazy.push(r);
  }

  #addJob(id: string, spec: ResolvedJobSpec, idempotency?: Idempotency): Job {
    assert(!this.#jobs.has(id), `job ${id} added twice`);
    const n = legacyJobNumber(id);
    if (n !== undefined) this.#legacySeq = Math.max(this.#legacySeq, n);
    else if (isUlidJobId(id)) this.#noteUlid(id);
    const mk = (phase: TaskPhase, index: number): Task => ({
      phase,
      index,
      id: `${phase}-${index}`,
      state: 'pending',
      lastAttempt: (this.boot - 1) * ATTEMPT_EPOCH,
      attemptsIssued: 0,
    });
    const job: Job = {
      id,
      spec,
      inputCount: spec.inputs.length,
      ...(idempotency ? { idempotency } : {}),
      state: 'queued',
      maps: mapSplits(spec).map((_, i) => mk('map', i)),
      reduces: Array.from({ length: spec.reduces }, (_, i) => mk('reduce', i)),
      counts: {
        map: { total: mapSplits(spec).length, pending: mapSplits(spec).length, running: 0, done: 0 },
        reduce: { total: spec.reduces, pending: spec.reduces, running: 0, done: 0 },
      },
      attempts: { started: 0, reissued: 0, failed: 0 },
      counters: {},
      running: new Set(),
      durations: { map: [], reduce: [] },
      wanted: new Map(),
      backups: [],
      reexecutions: [],
      skipped: [],
    };
    this.#jobs.set(id, job);
    this.#active.push(job);
    if (idempotency) this.#keys.set(idempotency.key, job);
    return job;
  }

  /** Keeps a finished job (totals only) and retires the oldest past retainJobs. */
  #retain(job: Job): void {
    job.maps = [];
    job.reduces = [];
    if (job.spec.inputs.length > 0 || job.spec.names || job.spec.splits) {
      const { names: _names, splits: _splits, ...spec } = job.spec;
      job.spec = { ...spec, inputs: [] };
    }
    this.#finished.push(job);
    while (this.#finished.length > this.config.retainJobs) {
      const old = this.#finished.shift()!;
      this.#jobs.delete(old.id);
      if (old.idempotency && this.#keys.get(old.idempotency.key) === old) this.#keys.delete(old.idempotency.key);
      if (isUlidJobId(old.id) && (this.#retiredThrough === undefined || old.id > this.#retiredThrough)) this.#retiredThrough = old.id;
      this.#retired[old.state as keyof RetiredCounts]++;
    }
  }

  #onSubmit(requestId: string, id: string, spec: JobSpec, idempotency: Idempotency | undefined): void {
    if (idempotency) {
      const prior = this.#keys.get(idempotency.key);
      if (prior && prior.idempotency!.fingerprint !== idempotency.fingerprint) {
        return this.#reply(requestId, {
          kind: 'refused',
          code: 'idempotency-conflict',
          message: `idempotency key "${idempotency.key}" was used for another request (job ${prior.id})`,
        });
      }
      if (prior) return this.#reply(requestId, { kind: 'created', jobId: prior.id, state: prior.state, existing: true });
    }
    if (this.#shuttingDown !== undefined) {
      return this.#reply(requestId, { kind: 'refused', code: 'shutting-down', message: `coordinator is shutting down: ${this.#shuttingDown}` });
    }
    if (this.#active.length >= this.config.maxActiveJobs) {
      return this.#reply(requestId, {
        kind: 'refused',
        code: 'too-many-jobs',
        message: `too many unfinished jobs (limit ${this.config.maxActiveJobs}); wait for some to finish`,
      });
    }
    assert(spec.inputs.length >= 1 && spec.reduces >= 1, 'submit: a job needs inputs and reduces');
    assert(!spec.names || spec.names.length === spec.inputs.length, 'submit: one name per input');
    assert(!spec.splits || splitsCover(spec.splits, spec.inputs.length), 'submit: splits must cover every input, in order, with valid ranges');
    const maps = mapSplits(spec).length;
    if (maps * spec.reduces > this.config.maxIntermediatesPerJob) {
      return this.#reply(requestId, {
        kind: 'refused',
        code: 'job-too-big',
        message: `${maps} maps x ${spec.reduces} reduces = ${maps * spec.reduces} intermediate files (limit ${this.config.maxIntermediatesPerJob}): use fewer reduces`,
      });
    }
    const queued = this.#active.reduce((n, j) => n + j.counts.map.total - j.counts.map.done + j.counts.reduce.total - j.counts.reduce.done, 0);
    if (queued + maps + spec.reduces > this.config.maxQueuedTasks) {
      return this.#reply(requestId, {
        kind: 'refused',
        code: 'too-many-jobs',
        message: `${queued} tasks are queued; ${maps + spec.reduces} more would pass the limit of ${this.config.maxQueuedTasks}: wait for some jobs to finish`,
      });
    }
    if (spec.output !== undefined) {
      const clash = this.#active.find((j) => nested(j.spec.output, spec.output!));
      if (clash) {
        return this.#reply(requestId, {
          kind: 'refused',
          code: 'output-in-use',
          message: `output "${spec.output}" ${clash.spec.output === spec.output ? 'is' : 'overlaps'} the output of unfinished job ${clash.id} ("${clash.spec.output}")`,
        });
      }
    }
    assert(this.#isFreshId(id), `submit: job id ${id} is not newer than every id accepted (newest ${this.#lastId ?? `j${this.#legacySeq}`})`);
    this.#jobSeq++;
    const root = `${this.config.workRoot}/${id}`;
    const resolved: ResolvedJobSpec = { ...spec, output: spec.output ?? `${root}/out`, workDir: spec.workDir ?? `${root}/work` };
    // The shuffle mode is the job's from now on (a restart with another default does not change it); 'shared' is written as absent.
    const { shuffle, ...rest } = spec.settings ?? {};
    const mode = shuffle ?? this.config.shuffle;
    const settings = mode === 'worker' ? { ...rest, shuffle: mode } : rest;
    if (Object.keys(settings).length > 0) resolved.settings = settings;
    else delete resolved.settings;
    if (resolved.name === undefined) delete resolved.name;
    this.#addJob(id, resolved, idempotency);
    this.#allDoneAnnounced = false;
    this.#persist({ type: 'job-accepted', jobId: id, job: resolved, ...(idempotency ? { idempotency } : {}) });
    this.#event({ type: 'job-accepted', jobId: id });
    this.#reply(requestId, { kind: 'created', jobId: id, state: 'queued' });
  }

  #onCancel(requestId: string, jobId: string): void {
    const job = this.#jobs.get(jobId);
    if (!job) return this.#reply(requestId, { kind: 'refused', code: 'not-found', message: `no job ${jobId}` });
    if (!terminal(job.state)) this.#finish(job, 'cancelled', 'cancelled by request');
    this.#reply(requestId, { kind: 'cancelled', jobId, state: job.state });
  }

  #newWorker(id: string, info: WorkerInfo, credential: string, replayed = false): Worker {
    const w: Worker = { id, info, credential, registeredTick: this.#tick, lastContactTick: this.#tick, leases: new Map() };
    this.#workers.set(id, w);
    if (!replayed) this.#event({ type: 'worker-registered', workerId: id });
    return w;
  }

  #onRegister(requestId: string, info: WorkerInfo, credential: string): void {
    if (this.#workers.size >= this.config.maxWorkers) {
      return this.#reply(requestId, { kind: 'refused', code: 'too-many-workers', message: `too many workers (limit ${this.config.maxWorkers})` });
    }
    const n = ++this.#workerSeq;
    const id = this.boot === 1 ? `w${n}` : `w${n}-b${this.boot}`;
    this.#newWorker(id, info, credential);
    // Journaled, so that after a restart the worker is still itself (and its attempts can be taken over).
    this.#persist({ type: 'worker-registered', workerId: id, credential, worker: info });
    this.#reply(requestId, { kind: 'registered', workerId: id });
  }

  /**
   * A contact from a registered worker, or undefined (and the request refused)
   * when this boot does not know the id (never registered, restarted, declared
   * lost: the worker registers again) or the credential is not that worker's.
   */
  #contact(requestId: string, workerId: string, credential: string): Worker | undefined {
    const w = this.#workers.get(workerId);
    if (!w) {
      this.#reply(requestId, { kind: 'refused', code: 'unknown-worker', message: `no worker ${workerId}: register first` });
      return undefined;
    }
    if (w.credential !== credential) {
      this.#reply(requestId, { kind: 'refused', code: 'worker-credential', message: `the worker secret does not match worker ${workerId}` });
      return undefined;
    }
    w.lastContactTick = this.#tick;
    return w;
  }

  #onPoll(requestId: string, workerId: string, credential: string, freeSlots: number | undefined): void {
    const free = Math.max(1, Math.min(MAX_POLL_BATCH, Math.floor(freeSlots ?? 1)));
    const w = this.#contact(requestId, workerId, credential);
    if (!w) return;
    // One parked poll per worker: a newer poll supersedes an older one.
    const old = this.#parked.findIndex((p) => p.workerId === workerId);
    if (old >= 0) {
      const [p] = this.#parked.splice(old, 1);
      this.#reply(p!.requestId, { kind: 'poll', reply: { type: 'wait' } });
    }
    const exit = this.#exitReason();
    if (exit !== undefined) return this.#reply(requestId, { kind: 'poll', reply: { type: 'exit', reason: exit } });
    if (this.#shuttingDown !== undefined) return this.#reply(requestId, { kind: 'poll', reply: { type: 'wait' } });
    const reply = this.#assignUpTo(w, free);
    if (reply) return this.#reply(requestId, { kind: 'poll', reply });
    this.#parked.push({ requestId, workerId, sinceTick: this.#tick, free });
  }

  #lookup(jobId: string, taskId: string): { job: Job; task: Task } | { ack: TaskAck } {
    const job = this.#jobs.get(jobId);
    if (!job) return { ack: { accepted: false, reason: 'unknown-task' } };
    // A finished job keeps no tasks: every late report is refused.
    if (terminal(job.state)) return { ack: { accepted: false, reason: job.state === 'succeeded' ? 'already-done' : 'job-not-running' } };
    const task = this.#task(job, taskId);
    if (!task) return { ack: { accepted: false, reason: 'unknown-task' } };
    return { job, task };
  }

  #onComplete(i: Extract<SchedulerInput, { type: 'complete' }>): void {
    const w = this.#contact(i.requestId, i.workerId, i.credential);
    if (!w) return;
    const found = this.#lookup(i.jobId, i.taskId);
    if ('ack' in found) {
      if (this.#jobs.has(i.jobId)) this.#event({ type: 'stale-completion', jobId: i.jobId, taskId: i.taskId, attempt: i.attempt, workerId: i.workerId, reason: found.ack.reason! });
      return this.#reply(i.requestId, { kind: 'ack', ack: found.ack });
    }
    const { job, task } = found;
    const stale = (reason: TaskAck['reason'] & string, accepted = false): void => {
      if (!accepted) this.#event({ type: 'stale-completion', jobId: job.id, taskId: task.id, attempt: i.attempt, workerId: i.workerId, reason });
      this.#reply(i.requestId, { kind: 'ack', ack: accepted ? { accepted: true } : { accepted: false, reason } });
    };
    if (task.state === 'done') {
      // A duplicate of the winning completion is answered as accepted (idempotent).
      return stale('already-done', task.winner?.attempt === i.attempt);
    }
    if (job.state !== 'running') return stale('job-not-running');
    const fromBackup = this.#isBackup(task, i.attempt, i.workerId);
    if (this.config.fencing && !fromBackup) {
      if ((i.attempt !== task.lastAttempt && i.attempt !== task.adopted) || task.holder === undefined) return stale('stale-attempt');
      // Only the worker the attempt was handed to (or that took it over after a restart) may complete it.
      if (task.holder !== i.workerId) return stale('not-lease-holder');
    }
    // The coordinator, not the worker, names the files: a map's declared
    // outputs must be its own attempt's; a reduce's output is its attempt's file.
    let files: string[] = [];
    if (task.phase === 'map') {
      const checked = checkMapOutputs(i.files, mapAttemptDir(job.spec.workDir, task.index, i.attempt), task.index, job.spec.reduces);
      if ('error' in checked) {
        return this.#reply(i.requestId, { kind: 'refused', code: 'bad-completion', message: `${job.id}/${task.id} attempt ${i.attempt}: ${checked.error}` });
      }
      files = checked.files;
      if (served(job) && i.location === undefined) {
        return this.#reply(i.requestId, { kind: 'refused', code: 'bad-completion', message: `${job.id}/${task.id} attempt ${i.attempt}: a served map's completion must name its location` });
      }
    }
    // The first valid completion wins: the holder's attempt or its backup's. The
    // other is not current any more: its worker is told to abandon it on its next heartbeat.
    const started = fromBackup ? task.backup!.startedTick : task.startedTick;
    if (task.backup) this.#endBackup(job, task, fromBackup ? 'backup-won' : 'original-won');
    if (started !== undefined) job.durations[task.phase].push(this.#tick - started);
    this.#dropLease(task);
    this.#setState(job, task, 'done');
    // A map run again after its output was lost counted once already: its counters are not added twice.
    const counters = task.counted ? {} : (i.counters ?? {});
    const where = task.phase === 'map' && served(job) ? { workerId: i.workerId, location: i.location } : {};
    task.winner = { attempt: i.attempt, files, ...where };
    task.fetchFailures = 0;
    this.#addCounters(job, counters);
    this.#persist({ type: 'task-committed', jobId: job.id, taskId: task.id, attempt: i.attempt, files, counters, ...where });
    this.#event({ type: 'task-committed', jobId: job.id, taskId: task.id, phase: task.phase, attempt: i.attempt, workerId: i.workerId, durationMs: i.durationMs, counters });
    this.#reply(i.requestId, { kind: 'ack', ack: { accepted: true } });
    // A reduce's output becomes visible only through this accept: the shell renames it after the record is durable.
    if (task.phase === 'reduce') this.#fx.publish.push(this.#publishOf(job, task, i.attempt));
    this.#event({ type: 'job-progress', jobId: job.id });
  }

  #publishOf(job: Job, task: Task, attempt: number): Publish {
    return {
      jobId: job.id,
      taskId: task.id,
      attempt,
      from: `${reduceAttemptDir(job.spec.workDir, task.index, attempt)}/mr-out-${task.index}`,
      to: `${job.spec.output}/mr-out-${task.index}`,
    };
  }

  #onPublished(jobId: string, taskId: string, attempt: number): void {
    const job = this.#jobs.get(jobId);
    const task = job && this.#task(job, taskId);
    assert(job && task && task.winner?.attempt === attempt, `published: ${jobId}/${taskId} attempt ${attempt} was not committed`);
    if (task.published) return;
    task.published = true;
    this.#persist({ type: 'output-published', jobId, taskId, attempt });
    this.#finishIfPublished(job);
  }

  #onPublishFailed(jobId: string, taskId: string, attempt: number, error: string): void {
    const job = this.#jobs.get(jobId);
    assert(job, `publish-failed: unknown job ${jobId}`);
    if (!terminal(job.state)) this.#finish(job, 'failed', `${taskId} attempt ${attempt}: could not publish its output: ${error}`);
  }

  /** A job succeeds once every reduce committed and its output was published. */
  #finishIfPublished(job: Job): void {
    if (terminal(job.state) || job.counts.reduce.done < job.counts.reduce.total) return;
    if (job.reduces.every((t) => t.published)) this.#finish(job, 'succeeded');
  }

  #onFail(i: Extract<SchedulerInput, { type: 'fail' }>): void {
    const w = this.#contact(i.requestId, i.workerId, i.credential);
    if (!w) return;
    const found = this.#lookup(i.jobId, i.taskId);
    if ('ack' in found) return this.#reply(i.requestId, { kind: 'ack', ack: found.ack });
    const { job, task } = found;
    if (task.state === 'done') return this.#reply(i.requestId, { kind: 'ack', ack: { accepted: false, reason: 'already-done' } });
    if (job.state !== 'running') return this.#reply(i.requestId, { kind: 'ack', ack: { accepted: false, reason: 'job-not-running' } });
    const fromBackup = this.#isBackup(task, i.attempt, i.workerId);
    if (!fromBackup) {
      if ((i.attempt !== task.lastAttempt && i.attempt !== task.adopted) || task.holder === undefined) return this.#reply(i.requestId, { kind: 'ack', ack: { accepted: false, reason: 'stale-attempt' } });
      if (task.holder !== i.workerId) return this.#reply(i.requestId, { kind: 'ack', ack: { accepted: false, reason: 'not-lease-holder' } });
    }
    job.attempts.failed++;
    this.#event({ type: 'task-failed', jobId: job.id, taskId: task.id, phase: task.phase, attempt: i.attempt, workerId: i.workerId, error: i.error, retryable: i.retryable });
    this.#reply(i.requestId, { kind: 'ack', ack: { accepted: true } });
    let fatal = i.retryable ? undefined : `${task.id} failed and cannot be retried: ${i.error}`;
    if (fatal === undefined && i.record) fatal = this.#badRecord(job, task, i.record, i.error);
    // A failed backup leaves the holder's attempt running alone.
    if (fromBackup && fatal === undefined) return this.#endBackup(job, task, 'backup-lost');
    this.#release(job, task, fatal, i.error);
  }

  #onHeartbeat(requestId: string, workerId: string, credential: string, tasks: HeartbeatTask[]): void {
    const w = this.#contact(requestId, workerId, credential);
    if (!w) return;
    const abandon: TaskRef[] = [];
    for (const t of tasks) {
      const ref: TaskRef = { jobId: t.jobId, taskId: t.taskId, attempt: t.attempt };
      const job = this.#jobs.get(ref.jobId);
      const task = job && !terminal(job.state) ? this.#task(job, ref.taskId) : undefined;
      const backup = task !== undefined && this.#isBackup(task, ref.attempt, workerId);
      const current = task !== undefined && (!this.config.fencing || ((task.lastAttempt === ref.attempt || task.adopted === ref.attempt) && task.holder === workerId) || backup);
      if (!job || !task || job.state !== 'running' || task.state === 'done' || !current) {
        abandon.push(ref);
        continue;
      }
      const lease = backup ? task.backup!.lease : task.lease;
      if (!lease || lease.workerId !== workerId || lease.attempt !== ref.attempt) continue;
      // Progress is a count that grows while the task works: only growth counts.
      if (t.progress !== undefined && t.progress > lease.progress) {
        lease.progress = t.progress;
        lease.progressTick = this.#tick;
        lease.record = undefined;
      } else if (t.record) {
        // No progress since the last heartbeat: the record user code is on is where it is stuck
        // (a record named while it still moves may be one it just finished).
        lease.record = t.record;
      }
      // The lease holder says the task is still running: its lease is renewed (a lock kept by
      // heartbeats, as BullMQ's), so a long task (a big split, grep over a big file) is not
      // handed out again while its worker is alive; a silent worker loses it after heartbeatTimeoutTicks,
      // a stuck one after progressTimeoutTicks.
      if (this.config.renewLeases) lease.expiresAtTick = Math.max(lease.expiresAtTick, this.#tick + this.config.leaseTicks);
    }
    this.#reply(requestId, { kind: 'heartbeat', reply: { abandon } });
  }

  #onTick(): void {
    this.#tick++;
    const now = this.#tick;
    // Leases past their deadline go back to the queue (the 10-second rule), and
    // attempts without progress for progressTimeoutTicks are abandoned.
    const stallTicks = this.config.progressTimeoutTicks;
    for (const w of this.#workers.values()) {
      for (const [k, lease] of [...w.leases.entries()]) {
        // An earlier release in this loop may have ended the job and dropped this lease.
        if (w.leases.get(k) !== lease) continue;
        const stalled = stallTicks > 0 && now - lease.progressTick > stallTicks;
        if (lease.expiresAtTick > now && !stalled) continue;
        const job = this.#jobs.get(lease.jobId)!;
        const task = this.#task(job, lease.taskId)!;
        if (task.backup?.lease === lease) {
          // A backup that expires or stalls ends its race; the holder's attempt goes on.
          if (lease.expiresAtTick <= now) this.#event({ type: 'lease-expired', jobId: job.id, taskId: task.id, phase: task.phase, attempt: lease.attempt, workerId: w.id });
          else this.#event({ type: 'task-stalled', jobId: job.id, taskId: task.id, phase: task.phase, attempt: lease.attempt, workerId: w.id, progress: lease.progress });
          this.#endBackup(job, task, 'backup-lost');
          continue;
        }
        if (lease.expiresAtTick <= now) {
          this.#event({ type: 'lease-expired', jobId: job.id, taskId: task.id, phase: task.phase, attempt: lease.attempt, workerId: w.id });
          this.#release(job, task, undefined, 'lease expired');
          continue;
        }
        this.#event({ type: 'task-stalled', jobId: job.id, taskId: task.id, phase: task.phase, attempt: lease.attempt, workerId: w.id, progress: lease.progress });
        // Nobody may report this attempt any more: its worker's next heartbeat is told to abandon it.
        task.holder = undefined;
        const why = `no progress for ${stallTicks} ticks`;
        // A stuck user function (a record that hangs it) counts against the record it was on.
        this.#release(job, task, lease.record ? this.#badRecord(job, task, lease.record, why) : undefined, why);
      }
    }
    // Workers silent past the heartbeat timeout (and not parked) are lost: release their leases at once.
    const parked = new Set(this.#parked.map((p) => p.workerId));
    for (const w of [...this.#workers.values()]) {
      if (parked.has(w.id) || now - w.lastContactTick <= this.config.heartbeatTimeoutTicks) continue;
      const leases = [...w.leases.entries()];
      for (const [k, lease] of leases) {
        if (w.leases.get(k) !== lease) continue;
        const job = this.#jobs.get(lease.jobId)!;
        const task = this.#task(job, lease.taskId)!;
        if (task.backup?.lease === lease) this.#endBackup(job, task, 'backup-lost');
        else this.#release(job, task, undefined, `worker ${w.id} lost`);
      }
      this.#workers.delete(w.id);
      // Its served map outputs went with it: the maps run again where a reduce still needs them (paper §3.3).
      this.#loseOutputsOf(w.id, `worker ${w.id} lost (no contact for ${(now - w.lastContactTick) * this.config.tickMs} ms)`);
      this.#lazy({ type: 'worker-lost', workerId: w.id });
      this.#event(leases.length ? { type: 'worker-lost', workerId: w.id, released: leases.length } : { type: 'worker-gone', workerId: w.id });
    }
    // Parked polls past the poll timeout are answered 'wait'.
    const keep: Parked[] = [];
    for (const p of this.#parked) {
      if (now - p.sinceTick >= this.config.pollTimeoutTicks) {
        this.#reply(p.requestId, { kind: 'poll', reply: { type: 'wait' } });
        const w = this.#workers.get(p.workerId);
        if (w) w.lastContactTick = now;
      } else keep.push(p);
    }
    this.#parked = keep;
    this.#findStragglers();
  }

  // ------------------------------------------------------------ worker-served shuffle (paper §3.1, §3.3)

  /** Where a reduce fetches a committed served map's output. */
  #source(m: Task): MapSource | undefined {
    const w = m.winner;
    if (m.state !== 'done' || !w || w.location === undefined) return undefined;
    return { map: m.index, attempt: w.attempt, location: w.location };
  }

  /** Every committed map output that `workerId` kept, in unfinished jobs whose reduces still need it, is lost. */
  #loseOutputsOf(workerId: string, reason: string): void {
    if (!this.config.reexecuteLostMaps) return;
    for (const job of [...this.#active]) {
      if (!served(job) || job.counts.reduce.done === job.counts.reduce.total) continue;
      for (const m of job.maps) {
        if (m.state === 'done' && m.winner?.workerId === workerId) this.#outputLost(job, m, reason);
      }
    }
  }

  /** A committed map's output is unreachable while reduces still need it: journaled, announced, and the map runs again. */
  #outputLost(job: Job, task: Task, reason: string): void {
    const w = task.winner!;
    const waiting = job.counts.reduce.total - job.counts.reduce.done;
    this.#lazy({ type: 'map-output-lost', jobId: job.id, taskId: task.id, attempt: w.attempt, workerId: w.workerId ?? '?', reason, reducesWaiting: waiting });
    this.#event({ type: 'map-output-lost', jobId: job.id, taskId: task.id, attempt: w.attempt, workerId: w.workerId ?? '?', reason });
    this.#loseOutput(job, task, reason, waiting);
    this.#event({ type: 'job-progress', jobId: job.id });
  }

  /**
   * The state change of a lost output (also replayed): the map is pending
   * again, its counters stay counted, and the attempt that committed does not
   * count toward maxAttempts (it succeeded).
   */
  #loseOutput(job: Job, task: Task, reason: string, reducesWaiting: number): void {
    const w = task.winner!;
    if (job.reexecutions.length < LIMITS.maxReexecutionLog) job.reexecutions.push({ taskId: task.id, attempt: w.attempt, workerId: w.workerId ?? '?', reason, reducesWaiting });
    this.#addCounters(job, { [MAP_REEXECUTIONS_COUNTER]: 1 });
    task.winner = undefined;
    task.fetchFailures = 0;
    task.counted = true;
    task.holder = undefined;
    task.attemptsIssued = Math.max(0, task.attemptsIssued - 1);
    this.#setState(job, task, 'pending');
  }

  /**
   * A reduce attempt could not fetch a map's output. Counted; the reply says
   * where the output is now. The output is declared lost (the map runs again)
   * after fetchFailuresToRerun reports against the same committed attempt.
   */
  #onFetchFailed(i: Extract<SchedulerInput, { type: 'fetch-failed' }>): void {
    const w = this.#contact(i.requestId, i.workerId, i.credential);
    if (!w) return;
    const reply = (r: FetchFailureReply): void => this.#reply(i.requestId, { kind: 'fetch', reply: r });
    const found = this.#lookup(i.jobId, i.taskId);
    if ('ack' in found) return reply({ action: 'abandon' });
    const { job, task } = found;
    const map = job.maps[i.map];
    if (task.phase !== 'reduce' || !served(job) || !map) {
      return this.#reply(i.requestId, { kind: 'refused', code: 'bad-report', message: `${job.id}/${task.id}: no served map ${i.map} to fetch from` });
    }
    const current = this.#isBackup(task, i.attempt, i.workerId) || ((task.lastAttempt === i.attempt || task.adopted === i.attempt) && task.holder === i.workerId);
    if (task.state !== 'leased' || job.state !== 'running' || !current) return reply({ action: 'abandon' });
    this.#addCounters(job, { [FETCH_FAILURES_COUNTER]: 1 });
    this.#lazy({ type: 'fetch-failed', jobId: job.id, taskId: map.id, attempt: i.mapAttempt });
    this.#event({ type: 'fetch-failed', jobId: job.id, taskId: task.id, attempt: i.attempt, workerId: i.workerId, map: i.map, mapAttempt: i.mapAttempt, error: i.error });
    if (map.state === 'done' && map.winner!.attempt !== i.mapAttempt) return reply({ action: 'retry', source: this.#source(map)! });
    if (map.state === 'done') {
      map.fetchFailures = (map.fetchFailures ?? 0) + 1;
      if (!this.config.reexecuteLostMaps || map.fetchFailures < this.config.fetchFailuresToRerun) return reply({ action: 'retry', source: this.#source(map)! });
      this.#outputLost(job, map, `${map.fetchFailures} fetch failures reported by reduces (last: ${task.id} attempt ${i.attempt} on ${i.workerId}: ${i.error.slice(0, 200)})`);
    }
    // The map runs again: the reduce gives its slot back (a worker's slots held by waiting
    // reduces could leave none for the map) and is handed out again, with the new
    // location, once every map is done. The attempt it gives up does not count toward maxAttempts.
    this.#yieldReduce(job, task, i.attempt, i.workerId);
    return reply({ action: 'abandon' });
  }

  /** A reduce attempt waiting for a map that runs again stops: its task goes back to the queue. */
  #yieldReduce(job: Job, task: Task, attempt: number, workerId: string): void {
    if (this.#isBackup(task, attempt, workerId)) return this.#endBackup(job, task, 'backup-lost');
    task.attemptsIssued = Math.max(0, task.attemptsIssued - 1);
    // Nobody may report this attempt any more: its worker's next heartbeat is told to abandon it.
    task.holder = undefined;
    this.#release(job, task, undefined, 'waits for a lost map output');
  }

  /** The jobs among `jobs` that are over (finished, retired or never known): their intermediates can go. */
  #onHeld(requestId: string, workerId: string, credential: string, jobs: string[]): void {
    if (!this.#contact(requestId, workerId, credential)) return;
    const drop = jobs.filter((id) => {
      const job = this.#jobs.get(id);
      return !job || terminal(job.state);
    });
    this.#reply(requestId, { kind: 'drop', jobs: drop });
  }

  // ------------------------------------------------------------ bad records (paper §4.6)

  /**
   * User code failed on `record` (threw, or made no progress) in an attempt
   * of a job that skips bad records. The task's next attempts call map per
   * record; a record named skipAfterFailures times goes on the task's skip
   * list (journaled before an attempt that skips it goes out). Returns the
   * reason the job fails when one more skipped record would pass its limit.
   */
  #badRecord(job: Job, task: Task, record: RecordRef, error: string): string | undefined {
    if (!job.spec.settings?.skipBadRecords || record.phase !== task.phase) return undefined;
    if (record.phase === 'map' && record.input >= job.inputCount) return undefined;
    const s = skipOf(task);
    s.perRecord = true;
    // A chunk of many lines names no single record: the next attempt, per record, will.
    if (record.phase === 'map' && record.records !== 1) return undefined;
    const k = recordKey(record);
    if (s.records.some((r) => recordKey(r) === k)) return undefined;
    const failures = (s.failures.get(k) ?? 0) + 1;
    s.failures.set(k, failures);
    if (failures < this.config.skipAfterFailures) return undefined;
    const cap = job.spec.settings.maxSkippedRecords ?? DEFAULT_MAX_SKIPPED_RECORDS;
    const file = record.phase === 'map' ? (job.spec.names?.[record.input] ?? job.spec.inputs[record.input]) : undefined;
    const what = record.phase === 'map' ? `${file} at byte ${record.offset}${record.line !== undefined ? ` (line ${record.line})` : ''}` : `key ${JSON.stringify(record.key)} (group ${record.group})`;
    if (job.skipped.length >= cap) {
      return `${task.id}: bad record ${what} failed ${failures} times (${error}), and the job already skipped ${job.skipped.length} records, its limit (maxSkippedRecords ${cap})`;
    }
    s.failures.delete(k);
    s.records.push(record);
    const skipped: SkippedRecord = { taskId: task.id, record, ...(file !== undefined ? { file } : {}), failures, error: error.slice(0, 500) };
    job.skipped.push(skipped);
    this.#persist({ type: 'record-skipped', jobId: job.id, skipped });
    this.#event({ type: 'record-skipped', jobId: job.id, taskId: task.id, record, failures });
    return undefined;
  }

  /** Attempts a task may take beyond maxAttempts: the one that switched it to per-record calls, and skipAfterFailures per skipped record. */
  #skipAllowance(task: Task): number {
    return task.skip ? 1 + task.skip.records.length * this.config.skipAfterFailures : 0;
  }

  // ------------------------------------------------------------ backup tasks (paper §3.6)

  #isBackup(task: Task, attempt: number, workerId: string): boolean {
    return task.backup !== undefined && task.backup.attempt === attempt && task.backup.workerId === workerId;
  }

  #backupCap(job: Job): number {
    return job.spec.settings?.maxBackupTasks ?? Math.max(1, Math.ceil((job.counts.map.total + job.counts.reduce.total) / 10));
  }

  /**
   * Marks the stragglers of each running job's current phase: the phase has no
   * pending task, at least backupDoneFraction of it is done, and the task's
   * attempt has run backupSlowness times the median of the phase's committed
   * attempts (and at least backupMinTicks). They get a backup when a worker
   * other than theirs asks for work (#takeBackup).
   */
  #findStragglers(): void {
    const c = this.config;
    for (const job of this.#active) {
      job.wanted.clear();
      if (job.state !== 'running' || !c.backupTasks || job.spec.settings?.backupTasks === false || job.backups.length >= this.#backupCap(job)) continue;
      const phase: TaskPhase = job.counts.map.done < job.counts.map.total ? 'map' : 'reduce';
      const counts = job.counts[phase];
      if (counts.pending > 0 || counts.running === 0 || counts.done < Math.max(1, Math.ceil(counts.total * c.backupDoneFraction))) continue;
      const durations = job.durations[phase];
      if (durations.length === 0) continue;
      // Sorting every tick would cost a big job's coordinator dearly: the median is redone as the sample grows by 5 %.
      if (!job.median || job.median.phase !== phase || durations.length >= job.median.n * 1.05 || durations.length < job.median.n) {
        job.median = { phase, n: durations.length, value: medianOf(durations) };
      }
      const median = job.median.value;
      const threshold = Math.max(c.backupMinTicks, Math.ceil(c.backupSlowness * median));
      for (const task of job.running) {
        if (task.phase !== phase || task.backup || task.adopted !== undefined || task.startedTick === undefined) continue;
        const ran = this.#tick - task.startedTick;
        if (ran < threshold) continue;
        const ms = (t: number): number => t * c.tickMs;
        job.wanted.set(
          task,
          `ran ${ms(ran)} ms, ${median > 0 ? `${(ran / median).toFixed(1)}x` : 'more than'} the median ${ms(median)} ms of ${durations.length} committed ${phase}s ` +
            `(threshold ${ms(threshold)} ms); ${counts.done}/${counts.total} ${phase}s done, none pending`,
        );
      }
    }
  }

  /** A backup attempt for a straggler not running on `w`, or undefined. */
  #takeBackup(w: Worker): Assignment | undefined {
    if (this.#shuttingDown !== undefined || this.#tick < this.#holdUntilTick) return undefined;
    for (const job of this.#active) {
      for (const [task, reason] of job.wanted) {
        if (job.backups.length >= this.#backupCap(job)) break;
        if (task.state !== 'leased' || task.backup || task.holder === w.id || w.leases.has(key(job.id, task.id))) continue;
        // A map running again (lost output) holds the reduces back: no reduce backup until it is done.
        if (task.phase === 'reduce' && job.counts.map.done < job.counts.map.total) continue;
        job.wanted.delete(task);
        return this.#launchBackup(job, task, w, reason);
      }
    }
    return undefined;
  }

  #launchBackup(job: Job, task: Task, w: Worker, reason: string): Assignment {
    const attempt = Math.max(task.lastAttempt, task.backupAttempt ?? 0) + 1;
    task.backupAttempt = attempt;
    task.attemptsIssued++;
    job.attempts.started++;
    const lease: Lease = { jobId: job.id, taskId: task.id, attempt, workerId: w.id, expiresAtTick: this.#tick + this.config.leaseTicks, progress: 0, progressTick: this.#tick };
    w.leases.set(key(job.id, task.id), lease);
    w.lastContactTick = this.#tick;
    const originalStartedTick = task.startedTick ?? this.#tick;
    const log: BackupDecision = {
      taskId: task.id,
      original: { attempt: task.lastAttempt, workerId: task.holder ?? '?' },
      backup: { attempt, workerId: w.id },
      reason,
      outcome: 'running',
      originalRanMsAtLaunch: (this.#tick - originalStartedTick) * this.config.tickMs,
    };
    job.backups.push(log);
    task.backup = { attempt, workerId: w.id, lease, startedTick: this.#tick, originalStartedTick, log };
    // Durable before the worker hears of it (as a lease): a restart keeps the decision and the backup's attempt.
    this.#persist({ type: 'backup-launched', jobId: job.id, taskId: task.id, attempt, workerId: w.id, decision: { ...log } });
    this.#event({ type: 'backup', jobId: job.id, taskId: task.id, outcome: 'running', attempt, workerId: w.id });
    this.#event({ type: 'task-assigned', jobId: job.id, taskId: task.id, phase: task.phase, attempt, workerId: w.id, reissue: false });
    return this.#assignment(job, task, attempt);
  }

  /**
   * Ends a task's backup race: drops the backup's lease and records the
   * outcome. 'original-lost': the holder's attempt is gone and the backup
   * becomes the task's holder (it goes on alone).
   */
  #endBackup(job: Job, task: Task, outcome: Exclude<BackupDecision['outcome'], 'running'>): void {
    const b = task.backup;
    assert(b, `endBackup: ${job.id}/${task.id} has no backup`);
    task.backup = undefined;
    b.log.outcome = outcome;
    b.log.originalRanMs = (this.#tick - b.originalStartedTick) * this.config.tickMs;
    b.log.backupRanMs = (this.#tick - b.startedTick) * this.config.tickMs;
    // job-ended: the job-finished record carries the log.
    if (outcome !== 'job-ended') {
      this.#lazy({ type: 'backup-ended', jobId: job.id, taskId: task.id, attempt: b.attempt, outcome, originalRanMs: b.log.originalRanMs ?? 0, backupRanMs: b.log.backupRanMs ?? 0 });
    }
    if (outcome === 'original-lost') {
      // The holder's attempt is gone; the backup's becomes the task's (a restart replays the hand-over from backup-ended).
      this.#dropLease(task);
      task.lease = b.lease;
      task.holder = b.workerId;
      task.lastAttempt = b.attempt;
      task.startedTick = b.startedTick;
    } else {
      // Whoever won, the backup's lease ends here (the holder's goes with the commit or release).
      this.#workers.get(b.workerId)?.leases.delete(key(job.id, task.id));
    }
    this.#event({ type: 'backup', jobId: job.id, taskId: task.id, outcome, attempt: b.attempt, workerId: b.workerId });
  }

  // ------------------------------------------------------------ scheduling

  #task(job: Job, taskId: string): Task | undefined {
    const dash = taskId.indexOf('-');
    const phase = taskId.slice(0, dash);
    const idx = Number(taskId.slice(dash + 1));
    if (!Number.isInteger(idx) || idx < 0 || `${phase}-${idx}` !== taskId) return undefined;
    if (phase === 'map') return job.maps[idx];
    if (phase === 'reduce') return job.reduces[idx];
    return undefined;
  }

  #setState(job: Job, task: Task, to: TaskState): void {
    const c = job.counts[task.phase];
    const field = (s: TaskState): 'pending' | 'running' | 'done' => (s === 'leased' ? 'running' : s);
    c[field(task.state)]--;
    c[field(to)]++;
    task.state = to;
    if (to === 'leased') job.running.add(task);
    else job.running.delete(task);
  }

  /**
   * Adds a committed attempt's counters to its job (only committed attempts
   * count: a task's counters are added once, however many attempts ran). A
   * job keeps at most MAX_JOB_COUNTERS names (besides `countersDropped`);
   * updates under further names are dropped and counted in `countersDropped`.
   */
  #addCounters(job: Job, counters: Record<string, number>): void {
    for (const [k, v] of Object.entries(counters)) {
      if (!Number.isFinite(v)) continue;
      const had = job.counters[k];
      if (had === undefined && k !== DROPPED_COUNTER && Object.keys(job.counters).length - (DROPPED_COUNTER in job.counters ? 1 : 0) >= MAX_JOB_COUNTERS) {
        job.counters[DROPPED_COUNTER] = (job.counters[DROPPED_COUNTER] ?? 0) + 1;
        continue;
      }
      job.counters[k] = (had ?? 0) + v;
    }
  }

  /** The first pending task, jobs in FIFO order, a job's reduces only once all its maps are done. */
  #nextTask(): { job: Job; task: Task } | undefined {
    if (this.#shuttingDown !== undefined || this.#tick < this.#holdUntilTick) return undefined;
    for (const job of this.#active) {
      if (job.counts.map.pending > 0) {
        const task = job.maps.find((t) => t.state === 'pending');
        assert(task, `job ${job.id}: pending count without a pending map`);
        return { job, task };
      }
      if (job.counts.map.done < job.counts.map.total) continue;
      if (job.counts.reduce.pending > 0) {
        const task = job.reduces.find((t) => t.state === 'pending');
        assert(task, `job ${job.id}: pending count without a pending reduce`);
        return { job, task };
      }
    }
    return undefined;
  }

  /** Up to `free` ready tasks for a worker: one assignment, a batch (free > 1), or undefined if none is ready. */
  #assignUpTo(w: Worker, free: number): PollReply | undefined {
    const tasks: Assignment[] = [];
    while (tasks.length < free) {
      const t = this.#nextTask();
      if (!t) break;
      tasks.push(this.#assign(t.job, t.task, w));
    }
    // Nothing else to do: idle slots run backups of stragglers.
    while (tasks.length < free) {
      const b = this.#takeBackup(w);
      if (!b) break;
      tasks.push(b);
    }
    if (tasks.length === 0) return undefined;
    return free > 1 ? { type: 'batch', tasks } : tasks[0]!;
  }

  #assign(job: Job, task: Task, w: Worker): Assignment {
    assert(task.state === 'pending', `assign: ${job.id}/${task.id} is ${task.state}`);
    if (job.state === 'queued') {
      job.state = 'running';
      this.#event({ type: 'job-started', jobId: job.id });
    }
    // A map run again after its output was lost is a re-issue too (its committed attempt no longer counts toward maxAttempts).
    const reissue = task.attemptsIssued > 0 || task.counted === true;
    task.lastAttempt = Math.max(task.lastAttempt, task.backupAttempt ?? 0) + 1;
    task.startedTick = this.#tick;
    task.attemptsIssued++;
    job.attempts.started++;
    if (reissue) job.attempts.reissued++;
    const lease: Lease = {
      jobId: job.id, taskId: task.id, attempt: task.lastAttempt, workerId: w.id, expiresAtTick: this.#tick + this.config.leaseTicks, progress: 0, progressTick: this.#tick,
    };
    task.lease = lease;
    task.holder = w.id;
    w.leases.set(key(job.id, task.id), lease);
    // Journaled before the worker hears of it (the assignment waits for this record): after a
    // restart the attempt is still this worker's, and only its, so a task the worker finishes
    // while the coordinator is down is accepted, never run again.
    this.#persist({ type: 'task-leased', jobId: job.id, taskId: task.id, attempt: lease.attempt, workerId: w.id });
    w.lastContactTick = this.#tick;
    this.#setState(job, task, 'leased');
    this.#event({ type: 'task-assigned', jobId: job.id, taskId: task.id, phase: task.phase, attempt: lease.attempt, workerId: w.id, reissue });
    this.#event({ type: 'job-progress', jobId: job.id });
    return this.#assignment(job, task, lease.attempt);
  }

  /** What a worker is told to run: attempt `attempt` of the task. */
  #assignment(job: Job, task: Task, attempt: number): Assignment {
    const common = {
      jobId: job.id,
      taskId: task.id,
      index: task.index,
      attempt,
      app: job.spec.app,
      options: job.spec.options,
      reduces: job.spec.reduces,
      leaseMs: this.config.leaseTicks * this.config.tickMs,
      ...(job.spec.settings?.combiner === false ? { combiner: false } : {}),
      ...(job.spec.settings?.partitioner ? { partitioner: job.spec.settings.partitioner } : {}),
      ...(job.spec.settings?.skipBadRecords ? { skip: { perRecord: task.skip?.perRecord ?? false, records: [...(task.skip?.records ?? [])] } } : {}),
    };
    if (task.phase === 'map') {
      const split = mapSplits(job.spec)[task.index]!;
      const pieces = split.map((p) => ({
        path: job.spec.inputs[p.input]!,
        name: job.spec.names?.[p.input] ?? job.spec.inputs[p.input]!,
        index: p.input,
        start: p.start,
        ...(p.end !== undefined ? { end: p.end } : {}),
      }));
      const first = pieces[0]!;
      const a: MapAssignment = {
        type: 'map',
        ...common,
        input: first.path,
        ...(first.name !== first.path ? { name: first.name } : {}),
        split: pieces,
        outputDir: mapAttemptDir(job.spec.workDir, task.index, attempt),
        ...(served(job) ? { serve: true as const } : {}),
      };
      return a;
    }
    if (served(job)) {
      const sources: MapSource[] = [];
      for (const m of job.maps) {
        if (partitionFile(m.winner!.files, m.index, task.index, job.spec.reduces) !== undefined) sources.push(this.#source(m)!);
      }
      return { type: 'reduce', ...common, inputs: [], sources, outputDir: reduceAttemptDir(job.spec.workDir, task.index, attempt) };
    }
    const a: ReduceAssignment = {
      type: 'reduce',
      ...common,
      inputs: reduceInputs(
        job.maps.map((m) => m.winner!.files),
        task.index,
        job.spec.reduces,
      ),
      outputDir: reduceAttemptDir(job.spec.workDir, task.index, attempt),
    };
    return a;
  }

  #dropLease(task: Task): void {
    task.adopted = undefined;
    const lease = task.lease;
    if (!lease) return;
    this.#workers.get(lease.workerId)?.leases.delete(key(lease.jobId, lease.taskId));
    task.lease = undefined;
  }

  /**
   * Takes a leased task back (lease expired, worker lost, attempt failed).
   * With `fatal` set, or when the task used up its attempts, the job fails.
   */
  #release(job: Job, task: Task, fatal: string | undefined, why: string): void {
    // The holder's attempt is gone but its backup runs: the backup goes on as the task's holder.
    if (task.backup && fatal === undefined) {
      this.#endBackup(job, task, 'original-lost');
      this.#event({ type: 'job-progress', jobId: job.id });
      return;
    }
    if (task.backup) this.#endBackup(job, task, 'job-ended');
    if (task.lease) this.#lazy({ type: 'task-released', jobId: job.id, taskId: task.id, attempt: task.lease.attempt });
    this.#dropLease(task);
    if (task.state === 'leased') this.#setState(job, task, 'pending');
    if (fatal !== undefined) return this.#finish(job, 'failed', fatal);
    if (task.attemptsIssued >= this.config.maxAttempts + this.#skipAllowance(task)) {
      return this.#finish(job, 'failed', `${task.id} gave up after ${task.attemptsIssued} attempts (last: ${why})`);
    }
    this.#event({ type: 'job-progress', jobId: job.id });
  }

  #finish(job: Job, state: 'succeeded' | 'failed' | 'cancelled', error?: string): void {
    assert(!terminal(job.state), `finish: ${job.id} already ${job.state}`);
    for (const t of [...job.maps, ...job.reduces]) {
      if (t.backup) this.#endBackup(job, t, 'job-ended');
      if (t.state === 'leased') {
        this.#dropLease(t);
        this.#setState(job, t, 'pending');
      }
    }
    job.state = state;
    job.error = state === 'succeeded' ? undefined : error;
    job.wanted.clear();
    this.#active = this.#active.filter((j) => j !== job);
    this.#persist({
      type: 'job-finished', jobId: job.id, state, ...(job.error !== undefined ? { error: job.error } : {}), ...(job.backups.length ? { backups: job.backups } : {}),
      ...(job.reexecutions.length ? { reexecutions: job.reexecutions } : {}),
    });
    this.#event({ type: 'job-finished', jobId: job.id, state, ...(job.error !== undefined ? { error: job.error } : {}), workDir: job.spec.workDir, output: job.spec.output });
    this.#retain(job);
  }

  /** Only "all work done" (with exitWhenDone) tells workers to exit; a coordinator stop does not. */
  #exitReason(): string | undefined {
    if (this.config.exitWhenDone && this.allDone()) return 'all jobs done';
    return undefined;
  }

  /** Hands ready tasks to parked polls (oldest first); answers them all 'exit' when work is over. */
  #dispatch(): void {
    const exit = this.#exitReason();
    if (exit !== undefined) {
      for (const p of this.#parked) this.#reply(p.requestId, { kind: 'poll', reply: { type: 'exit', reason: exit } });
      this.#parked = [];
    }
    // A closing coordinator releases parked polls with 'wait': workers keep polling (and retry while it is down).
    if (this.#shuttingDown !== undefined) {
      for (const p of this.#parked) this.#reply(p.requestId, { kind: 'poll', reply: { type: 'wait' } });
      this.#parked = [];
    }
    while (this.#parked.length > 0) {
      const p = this.#parked[0]!;
      const w = this.#workers.get(p.workerId);
      const reply = w ? this.#assignUpTo(w, p.free) : { type: 'wait' as const };
      if (!reply) break;
      this.#parked.shift();
      this.#reply(p.requestId, { kind: 'poll', reply });
    }
    // No regular task is ready; a straggler's backup may still go to another parked worker
    // than the first one (which may be the straggler's own).
    if (this.#parked.length > 1 && this.#active.some((j) => j.wanted.size > 0)) {
      this.#parked = this.#parked.filter((p) => {
        const w = this.#workers.get(p.workerId);
        const reply = w && this.#assignUpTo(w, p.free);
        if (reply) this.#reply(p.requestId, { kind: 'poll', reply });
        return !reply;
      });
    }
    if (this.allDone() && !this.#allDoneAnnounced) {
      this.#allDoneAnnounced = true;
      this.#event({ type: 'all-done' });
    }
  }

  #view(job: Job): CoreJobView {
    return {
      id: job.id,
      ...(job.spec.name !== undefined ? { name: job.spec.name } : {}),
      app: job.spec.app,
      state: job.state,
      reduces: job.spec.reduces,
      inputs: job.inputCount,
      output: job.spec.output,
      options: job.spec.options,
      ...(job.spec.settings ? { settings: job.spec.settings } : {}),
      tasks: { map: { ...job.counts.map }, reduce: { ...job.counts.reduce } },
      attempts: { ...job.attempts },
      counters: { ...job.counters },
      ...(job.backups.length ? { backups: job.backups.map((b) => ({ ...b })) } : {}),
      ...(job.reexecutions.length ? { reexecutions: job.reexecutions.map((r) => ({ ...r })) } : {}),
      ...(job.skipped.length ? { skipped: [...job.skipped] } : {}),
      outputFiles: job.state === 'succeeded' ? Array.from({ length: job.spec.reduces }, (_, r) => `${job.spec.output}/mr-out-${r}`) : [],
      ...(job.error !== undefined ? { error: job.error } : {}),
    };
  }
}
