/**
 * The failover history the VM view shows: each failover the poller saw (the
 * live primary's epoch went up), joined with the failover trace a node
 * exported for it, whose child spans are the stages (detect, arbitrate,
 * catch up, go live, re-protect). A trace the poller missed (it happened
 * between two polls, or before the dashboard started) is listed on its own.
 */
import type { Failover } from './cluster.ts';
import type { TraceStore } from './otlp/store.ts';

export interface FailoverStage {
  name: string;
  service: string;
  /** Offset from the failover span's start. */
  startMs: number;
  durationMs: number;
  error: boolean;
}

export interface FailoverView extends Partial<Failover> {
  at: number;
  traceId?: string;
  durationMs?: number;
  stages: FailoverStage[];
  attributes?: Record<string, string | number | boolean>;
}

/** A failover span: a root span whose name says failover (vm.failover, ft.failover, failover). */
const FAILOVER = /(^|\.)failover$/i;
/** How far apart a polled failover and a traced one may be to be the same. */
const MATCH_MS = 15_000;

export function failoverHistory(polled: readonly Failover[], traces: TraceStore): FailoverView[] {
  const traced: FailoverView[] = traces.find(FAILOVER, 50).map(({ trace, span }) => {
    const all = traces.get(trace) ?? [];
    const children = all.filter((s) => s.parentSpanId === span.spanId).sort((a, b) => a.startUs - b.startUs);
    return {
      at: Math.round(span.startUs / 1000),
      traceId: trace,
      durationMs: (span.endUs - span.startUs) / 1000,
      stages: children.map((c) => ({ name: c.name, service: c.service, startMs: (c.startUs - span.startUs) / 1000, durationMs: (c.endUs - c.startUs) / 1000, error: c.status.code === 2 })),
      attributes: span.attributes,
    };
  });
  const used = new Set<FailoverView>();
  const out: FailoverView[] = polled.map((f) => {
    const t = traced.find((x) => !used.has(x) && Math.abs(x.at - f.at) <= MATCH_MS && (x.attributes?.['ft.epoch'] === undefined || x.attributes['ft.epoch'] === f.epoch));
    if (!t) return { ...f, stages: [] };
    used.add(t);
    return { ...t, ...f, at: t.at };
  });
  for (const t of traced) if (!used.has(t)) out.push(t);
  return out.sort((a, b) => b.at - a.at);
}
