/**
 * Recording kv histories from real clients, for the linearizability checker: every operation
 * with the time its client sent it, the time the answer arrived (performance.now(), ms) and the
 * answer, or "unknown" when the client never learned it.
 */
import { ERR_VM_UNAVAILABLE, type VmAnswer } from '@mr/vmft-client';
import type { KvOperation, KvModelOp, KvResult } from '@mr/linearizability';
import type { Rng } from '@mr/sim';

/** What a request's failure tells about its effect. */
export type FailureMeaning = KvResult | 'unknown' | 'not-applied';

/**
 * A failed request, read by its code (and the client's `outcome` when it says one):
 * - a guest refusal (too large, not a number) is the guest's answer, given once, no effect;
 * - "not applied" (the client knows the guest never applied it) leaves no trace in the history;
 * - anything else (no node answered before the deadline, …) may or may not have taken effect.
 */
export function failureMeaning(err: unknown): FailureMeaning {
  const e = err as { code?: string; outcome?: string; message?: string };
  if (e.code !== ERR_VM_UNAVAILABLE.code && /FT_ERR_GUEST_REFUSED|guest refused the request/.test(e.message ?? '')) return { error: 'refused' };
  if (e.outcome === 'not-applied') return 'not-applied';
  return 'unknown';
}

export function answerResult(a: VmAnswer): KvResult {
  return { value: a.value === null ? null : String(a.value) };
}

/** How an answered operation was answered (for reading a violating history). */
export interface AnswerInfo {
  node: string;
  attempts: number;
  /** The request's identity as the client sent it (request id, or session/seq). */
  id: string;
}

export class HistoryRecorder {
  readonly ops: KvOperation[] = [];
  readonly info = new Map<KvOperation, AnswerInfo>();
  /** Failures by kind, for the round's report. */
  readonly failures = new Map<string, number>();
  /** The first message of each failure code. */
  readonly failureSamples = new Map<string, string>();

  /** Runs one request and records it. Never throws: a failure is recorded as what it means. */
  async record(clientId: string, op: KvModelOp, key: string, value: string | undefined, send: () => Promise<VmAnswer>): Promise<void> {
    const invoke = performance.now();
    const o: KvOperation = { clientId, op, key, ...(value !== undefined ? { value } : {}), invoke, result: 'unknown' };
    try {
      const a = await send();
      o.response = performance.now();
      o.result = answerResult(a);
      const x = a as VmAnswer & { requestId?: string; session?: number; seq?: number };
      this.info.set(o, { node: a.node, attempts: a.attempts, id: x.requestId ?? `${x.session}/${x.seq}` });
    } catch (err) {
      const m = failureMeaning(err);
      const code = (err as { code?: string }).code ?? 'no code';
      this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
      if (!this.failureSamples.has(code)) this.failureSamples.set(code, (err as Error).message);
      if (m === 'not-applied') return;
      if (m !== 'unknown') {
        o.response = performance.now();
        o.result = m;
      }
    }
    this.ops.push(o);
  }

  /** The history with how each answer came, as JSON lines (for a violating round's dump). */
  dump(): string {
    return this.ops.map((o) => JSON.stringify({ ...o, ...this.info.get(o) })).join('\n') + '\n';
  }
}

export const STRING_KEYS = ['s0', 's1', 's2'] as const;
export const COUNTER_KEYS = ['n0', 'n1'] as const;
export const ALL_KEYS = [...STRING_KEYS, ...COUNTER_KEYS];

/** The next operation of a workload client: appends of unique tokens, puts and reads on string keys; incr and reads on counters. */
export function nextOp(rng: Rng, client: number, n: number): { op: KvModelOp; key: string; value?: string } {
  const key = ALL_KEYS[rng.int(ALL_KEYS.length)]!;
  const x = rng.next();
  if (key.startsWith('s')) {
    if (x < 0.3) return { op: 'get', key };
    if (x < 0.45) return { op: 'put', key, value: `p${client}.${n}` };
    return { op: 'append', key, value: `<${client}.${n}>` };
  }
  if (x < 0.3) return { op: 'get', key };
  if (x < 0.33) return { op: 'put', key, value: String(rng.int(100)) };
  return { op: 'incr', key };
}
