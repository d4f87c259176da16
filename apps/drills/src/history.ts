/**
 * The VM drills' client history: one record per operation, in the shape of
 * @mr/linearizability's KvOperation (client, op, key, value, invoke/response
 * times in ms from the drill's start, the answer or 'unknown'), checked with
 * the project's checker.
 */
import { checkKvHistory, type KvOperation } from '@mr/linearizability';
import type { CheckResult } from '@mr/chaos';

export type HistoryOp = KvOperation & { op: 'get' | 'put' | 'incr' | 'append' };

/** Search steps allowed per key; past it the check says "undecided", which does not pass. */
const MAX_STEPS_PER_KEY = 2_000_000;

export function checkHistory(history: readonly HistoryOp[]): CheckResult {
  const r = checkKvHistory(history, { maxStepsPerKey: MAX_STEPS_PER_KEY, maxViolations: 1 });
  const what = `${r.operations} operations on ${r.keys} keys (${r.unknownOutcomes} with unknown outcome), ${r.steps} search steps`;
  if (r.outcome === 'linearizable') return { ok: true, detail: `linearizable: ${what}` };
  if (r.outcome === 'violation') return { ok: false, detail: `NOT linearizable (${what}): ${r.violations[0]!.explanation}` };
  return { ok: false, detail: `undecided within ${MAX_STEPS_PER_KEY} steps per key (${what}): ${r.undecided.map((u) => `${u.key}: ${u.reason}`).join('; ')}` };
}
