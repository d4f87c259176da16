import { createError } from '@mr/errors';

/** A frame on the log channel is malformed (bad type, bad kind, bad length, trailing bytes). */
export const FT_ERR_BAD_FRAME = createError<[string]>('FT_ERR_BAD_FRAME', 'malformed log frame: %s', 400, { retryable: false });
/** A frame's length prefix exceeds the decoder's maxFrameBytes. */
export const FT_ERR_FRAME_TOO_LARGE = createError<[number, number]>(
  'FT_ERR_FRAME_TOO_LARGE',
  'log frame of %s bytes exceeds the limit of %s bytes',
  413,
  { retryable: false },
);
/** The stream ended inside a frame. */
export const FT_ERR_TRUNCATED = createError<[number]>('FT_ERR_TRUNCATED', 'log stream ended inside a frame (%s bytes pending)', 400, {
  retryable: false,
});
/** A frame that cannot be encoded (a field out of range). */
export const FT_ERR_BAD_VALUE = createError<[string]>('FT_ERR_BAD_VALUE', 'cannot encode log frame: %s', 500, { retryable: false });
