import { createError } from '@mr/errors';

/** Test-and-set from a node id that is not registered for the VM (`mr vm storage --vm vm1=a,b`). */
export const ERR_NODE_NOT_REGISTERED = createError<[string, string]>(
  'FT_ERR_NODE_NOT_REGISTERED',
  'node "%s" is not registered for VM "%s" at this storage node',
  403,
  { retryable: false },
);
/** A claim that skips epochs (epochs advance one at a time: see decideTas). */
export const ERR_EPOCH_GAP = createError<[number, number]>(
  'FT_ERR_EPOCH_GAP',
  'epoch %s is not the next epoch: the current epoch is %s, and a claim may only name the next one',
  409,
  { retryable: false },
);
/** An epoch outside 1..MAX_EPOCH. */
export const ERR_BAD_EPOCH = createError<[number, number]>('FT_ERR_BAD_EPOCH', 'epoch %s is outside 1..%s', 400, { retryable: false });
/** A storage node without configured VMs (dev mode) holds at most this many. */
export const ERR_TOO_MANY_VMS = createError<[string, number]>(
  'FT_ERR_TOO_MANY_VMS',
  'cannot take VM "%s": this storage node already holds its limit of %s VMs (configure the VMs with --vm)',
  409,
  { retryable: false },
);
/** The storage node could not be reached or answered with something that is not its contract. */
export const ERR_STORAGE_UNAVAILABLE = createError<[string]>('FT_ERR_STORAGE_UNAVAILABLE', 'storage node unavailable: %s', 503, { retryable: true });
/** A flag file on the storage node's disk that does not parse (a damaged data directory). */
export const ERR_BAD_FLAG_FILE = createError<[string, string]>('FT_ERR_BAD_FLAG_FILE', 'flag file of VM "%s" is damaged: %s', 500, { retryable: false });
