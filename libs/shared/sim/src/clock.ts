/**
 * Simulated time for seeded simulations: a clock that only moves when told,
 * and a timer queue ordered by due time then insertion order.
 */
export class SimClock {
  #now = 0;
  #seq = 0;
  #timers: { at: number; seq: number; fn: () => void }[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Runs `fn` at now + delay (delay >= 0). */
  schedule(delay: number, fn: () => void): void {
    if (delay < 0 || !Number.isFinite(delay)) throw new RangeError(`SimClock.schedule: bad delay ${delay}`);
    this.#timers.push({ at: this.#now + delay, seq: this.#seq++, fn });
  }

  pending(): number {
    return this.#timers.length;
  }

  /** Fires the earliest timer, moving time to it. False when none is left. */
  step(): boolean {
    if (this.#timers.length === 0) return false;
    let best = 0;
    for (let i = 1; i < this.#timers.length; i++) {
      const t = this.#timers[i]!;
      const b = this.#timers[best]!;
      if (t.at < b.at || (t.at === b.at && t.seq < b.seq)) best = i;
    }
    const [t] = this.#timers.splice(best, 1);
    this.#now = t!.at;
    t!.fn();
    return true;
  }

  /** Fires every timer due up to `until`, then sets time to `until`. */
  runUntil(until: number): void {
    for (;;) {
      let best = -1;
      for (let i = 0; i < this.#timers.length; i++) {
        const t = this.#timers[i]!;
        if (t.at > until) continue;
        if (best < 0 || t.at < this.#timers[best]!.at || (t.at === this.#timers[best]!.at && t.seq < this.#timers[best]!.seq)) best = i;
      }
      if (best < 0) break;
      const [t] = this.#timers.splice(best, 1);
      this.#now = t!.at;
      t!.fn();
    }
    if (until > this.#now) this.#now = until;
  }
}

/**
 * A tick-counted timeout, as in TigerBeetle's vsr.Timeout: the owner calls
 * tick() once per tick and asks fired().
 */
export class Timeout {
  #ticks = 0;
  #after: number;
  #running = false;
  readonly name: string;

  constructor(name: string, afterTicks: number) {
    this.name = name;
    this.#after = afterTicks;
  }

  start(): void {
    this.#ticks = 0;
    this.#running = true;
  }
  stop(): void {
    this.#running = false;
    this.#ticks = 0;
  }
  reset(): void {
    this.#ticks = 0;
  }
  tick(): void {
    if (this.#running) this.#ticks++;
  }
  fired(): boolean {
    return this.#running && this.#ticks >= this.#after;
  }
  get running(): boolean {
    return this.#running;
  }
  get ticks(): number {
    return this.#ticks;
  }
}
