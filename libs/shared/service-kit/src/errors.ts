import { createError } from '@mr/errors';

export const ERR_UNAUTHORIZED = createError('MR_ERR_UNAUTHORIZED', 'missing or wrong bearer token', 401);
export const ERR_NOT_FOUND = createError<[string, string]>('MR_ERR_ROUTE_NOT_FOUND', 'no route %s %s', 404);
