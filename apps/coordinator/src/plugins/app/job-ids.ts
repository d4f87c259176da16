/**
 * Job ids for accepted submissions: ULIDs (48-bit ms time + 80 random bits),
 * so ids are unique across coordinators and sort in submission order.
 *
 * Monotonic: ids made within one millisecond, or while the clock stands
 * still or steps back, increment the previous id's random part instead of
 * drawing a new one (the `ulid` library's monotonic factory). After a restart
 * the first id is made at least one millisecond after the newest id the
 * journal holds, so ids keep increasing across restarts even if the clock
 * moved back meanwhile: the scheduler core asserts that each new id is newer
 * than every one it accepted (its rule for telling retired ids from unknown ones).
 *
 * The shell makes an id for every submission it passes to the core; the
 * core uses it only if it accepts the job (refused and repeated submissions
 * leave gaps, which nothing relies on).
 */
import { decodeTime, monotonicFactory } from 'ulid';

export class JobIdSource {
  #next = monotonicFactory();
  #minMs: number;
  #now: () => number;

  /** newest: the newest ULID job id already accepted (Scheduler.lastJobId()), if any. */
  constructor(newest: string | undefined, now: () => number = Date.now) {
    this.#minMs = newest === undefined ? 0 : decodeTime(newest) + 1;
    this.#now = now;
  }

  next(): string {
    return this.#next(Math.max(this.#now(), this.#minMs));
  }
}
