/**
 * The dashboard's trace store: the newest traces, in memory, with three
 * bounds (LIMITS in README): traces, spans and estimated bytes. When a batch
 * would pass one, whole traces are dropped oldest first (by when their first
 * span arrived) until it fits; a trace also stops growing at spansPerTrace.
 * Every dropped span is counted.
 */
import { spanBytes, type SpanRecord } from './decode.ts';

export interface TraceLimits {
  maxTraces: number;
  maxSpans: number;
  maxBytes: number;
  maxSpansPerTrace: number;
}

export const DEFAULT_TRACE_LIMITS: TraceLimits = {
  maxTraces: 2000,
  maxSpans: 50_000,
  maxBytes: 64 * 1024 * 1024,
  maxSpansPerTrace: 5000,
};

interface StoredTrace {
  id: string;
  spans: SpanRecord[];
  bytes: number;
  receivedAt: number;
}

export interface TraceSummary {
  traceId: string;
  /** The root span's name (or the earliest span's when the root has not arrived). */
  name: string;
  rootService: string;
  services: string[];
  spans: number;
  startUs: number;
  durationMs: number;
  errors: number;
}

export interface TraceFilter {
  service?: string | undefined;
  /** Substring of any span's name. */
  name?: string | undefined;
  minDurationMs?: number | undefined;
  errorsOnly?: boolean | undefined;
  limit?: number | undefined;
}

export class TraceStore {
  readonly limits: TraceLimits;
  /** Insertion order = age: the first entry is the oldest trace. */
  #traces = new Map<string, StoredTrace>();
  #spans = 0;
  #bytes = 0;
  droppedSpans = 0;
  droppedTraces = 0;
  receivedSpans = 0;

  constructor(limits: Partial<TraceLimits> = {}) {
    this.limits = { ...DEFAULT_TRACE_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) if (!Number.isInteger(v) || v < 1) throw new Error(`trace store: ${k} must be a positive integer`);
  }

  get size(): { traces: number; spans: number; bytes: number } {
    return { traces: this.#traces.size, spans: this.#spans, bytes: this.#bytes };
  }

  add(spans: SpanRecord[], now: number): void {
    this.receivedSpans += spans.length;
    for (const s of spans) {
      let t = this.#traces.get(s.traceId);
      if (t && t.spans.length >= this.limits.maxSpansPerTrace) {
        this.droppedSpans++;
        continue;
      }
      const b = spanBytes(s);
      if (!t) {
        t = { id: s.traceId, spans: [], bytes: 0, receivedAt: now };
        this.#traces.set(s.traceId, t);
      }
      t.spans.push(s);
      t.bytes += b;
      this.#spans++;
      this.#bytes += b;
      this.#evict(t);
    }
  }

  /** Drops the oldest traces (never `keep`, the one just added to) until every bound holds. */
  #evict(keep: StoredTrace): void {
    const over = () => this.#traces.size > this.limits.maxTraces || this.#spans > this.limits.maxSpans || this.#bytes > this.limits.maxBytes;
    while (over()) {
      const oldest = this.#traces.values().next().value as StoredTrace;
      if (oldest === keep) {
        // The one trace left is itself over a bound: drop its newest span instead.
        const s = keep.spans.pop()!;
        this.#spans--;
        this.#bytes -= spanBytes(s);
        keep.bytes -= spanBytes(s);
        this.droppedSpans++;
        if (keep.spans.length === 0) this.#traces.delete(keep.id);
        return;
      }
      this.#traces.delete(oldest.id);
      this.#spans -= oldest.spans.length;
      this.#bytes -= oldest.bytes;
      this.droppedSpans += oldest.spans.length;
      this.droppedTraces++;
    }
  }

  get(traceId: string): SpanRecord[] | undefined {
    const t = this.#traces.get(traceId);
    return t ? [...t.spans].sort((a, b) => a.startUs - b.startUs) : undefined;
  }

  /** Newest first. */
  list(f: TraceFilter = {}): TraceSummary[] {
    const out: TraceSummary[] = [];
    const limit = f.limit ?? 100;
    const traces = [...this.#traces.values()].reverse();
    for (const t of traces) {
      if (out.length >= limit) break;
      const s = summarize(t);
      if (f.service && !s.services.includes(f.service)) continue;
      if (f.name && !t.spans.some((x) => x.name.includes(f.name!))) continue;
      if (f.minDurationMs !== undefined && s.durationMs < f.minDurationMs) continue;
      if (f.errorsOnly && s.errors === 0) continue;
      out.push(s);
    }
    return out;
  }

  /** Spans whose name matches `re`, newest trace first (e.g. the failover traces). */
  find(re: RegExp, limit: number): { trace: string; span: SpanRecord }[] {
    const out: { trace: string; span: SpanRecord }[] = [];
    for (const t of [...this.#traces.values()].reverse()) {
      for (const s of t.spans) if (re.test(s.name)) out.push({ trace: t.id, span: s });
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }

  /** The newest trace with a span whose attribute `key` equals `value` (e.g. a job's trace by mr.job.id). */
  findByAttribute(key: string, value: string): string | undefined {
    for (const t of [...this.#traces.values()].reverse()) if (t.spans.some((s) => s.attributes[key] === value)) return t.id;
    return undefined;
  }

  services(): string[] {
    const set = new Set<string>();
    for (const t of this.#traces.values()) for (const s of t.spans) set.add(s.service);
    return [...set].sort();
  }
}

function summarize(t: StoredTrace): TraceSummary {
  const ids = new Set(t.spans.map((s) => s.spanId));
  const root = t.spans.find((s) => !s.parentSpanId) ?? t.spans.find((s) => !ids.has(s.parentSpanId!)) ?? t.spans[0]!;
  let start = Infinity;
  let end = -Infinity;
  let errors = 0;
  const services = new Set<string>();
  for (const s of t.spans) {
    start = Math.min(start, s.startUs);
    end = Math.max(end, s.endUs);
    if (s.status.code === 2) errors++;
    services.add(s.service);
  }
  return { traceId: t.id, name: root.name, rootService: root.service, services: [...services].sort(), spans: t.spans.length, startUs: start, durationMs: (end - start) / 1000, errors };
}
