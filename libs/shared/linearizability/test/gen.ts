/**
 * History generators for the checker's tests: a real sequential execution of the kv model with
 * random overlapping intervals around each operation's linearization point.
 */
import { kvStep, type KvModelOp, type KvState } from '../src/kv-model.ts';
import type { KvOperation } from '../src/kv-check.ts';

/** A seeded generator (mulberry32), so a failing case can be replayed from its seed. */
export function rng(seed: number): { next(): number; int(n: number): number; pick<T>(a: readonly T[]): T } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)]! };
}

export interface GenOptions {
  seed: number;
  clients: number;
  opsPerClient: number;
  keys: string[];
  /** Probability that an operation's outcome is lost to its client (default 0). */
  unknownRate?: number;
  /** Mix of operations (default all four). */
  ops?: readonly KvModelOp[];
}

/** An op before its times and result are known; `point` is its linearization time. */
interface Planned {
  o: KvOperation;
  point: number;
  /** An unknown-outcome operation that never takes effect. */
  dropped: boolean;
}

/**
 * Clients each issue operations one after another with random think times and durations;
 * every operation takes effect at a random point inside its interval (an unknown-outcome one
 * at a random point after its call, or never), and the results come from running the model
 * in the order of those points. The history is linearizable by construction.
 */
export function linearizableHistory(g: GenOptions): KvOperation[] {
  const r = rng(g.seed);
  const mix = g.ops ?? (['get', 'put', 'append', 'incr'] as const);
  const planned: Planned[] = [];
  let token = 0;
  for (let c = 0; c < g.clients; c++) {
    let t = r.next() * 10;
    for (let i = 0; i < g.opsPerClient; i++) {
      const op = r.pick(mix);
      const key = r.pick(g.keys);
      const value = op === 'put' ? (r.next() < 0.3 ? String(r.int(5)) : `p${++token}`) : op === 'append' ? `<${++token}>` : op === 'incr' && r.next() < 0.2 ? String(r.int(7) - 3) : undefined;
      const invoke = t;
      const duration = r.next() < 0.1 ? r.next() * 40 : r.next() * 4;
      const response = invoke + duration;
      const unknown = r.next() < (g.unknownRate ?? 0);
      const o: KvOperation = { clientId: `c${c}`, op, key, ...(value !== undefined ? { value } : {}), invoke, result: 'unknown' };
      if (unknown) {
        planned.push({ o, point: invoke + r.next() * 60, dropped: r.next() < 0.5 });
      } else {
        o.response = response;
        planned.push({ o, point: invoke + r.next() * duration, dropped: false });
      }
      t = response + r.next() * 3;
    }
  }
  const state = new Map<string, KvState>();
  for (const p of [...planned].sort((a, b) => a.point - b.point)) {
    if (p.dropped) continue;
    const s = kvStep(state.get(p.o.key) ?? null, p.o.op, p.o.value);
    state.set(p.o.key, s.next);
    if (p.o.response !== undefined) p.o.result = s.result;
  }
  return planned.map((p) => p.o);
}
