import { createError } from '@mr/errors';

/** Bad worker configuration (caught in the constructors, before any request). */
export const ERR_WORKER_CONFIG = createError<[string]>('MR_ERR_WORKER_CONFIG', 'invalid worker option: %s', 400, { retryable: false });
/** The coordinator could not be reached (connection refused, reset, timed out) or answered 5xx. */
export const ERR_COORDINATOR_UNAVAILABLE = createError<[string, string]>('MR_ERR_COORDINATOR_UNAVAILABLE', 'coordinator %s unavailable: %s', 503, { retryable: true });
/** The coordinator refused the token. */
export const ERR_COORDINATOR_UNAUTHORIZED = createError<[string, string]>('MR_ERR_COORDINATOR_UNAUTHORIZED', 'coordinator %s refused the token: %s', 401, { retryable: false });
/** The coordinator answered 4xx (other than 401/404 worker-unknown). */
export const ERR_COORDINATOR_REJECTED = createError<[string, number, string]>('MR_ERR_COORDINATOR_REJECTED', 'coordinator %s rejected the request (%s): %s', 400, { retryable: false });
/** The coordinator does not know this worker id (it restarted or expired us): register again. */
export const ERR_WORKER_UNKNOWN = createError<[string]>('MR_ERR_WORKER_UNKNOWN', 'coordinator does not know worker %s', 404, { retryable: true });
/** The job names an app this worker does not have. */
export const ERR_UNKNOWN_APP = createError<[string]>('MR_ERR_UNKNOWN_APP', 'unknown app "%s"', 400, { retryable: false });
/** The coordinator said to stop the task (job cancelled, task done elsewhere): its thread was terminated. */
export const ERR_TASK_CANCELLED = createError('MR_ERR_TASK_CANCELLED', 'task stopped: the coordinator cancelled it', 409, { retryable: false });
/** The task's thread died (an exception outside the task, the heap limit, process.exit in app code). */
export const ERR_TASK_THREAD = createError<[string]>('MR_ERR_TASK_THREAD', 'task thread failed: %s', 500, { retryable: true });
/** A reduce stopped fetching its input: the coordinator said the attempt is not current, or the worker is stopping. */
export const ERR_FETCH_ABANDONED = createError<[string]>('MR_ERR_FETCH_ABANDONED', '%s: the reduce attempt is not current any more; fetch stopped', 409, { retryable: true });
/** A served map cannot start: the worker's intermediate store is full (another worker runs it). */
export const ERR_SHUFFLE_FULL = createError<[number, number]>('MR_ERR_SHUFFLE_FULL', 'intermediate store full (%d of %d bytes): the map goes to another worker', 507, { retryable: true });
/** A served map was handed to a worker that keeps no intermediates (no shuffle server). */
export const ERR_NO_SHUFFLE_SERVER = createError('MR_ERR_NO_SHUFFLE_SERVER', 'this worker serves no intermediates (start it with a shuffle server): the map goes to another worker', 503, { retryable: true });
