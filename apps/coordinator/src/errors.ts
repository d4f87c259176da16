import { createError } from '@mr/errors';

export const ERR_UNKNOWN_APP = createError<[string, string]>('MR_ERR_UNKNOWN_APP', 'unknown app "%s" (known: %s)', 400);
export const ERR_BAD_OPTIONS = createError<[string, string]>('MR_ERR_BAD_OPTIONS', 'bad options for app %s: %s', 400);
export const ERR_BAD_INPUT = createError<[string]>('MR_ERR_BAD_INPUT', '%s', 400);
export const ERR_INPUT_OUTSIDE_ROOTS = createError<[string, string]>('MR_ERR_INPUT_OUTSIDE_ROOTS', 'input "%s" is not under an allowed input root (%s)', 403);
export const ERR_NO_INPUT_ROOTS = createError('MR_ERR_NO_INPUT_ROOTS', 'no input roots are configured: start the coordinator with --input-root DIR', 403);
export const ERR_BAD_OUTPUT = createError<[string]>('MR_ERR_BAD_OUTPUT', '%s', 400);
export const ERR_JOB_NOT_FOUND = createError<[string]>('MR_ERR_JOB_NOT_FOUND', 'no job %s', 404);
export const ERR_JOB_FINISHED = createError<[string, string]>('MR_ERR_JOB_FINISHED', 'job %s already %s', 409);
export const ERR_TOO_MANY_JOBS = createError<[string]>('MR_ERR_TOO_MANY_JOBS', '%s', 429);
export const ERR_TOO_MANY_WORKERS = createError<[string]>('MR_ERR_TOO_MANY_WORKERS', '%s', 429);
export const ERR_SHUTTING_DOWN = createError<[string]>('MR_ERR_SHUTTING_DOWN', '%s', 503);
export const ERR_JOB_RETIRED = createError<[string, string]>('MR_ERR_JOB_RETIRED', 'job %s finished and was retired (the coordinator keeps the last %s finished jobs)', 410);
export const ERR_IDEMPOTENCY_CONFLICT = createError<[string]>('MR_ERR_IDEMPOTENCY_CONFLICT', '%s', 422);
export const ERR_BAD_IDEMPOTENCY_KEY = createError<[string]>('MR_ERR_BAD_IDEMPOTENCY_KEY', '%s', 400);
export const ERR_JOB_TOO_BIG = createError<[string]>('MR_ERR_JOB_TOO_BIG', '%s', 400);
export const ERR_OUTPUT_IN_USE = createError<[string]>('MR_ERR_OUTPUT_IN_USE', '%s', 409);
export const ERR_OUTPUT_NOT_ALLOWED = createError<[string]>('MR_ERR_OUTPUT_NOT_ALLOWED', '%s', 403);
export const ERR_WORKER_UNKNOWN = createError<[string]>('MR_ERR_WORKER_UNKNOWN', '%s', 404);
export const ERR_WORKER_SECRET = createError<[string]>('MR_ERR_WORKER_SECRET', '%s', 403);
export const ERR_BAD_COMPLETION = createError<[string]>('MR_ERR_BAD_COMPLETION', '%s', 400);
export const ERR_OUTPUT_NOT_EMPTY = createError<[string, number]>('MR_ERR_OUTPUT_NOT_EMPTY', 'output "%s" already holds %d entries: give a new or empty directory (a job never overwrites files it did not write)', 409);
export const ERR_BAD_CURSOR = createError<[string]>('MR_ERR_BAD_CURSOR', '%s', 400);
/** A worker's fetch-failure report names no served map of a reduce of its job. */
export const ERR_BAD_REPORT = createError<[string]>('MR_ERR_BAD_REPORT', '%s', 400);
export const ERR_JOURNAL_FULL = createError<[string]>('MR_ERR_JOURNAL_FULL', '%s', 507);
export const ERR_ARBITER_UNAVAILABLE = createError<[string, string]>('MR_ERR_ARBITER_UNAVAILABLE', 'arbiter %s: %s', 503, { retryable: true });
/** This coordinator does not serve: it is a standby, or it was deposed; `active` names the live one when known. */
export const ERR_NOT_ACTIVE = createError<[string]>('MR_ERR_NOT_ACTIVE', '%s', 503);
export const ERR_STANDBY_REFUSED = createError<[string]>('MR_ERR_STANDBY_REFUSED', '%s', 409);
export const ERR_BAD_ACK = createError<[string]>('MR_ERR_BAD_ACK', '%s', 409);
