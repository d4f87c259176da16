import { trace, TraceFlags } from '@opentelemetry/api';

/**
 * The trace context of the active span as log fields (`trace_id`, `span_id`,
 * `trace_flags`, the OTel log data model's names), or nothing outside a span
 * (and always nothing while telemetry is off: the API is a no-op then).
 */
export function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return {};
  return { trace_id: c.traceId, span_id: c.spanId, trace_flags: (c.traceFlags & TraceFlags.SAMPLED) !== 0 ? '01' : '00' };
}

/**
 * Pino options shared by every service: JSON lines, a service field, no
 * pid/hostname noise, and the active span's trace_id/span_id on every line
 * written inside a span (so a log line leads to its trace).
 */
export function loggerOptions(opts: { service: string; level?: string }) {
  return {
    level: opts.level ?? 'info',
    base: { service: opts.service },
    redact: ['req.headers.authorization'],
    mixin: traceFields,
  };
}
