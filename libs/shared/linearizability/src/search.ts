/**
 * The linearizability search for one partition (the operations of one key), model-agnostic.
 *
 * Wing & Gong's algorithm with Lowe's memoisation: the history becomes a doubly linked list of
 * call and return events in time order. Walking it from the front, a call may be linearized
 * now when the model accepts its operation in the current state; the operation is then lifted
 * out of the list (its call and its return) and the walk restarts from the front. Reaching a
 * return means its operation should have been linearized already: undo the last choice and try
 * the next call after it. A configuration (set of linearized operations, model state) that was
 * tried before is not tried again. Operations whose outcome is unknown have no return event:
 * they may be linearized at any point after their call, or never.
 *
 * The memo keys a configuration by a 64-bit Zobrist hash of the linearized set (mixed with its
 * size) and the model state, not by a copy of the set (a copy per configuration costs n/8 bytes and
 * dominates the memory on long histories). A collision can only prune a branch that was never
 * tried, so it can turn a linearizable verdict into a reported violation (probability about
 * c² / 2⁶⁵ for c memo entries), never a violation into a linearizable verdict.
 */

/** One operation as the search sees it: the times of its call and return, and the model's view. */
export interface TimedOp<Op> {
  invoke: number;
  /** undefined: the caller never learned the outcome (no return event; may take effect or not). */
  response: number | undefined;
  op: Op;
}

/** Rejected: the operation cannot be linearized in this state (its result is not the model's). */
export const REJECT: unique symbol = Symbol('reject');

export interface SearchModel<S, Op> {
  init: S;
  /** The state after `op` is linearized in `state`, or REJECT. */
  step(state: S, op: Op): S | typeof REJECT;
  /** Equal states have equal keys (for the memo). */
  key(state: S): string;
}

export type PartitionOutcome<S> =
  | { outcome: 'linearizable'; steps: number; order: number[] }
  | { outcome: 'unknown'; steps: number; reason: string }
  | {
      outcome: 'violation';
      steps: number;
      /** The longest linearizable prefix the search found (indices into the input, in order). */
      prefix: number[];
      /** The model's state after that prefix. */
      state: S;
      /** The operation whose return came before it could be placed (the earliest return left). */
      blocking: number;
      /** Operations that were not in the prefix and had been called before `blocking` returned. */
      candidates: number[];
    };

/** A small deterministic generator (splitmix32) for the Zobrist keys. */
function zobrist(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    out[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return out;
}

/** A set of (lo, hi, state id) triples: open addressing over typed arrays, no allocation per probe. */
class TripleSet {
  #lo = new Uint32Array(1 << 12);
  #hi = new Uint32Array(1 << 12);
  #sid = new Int32Array(1 << 12).fill(-1);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #slot(lo: number, hi: number, sid: number): number {
    const mask = this.#sid.length - 1;
    let j = (lo ^ Math.imul(sid, 0x9e3779b1)) & mask;
    for (;;) {
      const t = this.#sid[j]!;
      if (t === -1 || (t === sid && this.#lo[j] === lo && this.#hi[j] === hi)) return j;
      j = (j + 1) & mask;
    }
  }

  has(lo: number, hi: number, sid: number): boolean {
    return this.#sid[this.#slot(lo, hi, sid)] !== -1;
  }

  add(lo: number, hi: number, sid: number): void {
    const j = this.#slot(lo, hi, sid);
    if (this.#sid[j] !== -1) return;
    this.#lo[j] = lo;
    this.#hi[j] = hi;
    this.#sid[j] = sid;
    if (++this.#size * 2 > this.#sid.length) this.#grow();
  }

  #grow(): void {
    const lo = this.#lo, hi = this.#hi, sid = this.#sid;
    this.#lo = new Uint32Array(lo.length * 2);
    this.#hi = new Uint32Array(lo.length * 2);
    this.#sid = new Int32Array(lo.length * 2).fill(-1);
    for (let j = 0; j < sid.length; j++) {
      if (sid[j] === -1) continue;
      const k = this.#slot(lo[j]!, hi[j]!, sid[j]!);
      this.#lo[k] = lo[j]!;
      this.#hi[k] = hi[j]!;
      this.#sid[k] = sid[j]!;
    }
  }
}

/**
 * Searches for a linearization of `ops` (one partition). At most `maxSteps` list steps: past
 * that the outcome is 'unknown' (the history is too big or too concurrent to decide in budget).
 */
export function searchPartition<S, Op>(ops: readonly TimedOp<Op>[], model: SearchModel<S, Op>, maxSteps: number): PartitionOutcome<S> {
  const n = ops.length;
  // Events: index 0 is the list's sentinel (head and end).
  const events: { time: number; isCall: boolean; op: number }[] = [];
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    events.push({ time: o.invoke, isCall: true, op: i });
    if (o.response !== undefined) events.push({ time: o.response, isCall: false, op: i });
  }
  // Time order; at equal times calls first (two operations that touch in time may overlap).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const E = events.length;
  const next = new Int32Array(E + 1), prev = new Int32Array(E + 1);
  const evOp = new Int32Array(E + 1), evCall = new Uint8Array(E + 1);
  const callEv = new Int32Array(n), retEv = new Int32Array(n);
  for (let k = 1; k <= E; k++) {
    const e = events[k - 1]!;
    evOp[k] = e.op;
    evCall[k] = e.isCall ? 1 : 0;
    if (e.isCall) callEv[e.op] = k;
    else retEv[e.op] = k;
    prev[k] = k - 1;
    next[k] = k === E ? 0 : k + 1;
  }
  next[0] = E === 0 ? 0 : 1;
  prev[0] = E;

  const remove = (x: number): void => {
    next[prev[x]!] = next[x]!;
    prev[next[x]!] = prev[x]!;
  };
  const restore = (x: number): void => {
    next[prev[x]!] = x;
    prev[next[x]!] = x;
  };
  const lift = (i: number): void => {
    remove(callEv[i]!);
    if (retEv[i]) remove(retEv[i]!);
  };
  const unlift = (i: number): void => {
    if (retEv[i]) restore(retEv[i]!);
    restore(callEv[i]!);
  };

  const zLo = zobrist(n, 0x1234567), zHi = zobrist(n, 0x7654321);
  let hLo = 0, hHi = 0;
  // The memo: configurations by (Zobrist hash of the set mixed with its size, interned state).
  const memo = new TripleSet();
  const stateIds = new Map<string, number>();
  const sidOf = (st: S): number => {
    const k = model.key(st);
    let id = stateIds.get(k);
    if (id === undefined) stateIds.set(k, (id = stateIds.size));
    return id;
  };
  const mix = (lo: number, size: number): number => (lo ^ Math.imul(size, 0x27d4eb2f)) >>> 0;
  memo.add(mix(0, 0), 0, sidOf(model.init));
  // Linearized operations with unknown outcomes, in stack order. A configuration that equals
  // a visited one plus one of them is dominated by it (that one could instead never take
  // effect), so it is not tried either.
  const unknownStack: number[] = [];
  const stackOp = new Int32Array(n);
  const stackState: S[] = [];
  let depth = 0;
  let state = model.init;

  // The longest prefix seen (for the report): every push makes a node (op, parent node) in an
  // append-only tree, so remembering a prefix is remembering its last node.
  let nodeOp = new Int32Array(1024), nodeParent = new Int32Array(1024);
  let nodes = 1; // node 0: the empty prefix
  const nodeAt = new Int32Array(n + 1); // the node of each stack depth
  let bestNode = 0, bestDepth = 0;
  let bestState = model.init;

  let steps = 0;
  // Eligible calls (those before the first return left in the list) are tried in two passes:
  // first the operations with known outcomes, then those with unknown ones. Both are tried
  // before giving up on a configuration, so the order only changes how fast a linearizable
  // history is confirmed: unknown-outcome operations are placed when an answer needs them.
  const unknown = new Uint8Array(n);
  for (let i = 0; i < n; i++) unknown[i] = ops[i]!.response === undefined ? 1 : 0;
  let pass = 0; // 0: known outcomes, 1: unknown outcomes
  let entry = next[0]!;
  for (;;) {
    if (++steps > maxSteps) return { outcome: 'unknown', steps: steps - 1, reason: `gave up after ${maxSteps} steps (history too big or too concurrent)` };
    if (entry === 0) {
      // Past the last event without meeting a return: every operation with a known outcome is placed.
      return { outcome: 'linearizable', steps, order: Array.from(stackOp.subarray(0, depth)) };
    }
    if (evCall[entry]) {
      const i = evOp[entry]!;
      const s2 = unknown[i] === pass ? model.step(state, ops[i]!.op) : REJECT;
      if (s2 !== REJECT) {
        const lo = (hLo ^ zLo[i]!) >>> 0, hi = (hHi ^ zHi[i]!) >>> 0;
        const sid = sidOf(s2);
        let seen = memo.has(mix(lo, depth + 1), hi, sid);
        if (!seen && unknown[i]) seen = memo.has(mix(hLo, depth), hHi, sid);
        for (let k = 0; !seen && k < unknownStack.length; k++) {
          const u = unknownStack[k]!;
          seen = memo.has(mix((lo ^ zLo[u]!) >>> 0, depth), (hi ^ zHi[u]!) >>> 0, sid);
        }
        if (!seen) {
          memo.add(mix(lo, depth + 1), hi, sid);
          if (unknown[i]) unknownStack.push(i);
          const d = depth;
          stackOp[d] = i;
          stackState[d] = state;
          depth++;
          if (nodes === nodeOp.length) {
            const o2 = new Int32Array(nodes * 2), p2 = new Int32Array(nodes * 2);
            o2.set(nodeOp);
            p2.set(nodeParent);
            nodeOp = o2;
            nodeParent = p2;
          }
          nodeOp[nodes] = i;
          nodeParent[nodes] = nodeAt[d]!;
          nodeAt[depth] = nodes++;
          if (depth > bestDepth) {
            bestDepth = depth;
            bestNode = nodeAt[depth]!;
            bestState = s2;
          }
          state = s2;
          hLo = lo;
          hHi = hi;
          lift(i);
          entry = next[0]!;
          pass = 0;
          continue;
        }
      }
      entry = next[entry]!;
    } else {
      // A return whose operation is not placed yet: after the known outcomes, try the unknown
      // ones; after both, this branch is dead.
      if (pass === 0) {
        pass = 1;
        entry = next[0]!;
        continue;
      }
      if (depth === 0) return violation();
      depth--;
      const i = stackOp[depth]!;
      state = stackState[depth]!;
      hLo = (hLo ^ zLo[i]!) >>> 0;
      hHi = (hHi ^ zHi[i]!) >>> 0;
      if (unknown[i]) unknownStack.pop();
      unlift(i);
      pass = unknown[i]!;
      entry = next[callEv[i]!]!;
    }
  }

  function violation(): PartitionOutcome<S> {
    const best: number[] = [];
    for (let k = bestNode; k !== 0; k = nodeParent[k]!) best.push(nodeOp[k]!);
    best.reverse();
    const placed = new Uint8Array(n);
    for (const i of best) placed[i] = 1;
    let blocking = -1;
    for (let i = 0; i < n; i++) {
      const r = ops[i]!.response;
      if (placed[i] || r === undefined) continue;
      if (blocking < 0 || r < ops[blocking]!.response!) blocking = i;
    }
    const until = ops[blocking]!.response!;
    const candidates: number[] = [];
    for (let i = 0; i < n; i++) if (!placed[i] && ops[i]!.invoke <= until) candidates.push(i);
    candidates.sort((a, b) => ops[a]!.invoke - ops[b]!.invoke || a - b);
    return { outcome: 'violation', steps, prefix: best, state: bestState, blocking, candidates };
  }
}
