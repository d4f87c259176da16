import { createError, type CodedError } from '@mr/errors';

/** No node answered within the deadline (all down, or none live). */
export const ERR_VM_UNAVAILABLE = createError<[string, string]>('FT_ERR_VM_UNAVAILABLE', 'no live node for VM %s answered: %s', 503, { retryable: true });
/** A node refused the request (4xx): retrying the same request cannot help. */
export const ERR_VM_REJECTED = createError<[number, string]>('FT_ERR_VM_REJECTED', 'the VM node rejected the request (%s): %s', 400, { retryable: false });
/**
 * The client's session expired (or was closed) while a request was in flight
 * under it. The request is never applied again; whether an earlier attempt was
 * applied (once) is in `outcome`. The client's next request opens a new session.
 */
export const ERR_SESSION_EXPIRED = createError<[number, number, string]>(
  'FT_ERR_SESSION_EXPIRED',
  'session %s expired while seq %s was in flight: the request %s; it will not be applied again',
  410,
  { retryable: false },
);
/** Bad client options. */
export const ERR_CLIENT_CONFIG = createError<[string]>('FT_ERR_CLIENT_CONFIG', 'invalid VM client option: %s', 400, { retryable: false });

/**
 * What a failed request did to the VM: 'not-applied' (certainly nothing) or
 * 'unknown' (it may have been applied, at most once). For histories: an
 * 'unknown' operation may take effect at any point after it was invoked.
 */
export type Outcome = 'not-applied' | 'unknown';

export interface VmRequestError extends CodedError {
  outcome: Outcome;
  session?: number;
  seq?: number;
}

export function withOutcome(err: CodedError, outcome: Outcome, at?: { session: number; seq: number }): VmRequestError {
  return Object.assign(err, { outcome }, at ? { session: at.session, seq: at.seq } : {});
}
