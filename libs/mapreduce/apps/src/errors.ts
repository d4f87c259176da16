import { createError } from '@mr/errors';

export const ERR_INPUT_NOT_FOUND = createError<[string]>('MR_INPUT_NOT_FOUND', 'input file not found: %s', 400, { retryable: false });
export const ERR_INPUT_UNREADABLE = createError<[string, string]>('MR_INPUT_UNREADABLE', 'cannot read input %s: %s', 400, { retryable: false });
export const ERR_BAD_OPTIONS = createError<[string]>('MR_BAD_OPTIONS', '%s', 400, { retryable: false });
export const ERR_BAD_PARTITION = createError<[string, string, string]>('MR_BAD_PARTITION', 'app %s put key %s in partition %s, outside 0..reduces-1', 500, { retryable: false });
export const ERR_BAD_INTERMEDIATE = createError<[string, string]>('MR_BAD_INTERMEDIATE', 'corrupt intermediate file %s: %s', 500, { retryable: true });
export const ERR_UNKNOWN_APP = createError<[string, string]>('MR_UNKNOWN_APP', 'unknown app "%s" (known: %s)', 400, { retryable: false });
export const ERR_BAD_PLUGIN = createError<[string, string]>('MR_BAD_PLUGIN', 'plugin %s: %s', 500, { retryable: false });
/** The input's path now leads elsewhere than when the job was accepted (the other path is not shown: it may lie outside every input root). */
export const ERR_INPUT_ESCAPED = createError<[string]>('MR_INPUT_ESCAPED', 'input %s no longer opens the file accepted with the job (a symlink or directory on its path changed): refusing to read it', 400, { retryable: false });
/** App code called ctx.count with a bad name or increment, or too many names: a bug in the app. */
export const ERR_BAD_COUNTER = createError<[string, string]>('MR_BAD_COUNTER', 'counter "%s": %s', 500, { retryable: false });
/** The app's map or reduce threw on a record (the error carries it as `record`): the task may run again, skipping it (jobs that skip bad records). */
export const ERR_RECORD_FAILED = createError<[string, string, string]>('MR_RECORD_FAILED', '%s failed on %s: %s', 500, { retryable: true });
