/**
 * Invariant checks over what the shell recorded. Pure functions of their
 * inputs; each returns whether the invariant held and a detail line that
 * says why (the first violation, or what was checked).
 */

export interface CheckResult {
  ok: boolean;
  detail: string;
}

/** One poll of a node's GET /v1/vms/:id (undefined fields: the node did not answer). */
export interface NodeSample {
  atMs: number;
  node: string;
  live: boolean;
  epoch: number;
  role: string;
}

/**
 * Never two live primaries in one epoch: over every sample of the drill, each
 * epoch was seen live on at most one node. (Stronger than "not both at the
 * same poll": an epoch is won by one test-and-set, so a second node live in
 * it at any time is a split brain.)
 */
export function checkOnePrimaryPerEpoch(samples: readonly NodeSample[]): CheckResult {
  const owner = new Map<number, { node: string; atMs: number }>();
  let live = 0;
  for (const s of samples) {
    if (!s.live) continue;
    live++;
    const o = owner.get(s.epoch);
    if (!o) owner.set(s.epoch, { node: s.node, atMs: s.atMs });
    else if (o.node !== s.node) {
      return { ok: false, detail: `epoch ${s.epoch} live on ${o.node} (+${Math.round(o.atMs)}ms) and on ${s.node} (+${Math.round(s.atMs)}ms)` };
    }
  }
  if (samples.length === 0) return { ok: false, detail: 'no status samples were recorded' };
  const epochs = [...owner.entries()].sort((a, b) => a[0] - b[0]).map(([e, o]) => `${e}:${o.node}`);
  return { ok: true, detail: `${samples.length} samples (${live} live); epoch owners ${epochs.join(' ') || 'none'}` };
}

/**
 * The exactly-once counter: every incr of the counter key that got an answer
 * got a distinct value; the final value counts every applied incr. With no
 * unknown outcomes the answers are exactly 1..final.
 */
export function checkCounter(answers: readonly number[], unknown: number, finalValue: number): CheckResult {
  const sorted = [...answers].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) return { ok: false, detail: `incr answer ${sorted[i]} given twice (a request applied twice, or two primaries)` };
  }
  const bad = sorted.find((v) => !Number.isInteger(v) || v < 1 || v > finalValue);
  if (bad !== undefined) return { ok: false, detail: `incr answer ${bad} outside 1..${finalValue} (final read)` };
  if (finalValue < sorted.length) return { ok: false, detail: `final value ${finalValue} < ${sorted.length} acknowledged incrs: an acknowledged answer was lost` };
  if (finalValue > sorted.length + unknown) {
    return { ok: false, detail: `final value ${finalValue} > ${sorted.length} acknowledged + ${unknown} unknown incrs: something was applied twice` };
  }
  return { ok: true, detail: `${sorted.length} acknowledged incrs (+${unknown} unknown), distinct, final value ${finalValue}` };
}

/** Equality of two sorted line lists, naming the first difference. */
export function checkSameLines(got: readonly string[], want: readonly string[]): CheckResult {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      return {
        ok: false,
        detail: `outputs differ at sorted line ${i + 1} (got ${got.length} lines, want ${want.length}): got ${JSON.stringify(got[i] ?? '<end>')}, want ${JSON.stringify(want[i] ?? '<end>')}`,
      };
    }
  }
  return { ok: true, detail: `${got.length} lines, identical to mr seq` };
}

export interface Recovery {
  /** The fault, as describeFault prints it. */
  fault: string;
  /** What "recovered" meant for this fault. */
  what: string;
  /** ms from the fault to recovery; null: it never recovered during the drill. */
  recoveredMs: number | null;
}

export function checkRecoveries(recoveries: readonly Recovery[], boundMs: number): CheckResult {
  if (recoveries.length === 0) return { ok: false, detail: 'no recovery was measured' };
  const late = recoveries.find((r) => r.recoveredMs === null || r.recoveredMs > boundMs);
  if (late) return { ok: false, detail: `${late.fault}: ${late.what} ${late.recoveredMs === null ? 'never happened' : `took ${late.recoveredMs} ms`} (bound ${boundMs} ms)` };
  const worst = Math.max(...recoveries.map((r) => r.recoveredMs!));
  return { ok: true, detail: `${recoveries.length} recoveries, the slowest ${worst} ms (bound ${boundMs} ms)` };
}

/** A client answer as the drill saw it: when (ms from the start) and which node gave it. */
export interface AnswerSample {
  atMs: number;
  node: string;
}

/**
 * How long the FT VM took to serve again after a fault at `faultAtMs`, when
 * the primary was in `epoch0`: the first client answer from a node after the
 * status polls saw it live in a newer epoch (a failover). Without a failover
 * (a stall or cut shorter than failure suspicion), the first answer after
 * the fault ended (`endAtMs`: SIGCONT, heal; the fault time for a kill).
 */
export function vmRecovery(fault: string, faultAtMs: number, endAtMs: number, epoch0: number, samples: readonly NodeSample[], answers: readonly AnswerSample[]): Recovery & { failoverMs: number | null } {
  const newerLive = samples.filter((s) => s.atMs >= faultAtMs && s.live && s.epoch > epoch0);
  const newer = newerLive[0];
  if (newer) {
    // The first answer from a node already seen live in a newer epoch (usually the one that took
    // over; with two live primaries, when a rule is broken on purpose, whichever clients follow).
    const a = answers.find((x) => newerLive.some((s) => s.node === x.node && s.atMs <= x.atMs));
    const by = a ? newerLive.find((s) => s.node === a.node)! : newer;
    return {
      fault,
      what: `${by.node} live in epoch ${by.epoch} and answering clients`,
      recoveredMs: a ? Math.round(a.atMs - faultAtMs) : null,
      failoverMs: Math.round(newer.atMs - faultAtMs),
    };
  }
  const a = answers.find((x) => x.atMs > endAtMs);
  return { fault, what: 'clients answered again (no failover)', recoveredMs: a ? Math.round(a.atMs - faultAtMs) : null, failoverMs: null };
}

/** A progress count (tasks done) as polled from the coordinator; undefined: unreachable. */
export interface ProgressSample {
  atMs: number;
  done: number | undefined;
  finished: boolean;
}

/** How long the MapReduce job took to make progress again (a task completed, or the job ended) after a fault. */
export function progressRecovery(fault: string, faultAtMs: number, samples: readonly ProgressSample[]): Recovery {
  let before: number | undefined;
  for (const s of samples) {
    if (s.atMs <= faultAtMs) {
      if (s.done !== undefined) before = s.done;
      continue;
    }
    if (s.finished || (s.done !== undefined && s.done > (before ?? 0))) {
      return { fault, what: s.finished ? 'the job ended' : 'a task completed (progress resumed)', recoveredMs: Math.round(s.atMs - faultAtMs) };
    }
  }
  return { fault, what: 'progress resumed', recoveredMs: null };
}

/** One invariant monitor as read from a process's /metrics: the highest value seen. */
export interface MonitorReading {
  /** The process, e.g. `node a (pid 123)`. */
  process: string;
  /** The metric, e.g. `ft_invariant_violations_total`. */
  metric: string;
  invariant: string;
  value: number;
}

const MONITOR_LINE = /^((?:mr|ft)_invariant_violations_total)\{([^}]*)\}\s+(\S+)\s*$/;

/** The invariant monitors in a Prometheus text exposition (other lines are ignored). */
export function parseMonitors(text: string): { metric: string; invariant: string; value: number }[] {
  const out: { metric: string; invariant: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = MONITOR_LINE.exec(line);
    if (!m) continue;
    const inv = /(?:^|,)invariant="([^"]*)"/.exec(m[2]!);
    const value = Number(m[3]);
    if (inv && Number.isFinite(value)) out.push({ metric: m[1]!, invariant: inv[1]!, value });
  }
  return out;
}

/** Every invariant monitor stayed 0 in every process scraped (`scrapes`: how many answered). */
export function checkMonitors(readings: readonly MonitorReading[], scrapes: number): CheckResult {
  if (scrapes === 0) return { ok: false, detail: 'no /metrics scrape answered' };
  const bad = readings.filter((r) => r.value > 0);
  if (bad.length > 0) return { ok: false, detail: bad.map((r) => `${r.metric}{invariant="${r.invariant}"} = ${r.value} on ${r.process}`).join('; ') };
  const names = [...new Set(readings.map((r) => r.invariant))].sort();
  return { ok: true, detail: `${scrapes} scrapes of ${new Set(readings.map((r) => r.process)).size} processes; all 0: ${names.join(', ') || 'no monitors exported'}` };
}
