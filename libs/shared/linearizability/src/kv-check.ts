/**
 * Linearizability of a kv history: the operations are partitioned by key (every kv operation
 * touches one key, so the history is linearizable iff each key's sub-history is: Herlihy &
 * Wing's locality, which Horn & Kroening call P-compositionality) and each partition is
 * searched with the kv model.
 */
import { createError } from '@mr/errors';
import { KV_MODEL_OPS, kvStep, kvResultMatches, formatKvResult, type KvModelOp, type KvResult, type KvState } from './kv-model.ts';
import { searchPartition, REJECT, type SearchModel, type TimedOp } from './search.ts';

export const ERR_BAD_HISTORY = createError<[string]>('LIN_ERR_BAD_HISTORY', 'bad history: %s', 400, { retryable: false });

/** One client operation as recorded. Times are in any one unit and clock, e.g. performance.now() ms. */
export interface KvOperation {
  clientId: string;
  op: KvModelOp;
  key: string;
  /** put/append: the value; incr: an optional decimal delta. */
  value?: string;
  /** When the client sent its first attempt. */
  invoke: number;
  /** When the client got its answer; ignored (may be absent) when the result is unknown. */
  response?: number;
  /**
   * The answer, or 'unknown' when the client never learned it (gave up, or the history ended
   * while it waited): it may or may not have taken effect, at any point after `invoke`.
   */
  result: KvResult | 'unknown';
}

export interface CheckOptions {
  /** Search steps allowed per key before the key is reported undecided (default 5,000,000). */
  maxStepsPerKey?: number;
  /** Stop after this many violating keys (default 5). */
  maxViolations?: number;
}

export interface KvViolation {
  key: string;
  /** The longest linearizable prefix the search found, in linearization order. */
  prefix: KvOperation[];
  /** The key's value after that prefix (null: missing). */
  state: KvState;
  /** The operation that returned before any order could place it. */
  blocking: KvOperation;
  /** The operations that could have come next, each with the answer the model would give. */
  candidates: { op: KvOperation; expected: KvResult }[];
  /** A few lines for a human. */
  explanation: string;
}

export interface KvCheckReport {
  /** 'unknown' when no key is violating but at least one ran out of budget. */
  outcome: 'linearizable' | 'violation' | 'unknown';
  keys: number;
  operations: number;
  /** Operations with an unknown outcome. */
  unknownOutcomes: number;
  steps: number;
  violations: KvViolation[];
  undecided: { key: string; operations: number; reason: string }[];
}

const kvSearchModel: SearchModel<KvState, KvOperation> = {
  init: null,
  step(state, o) {
    const s = kvStep(state, o.op, o.value);
    if (o.result !== 'unknown' && !kvResultMatches(s.result, o.result)) return REJECT;
    return s.next;
  },
  key: (s) => (s === null ? '#' : `=${s}`),
};

function validate(h: readonly KvOperation[]): void {
  h.forEach((o, i) => {
    const where = `operation ${i} (${o.clientId} ${o.op} ${o.key})`;
    if (!(KV_MODEL_OPS as readonly string[]).includes(o.op)) throw ERR_BAD_HISTORY(`${where}: unknown op "${o.op}"`);
    if (typeof o.key !== 'string') throw ERR_BAD_HISTORY(`${where}: key must be a string`);
    if (!Number.isFinite(o.invoke)) throw ERR_BAD_HISTORY(`${where}: invoke time must be a finite number`);
    if (o.result === 'unknown') return;
    if (o.response === undefined || !Number.isFinite(o.response)) throw ERR_BAD_HISTORY(`${where}: a known result needs a finite response time`);
    if (o.response < o.invoke) throw ERR_BAD_HISTORY(`${where}: response ${o.response} before invoke ${o.invoke}`);
    if (typeof o.result !== 'object' || o.result === null || !('value' in o.result || 'error' in o.result)) throw ERR_BAD_HISTORY(`${where}: result must be { value } or { error } or 'unknown'`);
    if ('value' in o.result && o.result.value !== null && typeof o.result.value !== 'string') throw ERR_BAD_HISTORY(`${where}: a result value is a string or null`);
  });
}

export function formatOp(o: KvOperation): string {
  const arg = o.value !== undefined ? ` ${JSON.stringify(o.value)}` : '';
  const span = o.result === 'unknown' ? `[${o.invoke.toFixed(1)}, ?)` : `[${o.invoke.toFixed(1)}, ${o.response!.toFixed(1)}]`;
  return `${o.clientId} ${o.op}${arg} → ${formatKvResult(o.result)} ${span}`;
}

function explain(v: Omit<KvViolation, 'explanation'>): string {
  const shown = 5;
  const lines = [`key ${JSON.stringify(v.key)} is not linearizable.`];
  lines.push(`Longest linearizable prefix: ${v.prefix.length} operations${v.prefix.length > shown ? `, the last ${shown}` : ''}:`);
  for (const o of v.prefix.slice(-shown)) lines.push(`  ${formatOp(o)}`);
  lines.push(`after which the value is ${v.state === null ? 'missing' : JSON.stringify(v.state)}.`);
  lines.push(`Then ${formatOp(v.blocking)} returned, but no operation that could come next fits:`);
  for (const c of v.candidates.slice(0, 12)) lines.push(`  ${formatOp(c.op)}   (the model answers ${formatKvResult(c.expected)})`);
  if (v.candidates.length > 12) lines.push(`  … and ${v.candidates.length - 12} more`);
  return lines.join('\n');
}

/** Checks a kv history. Throws LIN_ERR_BAD_HISTORY (400) when an operation is malformed. */
export function checkKvHistory(history: readonly KvOperation[], opts: CheckOptions = {}): KvCheckReport {
  validate(history);
  const maxSteps = opts.maxStepsPerKey ?? 5_000_000;
  const maxViolations = opts.maxViolations ?? 5;
  const byKey = new Map<string, KvOperation[]>();
  let unknownOutcomes = 0;
  for (const o of history) {
    let a = byKey.get(o.key);
    if (!a) byKey.set(o.key, (a = []));
    a.push(o);
    if (o.result === 'unknown') unknownOutcomes++;
  }
  const report: KvCheckReport = { outcome: 'linearizable', keys: byKey.size, operations: history.length, unknownOutcomes, steps: 0, violations: [], undecided: [] };
  for (const key of [...byKey.keys()].sort()) {
    // A read whose answer never arrived constrains nothing and changes nothing: leave it out.
    const ops = byKey.get(key)!.filter((o) => !(o.op === 'get' && o.result === 'unknown'));
    const timed: TimedOp<KvOperation>[] = ops.map((o) => ({ invoke: o.invoke, response: o.result === 'unknown' ? undefined : o.response, op: o }));
    const r = searchPartition(timed, kvSearchModel, maxSteps);
    report.steps += r.steps;
    if (r.outcome === 'unknown') report.undecided.push({ key, operations: ops.length, reason: r.reason });
    else if (r.outcome === 'violation') {
      const v = {
        key,
        prefix: r.prefix.map((i) => ops[i]!),
        state: r.state,
        blocking: ops[r.blocking]!,
        candidates: r.candidates.map((i) => ({ op: ops[i]!, expected: kvStep(r.state, ops[i]!.op, ops[i]!.value).result })),
      };
      report.violations.push({ ...v, explanation: explain(v) });
      if (report.violations.length >= maxViolations) break;
    }
  }
  report.outcome = report.violations.length ? 'violation' : report.undecided.length ? 'unknown' : 'linearizable';
  return report;
}
