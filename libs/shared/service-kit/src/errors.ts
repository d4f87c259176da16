import { createError } from '@mr/errors';

export const ERR_UNAUTHORIZED = createError<[string]>('MR_ERR_UNAUTHORIZED', 'missing or wrong bearer token: this route needs %s', 401);
/** A route was registered for a role whose token is not configured while the client token is. */
export const ERR_AUTH_CONFIG = createError<[string, string]>('MR_ERR_AUTH_CONFIG', 'route %s needs the %s credential, but only the client token is configured', 500);
export const ERR_NOT_FOUND = createError<[string, string]>('MR_ERR_ROUTE_NOT_FOUND', 'no route %s %s', 404);
