/**
 * Coded errors, in the manner of Fastify's FST_ERR_* and undici's UND_ERR_*.
 * Match them by `code`, never by class identity: two copies of this module
 * (or an error that crossed a process boundary as JSON) still match.
 */

export interface CodedError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly retryable: boolean;
}

export interface CodedErrorFactory<A extends unknown[]> {
  (...args: A): CodedError;
  readonly code: string;
  readonly statusCode: number;
}

const MARK = Symbol.for('mr.coded-error');

/**
 * Makes a factory for one error code. The message is a printf-like template
 * whose `%s` are filled from the factory's arguments in order.
 */
export function createError<A extends unknown[] = unknown[]>(
  code: string,
  message: string,
  statusCode = 500,
  opts: { retryable?: boolean } = {},
): CodedErrorFactory<A> {
  const factory = (...args: A): CodedError => {
    let i = 0;
    const text = message.replace(/%s/g, () => String(args[i++]));
    const err = new Error(text) as Error & { code: string; statusCode: number; retryable: boolean; [MARK]: true };
    err.name = 'CodedError';
    err.code = code;
    err.statusCode = statusCode;
    err.retryable = opts.retryable ?? statusCode >= 500;
    err[MARK] = true;
    return err;
  };
  return Object.assign(factory, { code, statusCode });
}

/** True when `err` carries a string `code` (ours, Node's or undici's). */
export function hasCode(err: unknown, code?: string): err is { code: string; message: string } {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && (code === undefined || c === code);
}

/** True for errors made by a `createError` factory. */
export function isCodedError(err: unknown): err is CodedError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[MARK] === true;
}
