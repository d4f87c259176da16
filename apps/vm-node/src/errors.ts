import { createError } from '@mr/errors';

/** The VM id in the path is not one this node runs (or storage has never seen). */
export const ERR_UNKNOWN_VM = createError<[string]>('FT_ERR_UNKNOWN_VM', 'unknown VM "%s"', 404, { retryable: false });
/** A disk write or test-and-set carried an epoch older than the VM's current one (fencing). */
export const ERR_STALE_EPOCH = createError<[number, number, string]>(
  'FT_ERR_STALE_EPOCH',
  'epoch %s is older than the current epoch %s (owned by %s): this node lost the race and may not act as primary',
  409,
  { retryable: false },
);
/** A disk write came from a node that does not own the current epoch. */
export const ERR_NOT_OWNER = createError<[string, number, string]>(
  'FT_ERR_NOT_OWNER',
  'node %s does not own epoch %s (owner: %s)',
  409,
  { retryable: false },
);
/** Disk address or payload outside the disk geometry. */
export const ERR_BAD_BLOCK = createError<[string]>('FT_ERR_BAD_BLOCK', '%s', 400, { retryable: false });
/** This node is not the live primary; the message says which one is (and why this one is not). */
export const ERR_NOT_PRIMARY = createError<[string]>('FT_ERR_NOT_PRIMARY', '%s', 503, { retryable: true });
/** A malformed log stream (bad frame, bad header). */
export const ERR_BAD_LOG = createError<[string]>('FT_ERR_BAD_LOG', 'malformed log stream: %s', 400, { retryable: false });
/** Invalid node / storage configuration. */
export const ERR_CONFIG = createError<[string]>('FT_ERR_CONFIG', 'invalid vm-node option: %s', 400, { retryable: false });
