export { Scheduler, SchedulerAssertion, validateConfig } from './scheduler.ts';
export { partitionFile, reduceInputs } from './partition.ts';
export {
  ATTEMPT_EPOCH,
  DEFAULT_CONFIG,
  type SchedulerConfig,
  type SchedulerInput,
  type SchedulerEvent,
  type PersistRecord,
  type Effects,
  type Reply,
  type ReplyBody,
  type Idempotency,
  type RetiredCounts,
  type JobSummary,
  type ActiveJobImage,
  type JobSpec,
  type ResolvedJobSpec,
  type WorkerInfo,
  type CoreJobView,
  type CoreWorkerView,
  type PhaseCountsView,
} from './types.ts';
