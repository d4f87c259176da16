/**
 * Wire contracts of the MapReduce coordinator: the job API (users, the `mr`
 * CLI) and the worker protocol (workers polling over HTTP). TypeBox schemas
 * with their Static<> types. Additive changes only: users script against these.
 */
import { Type, type Static } from 'typebox';

// ---------------------------------------------------------------- common

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
});
export type ErrorReply = Static<typeof ErrorReply>;

export const JobState = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
export type JobState = Static<typeof JobState>;

export const TaskPhase = Type.Union([Type.Literal('map'), Type.Literal('reduce')]);
export type TaskPhase = Static<typeof TaskPhase>;

/** Where a job's map output lives until the reduces read it (see JobSubmit.shuffle). */
export const Shuffle = Type.Union([Type.Literal('shared'), Type.Literal('worker')]);
export type Shuffle = Static<typeof Shuffle>;

/** Limits the coordinator enforces on a job submission. */
export const LIMITS = {
  maxInputs: 10_000,
  maxReduces: 10_000,
  maxPathLength: 4096,
  maxOptions: 32,
  maxOptionLength: 4096,
  /** Map tasks (splits) of one job: a bigger input needs a bigger splitSize. */
  maxSplits: 100_000,
  /** Split size bounds, bytes (1 byte is allowed for tests; the default is the coordinator's, 64 MiB). */
  minSplitSize: 1,
  maxSplitSize: 2 ** 40,
  /** Reduces of a job with the range partitioner (its split points go to every map task). */
  maxRangeReduces: 1000,
  /** UTF-16 code units of one range split point (a longer sampled key is cut: any string is a valid boundary). */
  maxSplitPointLength: 128,
  /** Backup attempts one job may launch. */
  maxBackupTasks: 10_000,
  /** Counter names in one task attempt's report (built-in + user counters; user code may use 32). */
  maxTaskCounters: 64,
  /** Map re-executions listed per job (more are counted in the mapReexecutions counter only). */
  maxReexecutionLog: 1000,
  /** Jobs one intermediates check names. */
  maxHeldJobs: 1000,
  /** Characters of a map output's location (the serving worker's base URL). */
  maxLocationLength: 2048,
  /** Bad records one job may skip (maxSkippedRecords). */
  maxSkippedRecords: 10_000,
  /** UTF-8 bytes of a reduce key shown for a bad record (a longer key is cut; the record is named by its group number). */
  maxRecordKeyBytes: 256,
} as const;

// ---------------------------------------------------------------- job API

export const JobOptions = Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' }), Type.String({ maxLength: LIMITS.maxOptionLength }), {
  maxProperties: LIMITS.maxOptions,
});
export type JobOptions = Static<typeof JobOptions>;

/** POST /v1/jobs */
export const JobSubmit = Type.Object(
  {
    app: Type.String({ minLength: 1, maxLength: 64 }),
    inputs: Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.maxPathLength }), { minItems: 1, maxItems: LIMITS.maxInputs }),
    reduces: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.maxReduces, default: 10 })),
    /**
     * The file names map functions see, one per input (default: the inputs).
     * `mr submit` sends the paths as the user typed them, so that apps which
     * output file names (indexer, crash) match `mr seq` on the same command line.
     */
    names: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.maxPathLength }), { minItems: 1, maxItems: LIMITS.maxInputs })),
    /** Absolute output directory; default: a directory under the coordinator's data dir. */
    output: Type.Optional(Type.String({ minLength: 1, maxLength: LIMITS.maxPathLength })),
    /** App options, e.g. {"pattern": "whale"} for grep. */
    options: Type.Optional(JobOptions),
    /**
     * Bytes of input per map task (default: the coordinator's --split-size,
     * 64 MiB). Bigger files of line-oriented apps are divided into splits of
     * this size (line-aligned); smaller files are combined up to it.
     */
    splitSize: Type.Optional(Type.Integer({ minimum: LIMITS.minSplitSize, maximum: LIMITS.maxSplitSize })),
    /** A label for people. */
    name: Type.Optional(Type.String({ maxLength: 200 })),
    /**
     * Run the app's combiner (default true): on each map task's output and on
     * reduce-side spilled runs. False measures the shuffle without it.
     */
    combiner: Type.Optional(Type.Boolean()),
    /**
     * How keys are divided among reduces: absent, the app's own partition
     * function (or 'hash' if it has none); 'hash', the lab's FNV-1a hash;
     * 'range', split points sampled from the input at submit (the
     * concatenated outputs are globally sorted; at most LIMITS.maxRangeReduces reduces).
     */
    partitioner: Type.Optional(Type.Union([Type.Literal('hash'), Type.Literal('range')])),
    /** Backup (speculative) attempts of straggling tasks near the end of a phase (default true). */
    backupTasks: Type.Optional(Type.Boolean()),
    /** Most backup attempts the job may launch (default: a tenth of its tasks, at least 1). */
    maxBackupTasks: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.maxBackupTasks })),
    /**
     * Where map output lives until the reduces read it (default: the coordinator's --shuffle):
     * 'shared', files in the job's work directory on a filesystem every worker shares;
     * 'worker', on the map worker's own disk, served by that worker over HTTP (paper §3.1):
     * a worker lost before every reduce read its output has its maps run again.
     */
    shuffle: Type.Optional(Shuffle),
    /**
     * Skip bad records (paper §4.6; default false): a record on which the
     * app's map or reduce throws, or makes no progress, more than once is
     * skipped when the task runs again; skipped records are counted
     * (`skippedRecords`) and listed in the job (`skipped`).
     */
    skipBadRecords: Type.Optional(Type.Boolean()),
    /** Most records the job may skip (default 10); one more bad record fails the job. */
    maxSkippedRecords: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.maxSkippedRecords })),
  },
  { additionalProperties: false },
);
export type JobSubmit = Static<typeof JobSubmit>;

export const PhaseCounts = Type.Object({
  total: Type.Integer(),
  pending: Type.Integer(),
  running: Type.Integer(),
  done: Type.Integer(),
});
export type PhaseCounts = Static<typeof PhaseCounts>;

/** A range or hash partitioner chosen by the job (absent: the app's own). */
export const Partitioner = Type.Union([Type.Object({ type: Type.Literal('hash') }), Type.Object({ type: Type.Literal('range'), points: Type.Array(Type.String()) })]);
export type Partitioner = Static<typeof Partitioner>;

/** The framework's options of a job as accepted (see JobSubmit; range split points sampled at submit). */
export const JobSettings = Type.Object({
  combiner: Type.Optional(Type.Boolean()),
  partitioner: Type.Optional(Partitioner),
  backupTasks: Type.Optional(Type.Boolean()),
  maxBackupTasks: Type.Optional(Type.Integer()),
  /** 'worker': map output served by the worker that made it (absent: the shared filesystem). */
  shuffle: Type.Optional(Shuffle),
  skipBadRecords: Type.Optional(Type.Boolean()),
  maxSkippedRecords: Type.Optional(Type.Integer()),
});
export type JobSettings = Static<typeof JobSettings>;

/**
 * One backup (speculative) attempt a job launched: why, on which worker,
 * and how it ended. Times in ms (the coordinator's tick clock).
 */
export const BackupDecision = Type.Object({
  taskId: Type.String(),
  /** The straggling attempt and the backup attempt (its fencing token). */
  original: Type.Object({ attempt: Type.Integer(), workerId: Type.String() }),
  backup: Type.Object({ attempt: Type.Integer(), workerId: Type.String() }),
  /** Why: how long the original had run against the phase's median, and how much of the phase was done. */
  reason: Type.String(),
  /** running, backup-won, original-won, original-lost (the backup goes on alone), backup-lost, job-ended. */
  outcome: Type.Union([
    Type.Literal('running'),
    Type.Literal('backup-won'),
    Type.Literal('original-won'),
    Type.Literal('original-lost'),
    Type.Literal('backup-lost'),
    Type.Literal('job-ended'),
  ]),
  /** How long the original had run when the backup was launched. */
  originalRanMsAtLaunch: Type.Number(),
  /**
   * When decided: how long each attempt had run. backup-won: the original had
   * run originalRanMs with no result, and the job did not wait for the rest of it.
   */
  originalRanMs: Type.Optional(Type.Number()),
  backupRanMs: Type.Optional(Type.Number()),
});
export type BackupDecision = Static<typeof BackupDecision>;

/**
 * A committed map whose output became unreachable before every reduce had
 * read it (its worker was lost, or reduces reported fetch failures): the map
 * was run again (paper §3.3). Times in ms of the coordinator's tick clock.
 */
export const MapReexecution = Type.Object({
  taskId: Type.String(),
  /** The attempt whose output was lost, and the worker that held it. */
  attempt: Type.Integer(),
  workerId: Type.String(),
  reason: Type.String(),
  /** Reduces of the job not yet committed when the output was lost (they needed it). */
  reducesWaiting: Type.Integer(),
});
export type MapReexecution = Static<typeof MapReexecution>;

/**
 * One input record of a task: a map's is a line of a 'lines' app (input =
 * the input's position in the job, offset = its first byte, bytes = its
 * length) or a whole file ('whole-file' apps: offset 0); `records` is how many
 * records the user's call had (1: exactly this record; more: a chunk of
 * lines, which names no single record). A reduce's is a key group: its
 * number in the task's sorted key order (what identifies it) and the key
 * (cut to LIMITS.maxRecordKeyBytes).
 */
export const RecordRef = Type.Union([
  Type.Object({
    phase: Type.Literal('map'),
    input: Type.Integer({ minimum: 0 }),
    offset: Type.Integer({ minimum: 0 }),
    bytes: Type.Integer({ minimum: 0 }),
    records: Type.Integer({ minimum: 1 }),
    /** 1-based line number, when known (from the file's start). */
    line: Type.Optional(Type.Integer({ minimum: 1 })),
  }, { additionalProperties: false }),
  Type.Object({
    phase: Type.Literal('reduce'),
    group: Type.Integer({ minimum: 0 }),
    key: Type.String({ maxLength: LIMITS.maxRecordKeyBytes }),
  }, { additionalProperties: false }),
]);
export type RecordRef = Static<typeof RecordRef>;

/** A record the job skipped (paper §4.6), with what the failed attempts said. */
export const SkippedRecord = Type.Object({
  taskId: Type.String(),
  record: RecordRef,
  /** A map record's input file, as the job names it. */
  file: Type.Optional(Type.String()),
  /** Failed attempts on this record before it was skipped. */
  failures: Type.Integer(),
  /** The last failure: the user code's error, or 'no progress for ...'. */
  error: Type.String(),
});
export type SkippedRecord = Static<typeof SkippedRecord>;

export const JobView = Type.Object({
  id: Type.String(),
  name: Type.Optional(Type.String()),
  app: Type.String(),
  state: JobState,
  reduces: Type.Integer(),
  inputs: Type.Integer(),
  output: Type.String(),
  options: Type.Optional(JobOptions),
  /** The framework options the job was accepted with (absent: every default). */
  settings: Type.Optional(JobSettings),
  submittedAt: Type.String(),
  startedAt: Type.Optional(Type.String()),
  finishedAt: Type.Optional(Type.String()),
  tasks: Type.Object({ map: PhaseCounts, reduce: PhaseCounts }),
  /** Attempts started, re-issued after a lease expired, and failed. */
  attempts: Type.Object({ started: Type.Integer(), reissued: Type.Integer(), failed: Type.Integer() }),
  /** App and framework counters (map input records, output keys, ...). */
  counters: Type.Record(Type.String(), Type.Number()),
  /** Backup attempts launched for stragglers (the decision log), oldest first. */
  backups: Type.Optional(Type.Array(BackupDecision)),
  /** Committed maps run again because their output was lost (worker-served shuffle), oldest first (at most LIMITS.maxReexecutionLog kept). */
  reexecutions: Type.Optional(Type.Array(MapReexecution)),
  /** Bad records skipped (skipBadRecords), in the order they were skipped. */
  skipped: Type.Optional(Type.Array(SkippedRecord)),
  /** Output files (absolute paths), once the job succeeded. */
  outputFiles: Type.Array(Type.String()),
  error: Type.Optional(Type.String()),
});
export type JobView = Static<typeof JobView>;

export const JobCreated = Type.Object({ id: Type.String(), state: JobState });
export type JobCreated = Static<typeof JobCreated>;

export const JobList = Type.Object({
  jobs: Type.Array(JobView),
  /** More jobs match: pass as `after` for the next page. */
  next: Type.Optional(Type.String()),
});
export type JobList = Static<typeof JobList>;

/** GET /v1/jobs?state=running&state=queued&limit=N&after=JOB_ID (oldest first). */
export const JobListQuery = Type.Object(
  {
    state: Type.Optional(Type.Array(JobState, { minItems: 1, maxItems: 5 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000 })),
    after: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;

export const JobIdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
export type JobIdParams = Static<typeof JobIdParams>;

/** One server-sent event of GET /v1/jobs/:id/events (the data field, JSON). */
export const JobEvent = Type.Object({
  type: Type.Union([Type.Literal('progress'), Type.Literal('state')]),
  job: JobView,
});
export type JobEvent = Static<typeof JobEvent>;

// ---------------------------------------------------------------- workers

export const TaskRef = Type.Object({
  jobId: Type.String(),
  taskId: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
});
export type TaskRef = Static<typeof TaskRef>;

export const WorkerView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  pid: Type.Integer(),
  host: Type.String(),
  slots: Type.Integer(),
  registeredAt: Type.String(),
  lastContactAt: Type.String(),
  tasks: Type.Array(TaskRef),
});
export type WorkerView = Static<typeof WorkerView>;

export const WorkerList = Type.Object({ workers: Type.Array(WorkerView) });
export type WorkerList = Static<typeof WorkerList>;

/** POST /v1/workers */
export const WorkerRegister = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    pid: Type.Integer({ minimum: 0 }),
    host: Type.String({ maxLength: 255 }),
    slots: Type.Integer({ minimum: 1, maximum: 64 }),
  },
  { additionalProperties: false },
);
export type WorkerRegister = Static<typeof WorkerRegister>;

export const WorkerRegistered = Type.Object({
  workerId: Type.String(),
  /** Send it as the x-mr-worker-secret header on every request of this worker id. */
  secret: Type.String(),
  /** How long the coordinator holds a poll open before answering "wait". */
  pollTimeoutMs: Type.Integer(),
  /** How often the worker should send a heartbeat while it runs tasks. */
  heartbeatIntervalMs: Type.Integer(),
});
export type WorkerRegistered = Static<typeof WorkerRegistered>;

export const WorkerIdParams = Type.Object({ workerId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
export type WorkerIdParams = Static<typeof WorkerIdParams>;

/** POST /v1/workers/:workerId/poll: long-poll for a task. */
export const PollRequest = Type.Object(
  {
    /** Free slots on the worker (default 1). */
    free: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  },
  { additionalProperties: false },
);
export type PollRequest = Static<typeof PollRequest>;

const AssignmentCommon = {
  jobId: Type.String(),
  taskId: Type.String(),
  /** Task number within its phase (map: input index; reduce: partition). */
  index: Type.Integer({ minimum: 0 }),
  /** Fencing token: report it back with the completion. */
  attempt: Type.Integer({ minimum: 1 }),
  app: Type.String(),
  options: JobOptions,
  reduces: Type.Integer({ minimum: 1 }),
  /** The lease: the task is handed to another worker after this long. */
  leaseMs: Type.Integer(),
  /** False: do not run the app's combiner (the job's `combiner` option). Absent: run it. */
  combiner: Type.Optional(Type.Boolean()),
  /** The job's partitioner when it is not the app's own: the hash, or range split points (sorted, reduces - 1 of them). */
  partitioner: Type.Optional(Partitioner),
  /**
   * The job skips bad records: report the record user code failed on (fail,
   * heartbeats); `perRecord`: call map once per record (after a failure, so
   * that the next one names its record); `records`: skip these.
   */
  skip: Type.Optional(Type.Object({ perRecord: Type.Boolean(), records: Type.Array(RecordRef) })),
  /** W3C trace context of the job's span, so task spans join the job's trace. */
  traceparent: Type.Optional(Type.String()),
  tracestate: Type.Optional(Type.String()),
};

/** One input file's part of a map task's split: the lines starting in [start, end). */
export const SplitPiece = Type.Object({
  /** The input's real path (symlinks resolved when the job was accepted): open it, and check it still is that file. */
  path: Type.String(),
  /** The file name map sees (as the user gave it). */
  name: Type.String(),
  /** The input's position in the job. */
  index: Type.Integer({ minimum: 0 }),
  /** First byte of the range. */
  start: Type.Integer({ minimum: 0 }),
  /** End of the range (exclusive); absent: to the end of the file. */
  end: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type SplitPiece = Static<typeof SplitPiece>;

export const MapAssignment = Type.Object({
  type: Type.Literal('map'),
  ...AssignmentCommon,
  /** Absolute input file (the split's first piece). */
  input: Type.String(),
  /** The file name to pass to map (the job's `names` entry), when it differs from input. */
  name: Type.Optional(Type.String()),
  /** The task's input: byte ranges of one or more files, read in order. */
  split: Type.Optional(Type.Array(SplitPiece)),
  /** Directory (absolute, attempt-private) to write mr-<map>-<reduce> files into. */
  outputDir: Type.String(),
  /**
   * Worker-served shuffle: keep the files on this worker (its intermediate
   * store, outputDir's last component naming the attempt) and serve them;
   * report the store's base URL as the completion's `location`.
   */
  serve: Type.Optional(Type.Literal(true)),
});
export type MapAssignment = Static<typeof MapAssignment>;

/** Where a reduce fetches map `map`'s output (worker-served shuffle): attempt `attempt` on the worker serving at `location`. */
export const MapSource = Type.Object({
  map: Type.Integer({ minimum: 0 }),
  attempt: Type.Integer({ minimum: 1 }),
  location: Type.String(),
});
export type MapSource = Static<typeof MapSource>;

export const ReduceAssignment = Type.Object({
  type: Type.Literal('reduce'),
  ...AssignmentCommon,
  /** The winning map attempts' intermediate files for this partition (absolute), named by the coordinator. */
  inputs: Type.Array(Type.String()),
  /**
   * Worker-served shuffle: fetch partition `index` of each map from its worker
   * (inputs is then empty); maps with nothing for this partition are left out.
   */
  sources: Type.Optional(Type.Array(MapSource)),
  /**
   * Attempt-private directory in the job's work dir: write mr-out-<index> there
   * (temp file + rename). The coordinator renames the accepted attempt's file
   * into the job's output directory; no worker writes there.
   */
  outputDir: Type.String(),
});
export type ReduceAssignment = Static<typeof ReduceAssignment>;

/** Most tasks one poll hands out (a worker's free slots, at most 64). */
export const MAX_POLL_BATCH = 64;

export const Assignment = Type.Union([MapAssignment, ReduceAssignment]);
export type Assignment = Static<typeof Assignment>;

export const PollReply = Type.Union([
  MapAssignment,
  ReduceAssignment,
  /** Answer to a poll with free > 1: up to `free` tasks at once (one round trip for several slots). */
  Type.Object({ type: Type.Literal('batch'), tasks: Type.Array(Assignment, { minItems: 1, maxItems: MAX_POLL_BATCH }) }),
  /** Nothing to do right now: poll again. */
  Type.Object({ type: Type.Literal('wait') }),
  /** All work is done (or the coordinator is shutting down): exit. */
  Type.Object({ type: Type.Literal('exit'), reason: Type.String() }),
]);
export type PollReply = Static<typeof PollReply>;

/** A task attempt's counters: names 1-69 characters ([A-Za-z0-9_.-], a letter first), safe integers. */
export const TaskCounters = Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,68}$' }), Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }), {
  maxProperties: 64,
  additionalProperties: false,
});

/** POST /v1/workers/:workerId/complete */
export const TaskComplete = Type.Object(
  {
    ...TaskRef.properties,
    durationMs: Type.Number({ minimum: 0 }),
    /** A map attempt's files (absolute, <outputDir>/mr-<m>-<r>; anything else is refused). Reduces: ignored. */
    files: Type.Array(Type.String(), { maxItems: LIMITS.maxReduces }),
    /** The attempt's counters (built-in and user.<name>): at most LIMITS.maxTaskCounters names. */
    counters: Type.Optional(TaskCounters),
    /** A served map's output (assignment `serve`): the base URL of this worker's intermediate server. */
    location: Type.Optional(Type.String({ minLength: 1, maxLength: LIMITS.maxLocationLength, pattern: '^https?://' })),
  },
  { additionalProperties: false },
);
export type TaskComplete = Static<typeof TaskComplete>;

/** POST /v1/workers/:workerId/complete-batch: several completions in one request (one journal fsync). */
export const TaskCompleteBatch = Type.Object(
  { completions: Type.Array(TaskComplete, { minItems: 1, maxItems: MAX_POLL_BATCH }) },
  { additionalProperties: false },
);
export type TaskCompleteBatch = Static<typeof TaskCompleteBatch>;

/** POST /v1/workers/:workerId/fail */
export const TaskFail = Type.Object(
  {
    ...TaskRef.properties,
    error: Type.String({ maxLength: 4096 }),
    /** False when retrying cannot help (bad input, unknown app): the job fails. */
    retryable: Type.Boolean(),
    /** The record the app's map or reduce failed on (the error came from user code on it). */
    record: Type.Optional(RecordRef),
  },
  { additionalProperties: false },
);
export type TaskFail = Static<typeof TaskFail>;

/** Answer to complete/fail: a stale attempt is answered as data, not an error. */
export const TaskAck = Type.Object({
  accepted: Type.Boolean(),
  reason: Type.Optional(
    Type.Union([Type.Literal('stale-attempt'), Type.Literal('already-done'), Type.Literal('job-not-running'), Type.Literal('unknown-task'), Type.Literal('not-lease-holder')]),
  ),
});
export type TaskAck = Static<typeof TaskAck>;

/** Answer to complete-batch: one ack per completion, in order. */
export const TaskAckBatch = Type.Object({ acks: Type.Array(TaskAck) });
export type TaskAckBatch = Static<typeof TaskAckBatch>;

/** POST /v1/workers/:workerId/heartbeat */
/** A running attempt as a heartbeat names it; progress: bytes + records processed so far (grows while the task works). */
export const HeartbeatTask = Type.Object({
  ...TaskRef.properties,
  progress: Type.Optional(Type.Number({ minimum: 0 })),
  /** The record the attempt's user code is on (jobs that skip bad records): where it hangs, if it stops making progress. */
  record: Type.Optional(RecordRef),
});
export type HeartbeatTask = Static<typeof HeartbeatTask>;

export const Heartbeat = Type.Object({ tasks: Type.Array(HeartbeatTask, { maxItems: 64 }) }, { additionalProperties: false });
export type Heartbeat = Static<typeof Heartbeat>;

export const HeartbeatReply = Type.Object({
  /** Tasks the worker should stop and abandon (job cancelled, task already done elsewhere): do not report them. */
  abandon: Type.Array(TaskRef),
});
export type HeartbeatReply = Static<typeof HeartbeatReply>;

/**
 * POST /v1/workers/:workerId/fetch-failure: a running reduce attempt could
 * not fetch map `map`'s output (attempt `mapAttempt`) after its retries.
 */
export const FetchFailure = Type.Object(
  {
    ...TaskRef.properties,
    map: Type.Integer({ minimum: 0 }),
    mapAttempt: Type.Integer({ minimum: 1 }),
    error: Type.String({ maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type FetchFailure = Static<typeof FetchFailure>;

/**
 * What the reduce does next: 'retry' from `source` (the map's current output:
 * the same after a passing failure, a new one once the map ran again), or
 * 'abandon': the attempt is over (not current any more, or the map runs
 * again: the reduce gives its slot back and is handed out again later).
 */
export const FetchFailureReply = Type.Object({
  action: Type.Union([Type.Literal('retry'), Type.Literal('abandon')]),
  source: Type.Optional(MapSource),
});
export type FetchFailureReply = Static<typeof FetchFailureReply>;

/** POST /v1/workers/:workerId/intermediates: the jobs whose map output this worker keeps. */
export const HeldIntermediates = Type.Object(
  { jobs: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), { maxItems: LIMITS.maxHeldJobs }) },
  { additionalProperties: false },
);
export type HeldIntermediates = Static<typeof HeldIntermediates>;

/** The jobs among them that are over (finished or unknown): delete their intermediates. */
export const HeldIntermediatesReply = Type.Object({ drop: Type.Array(Type.String()) });
export type HeldIntermediatesReply = Static<typeof HeldIntermediatesReply>;

/** GET <location>/v1/intermediates/:jobId/:map/:attempt/:partition on a worker: one partition of one map attempt's output. */
export const IntermediateParams = Type.Object({
  jobId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  map: Type.Integer({ minimum: 0, maximum: 999_999_999 }),
  attempt: Type.Integer({ minimum: 1, maximum: 999_999_999 }),
  partition: Type.Integer({ minimum: 0, maximum: LIMITS.maxReduces - 1 }),
});
export type IntermediateParams = Static<typeof IntermediateParams>;

export { ROUTES, WORKER_SECRET_HEADER } from './routes.ts';
export { canonicalJobId, isUlidJobId, legacyJobNumber } from './job-id.ts';

/** How an attempt of a task ended (GET /v1/jobs/:id/tasks). */
export const AttemptOutcome = Type.Union([
  Type.Literal('running'),
  /** Its output was committed (the task's winner). */
  Type.Literal('committed'),
  /** Its worker reported a failure (reason: the error). */
  Type.Literal('failed'),
  /** Its lease ran out without a completion; the task went to another worker. */
  Type.Literal('expired'),
  /** Its worker was declared lost (no heartbeat); the task went to another worker. */
  Type.Literal('lost'),
  /** It reported no progress for the progress timeout: abandoned and re-queued. */
  Type.Literal('stalled'),
  /** Its completion came too late or from the wrong worker and was refused (reason says which). */
  Type.Literal('stale'),
  /** Another attempt of the task committed first. */
  Type.Literal('superseded'),
  /** Its job was cancelled, or failed, while it ran. */
  Type.Literal('cancelled'),
  Type.Literal('abandoned'),
]);
export type AttemptOutcome = Static<typeof AttemptOutcome>;

export const AttemptView = Type.Object({
  attempt: Type.Integer(),
  workerId: Type.String(),
  startedAt: Type.String(),
  endedAt: Type.Optional(Type.String()),
  outcome: AttemptOutcome,
  reason: Type.Optional(Type.String()),
  /** As the worker measured it (committed attempts). */
  durationMs: Type.Optional(Type.Number()),
});
export type AttemptView = Static<typeof AttemptView>;

export const TaskView = Type.Object({
  id: Type.String(),
  phase: TaskPhase,
  index: Type.Integer(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('done')]),
  /** Attempts handed out (including those no longer listed). */
  attemptCount: Type.Integer(),
  /** The latest attempts this coordinator process saw (at most 8 per task; attempts from before a restart are not listed). */
  attempts: Type.Array(AttemptView),
});
export type TaskView = Static<typeof TaskView>;

/** GET /v1/jobs/:id/tasks?limit=N&after=TASK_ID */
export const TaskListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    /** The `next` of the previous page: the id of the last task it listed. */
    after: Type.Optional(Type.String({ pattern: '^(map|reduce)-[0-9]{1,9}$' })),
  },
  { additionalProperties: false },
);
export type TaskListQuery = Static<typeof TaskListQuery>;

export const TaskList = Type.Object({
  jobId: Type.String(),
  /** Tasks of the job in all (maps + reduces). */
  total: Type.Integer(),
  tasks: Type.Array(TaskView),
  /** Pass as `after` for the next page; absent on the last page. */
  next: Type.Optional(Type.String()),
  /** False when a finished job's attempt detail is no longer kept (see the README's limits): tasks are listed without attempts. */
  detail: Type.Boolean(),
});
export type TaskList = Static<typeof TaskList>;
