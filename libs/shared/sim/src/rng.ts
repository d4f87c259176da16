/**
 * A small seeded PRNG (sfc32 seeded through splitmix32). Deterministic for a
 * seed, cheap, and good enough for simulation and jitter. Never use
 * Math.random in a core: take an Rng.
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new independent generator derived from this one. */
  fork(): Rng;
  readonly seed: number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: number): Rng {
  const sm = splitmix32(seed);
  let a = sm(), b = sm(), c = sm(), d = sm();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const rng: Rng = {
    seed,
    next: () => u32() / 4294967296,
    int: (n) => {
      if (!(n > 0)) throw new RangeError(`Rng.int: n must be > 0, got ${n}`);
      return Math.floor((u32() / 4294967296) * n);
    },
    range: (lo, hi) => lo + rng.int(hi - lo + 1),
    chance: (p) => u32() / 4294967296 < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('Rng.pick: empty array');
      return items[rng.int(items.length)]!;
    },
    fork: () => createRng(u32()),
  };
  return rng;
}
