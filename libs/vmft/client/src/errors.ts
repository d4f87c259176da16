import { createError } from '@mr/errors';

/** No node answered within the deadline (all down, or none live). */
export const ERR_VM_UNAVAILABLE = createError<[string, string]>('FT_ERR_VM_UNAVAILABLE', 'no live node for VM %s answered: %s', 503, { retryable: true });
/** A node refused the request as invalid (4xx): retrying cannot help. */
export const ERR_VM_REJECTED = createError<[number, string]>('FT_ERR_VM_REJECTED', 'the VM node rejected the request (%s): %s', 400, { retryable: false });
/** Bad client options. */
export const ERR_CLIENT_CONFIG = createError<[string]>('FT_ERR_CLIENT_CONFIG', 'invalid VM client option: %s', 400, { retryable: false });
