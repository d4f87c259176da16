/**
 * The drills' seeded generator (sfc32 seeded through splitmix32, the same
 * algorithm as @mr/sim's, which a core may not depend on). A schedule is a
 * function of its seed only: never Math.random here.
 */
export interface DrillRng {
  /** Uniform integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

export function createDrillRng(seed: number): DrillRng {
  let s = seed >>> 0;
  const sm = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
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
  const int = (n: number): number => Math.floor((u32() / 4294967296) * n);
  return {
    range: (lo, hi) => {
      if (!(hi >= lo)) throw new RangeError(`range: hi (${hi}) < lo (${lo})`);
      return lo + int(hi - lo + 1);
    },
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick: empty array');
      return items[int(items.length)]!;
    },
  };
}
