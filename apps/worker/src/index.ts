export { Worker, stderrLog, type WorkerOptions, type WorkerExit, type Executors, type LogFn, type LogLevel } from './worker.ts';
export { ThreadRunner, InlineRunner, type TaskRunner, type TaskRequest, type TaskResult, type ThreadRunnerOptions } from './task-runner.ts';
export { CoordinatorClient, type CoordinatorClientOptions } from './client.ts';
export {
  ERR_WORKER_CONFIG,
  ERR_COORDINATOR_UNAVAILABLE,
  ERR_COORDINATOR_UNAUTHORIZED,
  ERR_COORDINATOR_REJECTED,
  ERR_WORKER_UNKNOWN,
  ERR_UNKNOWN_APP,
  ERR_TASK_CANCELLED,
  ERR_TASK_THREAD,
} from './errors.ts';
