import { createError } from '@mr/errors';

export const ERR_OTLP_BAD_PAYLOAD = createError<[string]>('DASH_ERR_OTLP_BAD_PAYLOAD', 'bad OTLP payload: %s', 400);
export const ERR_OTLP_MEDIA_TYPE = createError<[string]>('DASH_ERR_OTLP_MEDIA_TYPE', 'unsupported OTLP content type "%s" (application/x-protobuf or application/json)', 415);
export const ERR_TRACE_NOT_FOUND = createError<[string]>('DASH_ERR_TRACE_NOT_FOUND', 'no trace %s (never received, or dropped: the store keeps the newest traces only)', 404);
export const ERR_UPSTREAM = createError<[string, string]>('DASH_ERR_UPSTREAM', '%s did not answer: %s', 502);
export const ERR_NOT_CONFIGURED = createError<[string]>('DASH_ERR_NOT_CONFIGURED', 'the dashboard was started without %s', 404);
export const ERR_UNAUTHORIZED = createError('DASH_ERR_UNAUTHORIZED', 'sign in with the client token (MR_TOKEN) first', 401);
export const ERR_FORBIDDEN_ORIGIN = createError<[string]>('DASH_ERR_FORBIDDEN_ORIGIN', 'refused: %s', 403);
