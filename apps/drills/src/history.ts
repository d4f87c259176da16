/**
 * The VM drills' client history: one record per operation, in the shape of
 * the project's linearizability checker (@mr/linearizability's KvOperation:
 * client, op, key, value, invoke/response times in ms from the drill's
 * start, result or 'unknown').
 */
import type { CheckResult } from '@mr/chaos';

export interface HistoryOp {
  clientId: string;
  op: 'get' | 'put' | 'incr' | 'append';
  key: string;
  value?: string;
  invoke: number;
  response?: number;
  result: { value: string | null } | { error: 'refused' } | 'unknown';
}

/**
 * Whether the history is linearizable, or undefined while no checker is
 * available in this build (the report still carries the history).
 */
export function checkHistory(_history: readonly HistoryOp[]): CheckResult | undefined {
  return undefined;
}
