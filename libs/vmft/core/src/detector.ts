/**
 * An adaptive failure detector: φ-accrual (Hayashibara et al., 2004, as in
 * Cassandra and Akka) over the arrival times of the peer's messages. Pure:
 * every time is given by the caller (host ms).
 *
 * It keeps the last `windowSize` gaps between arrivals and their mean and
 * standard deviation. Silence of `t` ms since the last arrival has
 *
 *   φ(t) = -log10(P(a gap longer than t)),  the gap ~ Normal(mean + pause, max(sd, minSdMs))
 *
 * where `pause` is the longest pause seen lately: the longest gap between
 * the peer's arrivals in the window, or between this node's own timer ticks
 * (`tick`: a loaded machine that starves this process by 300 ms may well
 * starve the peer as long, even before the peer was seen to pause). The
 * peer is suspected once φ >= threshold, or once the silence reaches `maxMs`
 * whatever φ says (the documented bound on detecting a stall), and never
 * before `minMs`. On a quiet machine the gaps are short and regular and the
 * window is short; under load it stretches by what the load was seen to do,
 * up to maxMs.
 */

export interface DetectorConfig {
  /** φ at which the peer is suspected (8: a false suspicion about once in 10^8 gaps of the modelled kind). */
  threshold: number;
  /** Gaps remembered. */
  windowSize: number;
  /** Floor of the standard deviation (ms): regular heartbeats do not make the detector twitchy. */
  minSdMs: number;
  /** Silence below this is never suspected (ms). */
  minMs: number;
  /** Silence of this long is always suspected (ms): the bound on detecting a stalled peer. */
  maxMs: number;
}

/** The normal distribution's upper tail, P(X > x) for X ~ N(0, 1) (Zelen & Severo 26.2.17, |error| < 7.5e-8). */
function upperTail(x: number): number {
  if (x < 0) return 1 - upperTail(-x);
  const t = 1 / (1 + 0.2316419 * x);
  const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  return Math.exp((-x * x) / 2) * 0.3989422804014327 * poly;
}

export class PhiDetector {
  readonly config: DetectorConfig;
  #gaps: Float64Array;
  #next = 0;
  #count = 0;
  #sum = 0;
  #sumSq = 0;
  #last: number | undefined;
  /** This node's own tick gaps (a ring of the last windowSize). */
  #ticks: Float64Array;
  #tickNext = 0;
  #tickCount = 0;
  #lastTick: number | undefined;

  constructor(config: DetectorConfig) {
    this.config = config;
    this.#gaps = new Float64Array(config.windowSize);
    this.#ticks = new Float64Array(config.windowSize);
  }

  /** This node's own periodic timer fired at `nowMs`: the gap since the previous one is a pause the machine imposed (or none). */
  tick(nowMs: number): void {
    if (this.#lastTick !== undefined && nowMs >= this.#lastTick) {
      this.#ticks[this.#tickNext] = nowMs - this.#lastTick;
      this.#tickNext = (this.#tickNext + 1) % this.config.windowSize;
      if (this.#tickCount < this.config.windowSize) this.#tickCount++;
    }
    if (this.#lastTick === undefined || nowMs > this.#lastTick) this.#lastTick = nowMs;
  }

  /** A message arrived from the peer at `nowMs`. */
  heartbeat(nowMs: number): void {
    if (this.#last !== undefined && nowMs >= this.#last) this.#add(nowMs - this.#last);
    if (this.#last === undefined || nowMs > this.#last) this.#last = nowMs;
  }

  /** Hearing from the peer again after a break (a new stream): counts from `nowMs` without taking the break as a gap. */
  restart(nowMs: number): void {
    this.#last = nowMs;
  }

  /** Forget the history (a new peer, or a new stream after a break): the next window is minMs-based again. */
  reset(nowMs?: number): void {
    this.#next = 0;
    this.#count = 0;
    this.#sum = 0;
    this.#sumSq = 0;
    this.#last = nowMs;
  }

  /** Milliseconds since the last arrival (0 before any). */
  silence(nowMs: number): number {
    return this.#last === undefined ? 0 : Math.max(0, nowMs - this.#last);
  }

  /** φ for `silenceMs` of silence (before any gap is known the mean is 0: the pause and the sd floor decide). */
  phi(silenceMs: number): number {
    const mean = this.#count === 0 ? 0 : this.#sum / this.#count;
    const sd = this.#count === 0 ? this.config.minSdMs : Math.max(this.config.minSdMs, Math.sqrt(Math.max(0, this.#sumSq / this.#count - mean * mean)));
    const p = upperTail((silenceMs - mean - this.#longest()) / sd);
    return p <= 0 ? Infinity : -Math.log10(p);
  }

  /** Whether the peer, silent since its last arrival, is suspected at `nowMs`. */
  suspect(nowMs: number): boolean {
    const s = this.silence(nowMs);
    if (s < this.config.minMs) return false;
    return s >= this.config.maxMs || this.phi(s) >= this.config.threshold;
  }

  /** The silence (ms) at which the peer would be suspected now: between minMs and maxMs. */
  windowMs(): number {
    const { minMs, maxMs, threshold } = this.config;
    if (this.phi(minMs) >= threshold) return minMs;
    let lo = minMs, hi = maxMs;
    while (hi - lo > 1) {
      const mid = (lo + hi) / 2;
      if (this.phi(mid) >= threshold) hi = mid;
      else lo = mid;
    }
    return Math.ceil(hi);
  }

  /** Gaps remembered, their mean and the longest pause (peer gap or own tick gap; for status and transcripts). */
  stats(): { gaps: number; meanMs: number; longestMs: number } {
    return { gaps: this.#count, meanMs: this.#count ? this.#sum / this.#count : 0, longestMs: this.#longest() };
  }

  #add(gap: number): void {
    const n = this.config.windowSize;
    if (this.#count === n) {
      const old = this.#gaps[this.#next]!;
      this.#sum -= old;
      this.#sumSq -= old * old;
    } else this.#count++;
    this.#gaps[this.#next] = gap;
    this.#next = (this.#next + 1) % n;
    this.#sum += gap;
    this.#sumSq += gap * gap;
  }

  #longest(): number {
    let m = 0;
    for (let i = 0; i < this.#count; i++) if (this.#gaps[i]! > m) m = this.#gaps[i]!;
    for (let i = 0; i < this.#tickCount; i++) if (this.#ticks[i]! > m) m = this.#ticks[i]!;
    return m;
  }
}
