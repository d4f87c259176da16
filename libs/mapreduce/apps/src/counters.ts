/**
 * User counters (the paper's §4.9 counters): map and reduce code call
 * `ctx.count(name, n)`; the task reports them beside the built-in counters
 * as `user.<name>`. The coordinator adds a task's counters to its job once,
 * from the attempt it commits (a failed, lost or losing attempt's counts are
 * dropped with it), so a count is exact however many attempts ran.
 *
 * Bounds (they keep the job's counters, the journal and the metrics small):
 * a name is 1-64 characters [A-Za-z0-9_.-] starting with a letter; a task
 * may use at most MAX_USER_COUNTERS names; an increment is a safe integer.
 * Breaking one is a bug in the app: the task fails, not retryably.
 */
import { ERR_BAD_COUNTER } from './errors.ts';

/** Distinct user counter names one task may use. */
export const MAX_USER_COUNTERS = 32;
/** A user counter's name: 1-64 characters, letters, digits, _ . - (a letter first). */
export const COUNTER_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** User counters appear in a task's (and job's) counters under this prefix. */
export const USER_PREFIX = 'user.';

/** Collects a task's user counters; `count` is what TaskContext.count calls. */
export class UserCounters {
  readonly #values = new Map<string, number>();

  readonly count = (name: string, n = 1): void => {
    if (typeof name !== 'string' || !COUNTER_NAME.test(name)) throw ERR_BAD_COUNTER(String(name).slice(0, 80), 'a name is 1-64 letters, digits, _ . - starting with a letter');
    if (!Number.isSafeInteger(n)) throw ERR_BAD_COUNTER(name, `the increment must be a safe integer, got ${String(n)}`);
    const v = this.#values.get(name);
    if (v === undefined && this.#values.size >= MAX_USER_COUNTERS) throw ERR_BAD_COUNTER(name, `a task may use at most ${MAX_USER_COUNTERS} counter names`);
    const sum = (v ?? 0) + n;
    if (!Number.isSafeInteger(sum)) throw ERR_BAD_COUNTER(name, 'the count left the safe integer range');
    this.#values.set(name, sum);
  };

  /** Adds the counts to `into` as user.<name>. */
  addTo(into: Record<string, number>): void {
    for (const [k, v] of this.#values) into[`${USER_PREFIX}${k}`] = v;
  }
}
