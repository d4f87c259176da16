import { createError, type CodedError } from '@mr/errors';

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
/** This node is not the live primary (a backup, a joiner, or a primary not live yet / maybe deposed). */
export const ERR_NOT_PRIMARY = createError<[string]>('FT_ERR_NOT_PRIMARY', '%s', 503, { retryable: true });
/** This node stopped serving (lost test-and-set, fenced, diverged, or a broken invariant): ask the live node. */
export const ERR_STOPPED = createError<[string]>('FT_ERR_STOPPED', '%s', 503, { retryable: true });
/** The live primary is busy (log window, held outputs or inbox full): retry. */
export const ERR_BACKPRESSURE = createError<[string]>('FT_ERR_BACKPRESSURE', '%s', 503, { retryable: true });
/** A log stream from a node that does not hold the epoch its hello claims (checked with the storage node). */
export const ERR_NOT_HOLDER = createError<[string, number, number, string]>(
  'FT_ERR_NOT_HOLDER',
  'node %s does not hold epoch %s at storage (storage: epoch %s held by "%s"): log stream refused',
  409,
  { retryable: false },
);
/** A second log stream while the live primary's stream is up, not from a newer epoch. */
export const ERR_STREAM_BUSY = createError<[number, string]>(
  'FT_ERR_STREAM_BUSY',
  'a log stream of epoch %s from %s is live: a second stream may only supersede it with a newer epoch',
  409,
  { retryable: true },
);
/** A join toward, or a hint to, a URL that is not among this node's configured peers. */
export const ERR_PEER_NOT_ALLOWED = createError<[string]>('FT_ERR_PEER_NOT_ALLOWED', '%s is not a configured peer of this node (--peers)', 403, { retryable: false });
/** The storage node could not be asked (the check a log stream needs). */
export const ERR_CHECK_UNAVAILABLE = createError<[string]>('FT_ERR_CHECK_UNAVAILABLE', 'cannot check the log stream with the storage node: %s', 503, { retryable: true });
/** A malformed log stream (bad frame, bad header). */
export const ERR_BAD_LOG = createError<[string]>('FT_ERR_BAD_LOG', 'malformed log stream: %s', 400, { retryable: false });
/** Invalid node / storage configuration. */
export const ERR_CONFIG = createError<[string]>('FT_ERR_CONFIG', 'invalid vm-node option: %s', 400, { retryable: false });

const NOT_LIVE = { 'not-primary': ERR_NOT_PRIMARY, stopped: ERR_STOPPED, backpressure: ERR_BACKPRESSURE } as const;

/** Why a node does not serve clients now, and who does (if known). */
export interface NotLive {
  kind: keyof typeof NOT_LIVE;
  reason: string;
  role: string;
  /** Base URL of the node believed live. */
  live?: string | undefined;
}

export type NotLiveError = CodedError & { live?: string | undefined; role: string; reason: string };

/** The 503 error for `n`, carrying the live node's URL, this node's role and why it does not serve. */
export function notLiveError(n: NotLive): NotLiveError {
  const err = NOT_LIVE[n.kind](n.live ? `${n.reason}; the live node is ${n.live}` : n.reason) as NotLiveError;
  err.live = n.live;
  err.role = n.role;
  err.reason = n.reason;
  return err;
}

/** True for the errors notLiveError makes (matched by code). */
export function isNotLiveError(err: unknown): err is NotLiveError {
  const code = (err as { code?: unknown } | null)?.code;
  return Object.values(NOT_LIVE).some((f) => f.code === code) && typeof (err as { role?: unknown }).role === 'string';
}

/** The body both client-facing routes send for a NotLiveError (NotLiveReply). */
export function notLiveReply(err: NotLiveError): { statusCode: 503; code: string; error: string; message: string; live?: string; role: string; reason: string } {
  return {
    statusCode: 503,
    code: err.code,
    error: 'Service Unavailable',
    message: err.message,
    ...(err.live ? { live: err.live } : {}),
    role: err.role,
    reason: err.reason,
  };
}
