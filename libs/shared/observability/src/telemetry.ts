import { context, propagation, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';

/**
 * Starts the OpenTelemetry Node SDK when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, exporting spans over OTLP/HTTP.
 * Without it nothing is loaded (the SDK is heavy) and the API stays a no-op.
 * Call this before importing fastify or undici, so that http is instrumented.
 */
export interface TelemetryHandle {
  enabled: boolean;
  shutdown(): Promise<void>;
}

export async function startTelemetry(opts: {
  serviceName: string;
  env: Record<string, string | undefined>;
}): Promise<TelemetryHandle> {
  const endpoint = opts.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || opts.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  if (!endpoint || opts.env['OTEL_SDK_DISABLED'] === 'true') {
    return { enabled: false, shutdown: async () => {} };
  }
  const [{ NodeSDK }, { OTLPTraceExporter }, { HttpInstrumentation }, { UndiciInstrumentation }, { resourceFromAttributes }] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/instrumentation-http'),
      import('@opentelemetry/instrumentation-undici'),
      import('@opentelemetry/resources'),
    ]);
  const serviceName = opts.env['OTEL_SERVICE_NAME'] || opts.serviceName;
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    // The endpoint comes from opts.env (config is read once, by the caller), per the OTel spec:
    // a traces-specific URL as is, or the base endpoint + /v1/traces.
    traceExporter: new OTLPTraceExporter({
      url: opts.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || `${endpoint.replace(/\/+$/, '')}/v1/traces`,
    }),
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url === '/metrics' || req.url === '/healthz' }),
      new UndiciInstrumentation(),
    ],
  });
  sdk.start();
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: () => (done ??= sdk.shutdown().catch(() => {})),
  };
}

/** The Fastify OTel plugin, or undefined when telemetry is off. */
export async function fastifyOtelPlugin(enabled: boolean) {
  if (!enabled) return undefined;
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  return new FastifyOtelInstrumentation({ ignorePaths: (o: { url: string }) => o.url === '/metrics' || o.url === '/healthz' }).plugin();
}

export function tracer(name: string): Tracer {
  return trace.getTracer(name);
}

/** W3C trace context of `ctx` (default: the active one) as carrier fields. */
export function injectContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The context carried by `carrier` (e.g. `{ traceparent }`). */
export function extractContext(carrier: Record<string, string | undefined> | undefined): Context {
  if (!carrier) return context.active();
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) if (typeof v === 'string') clean[k] = v;
  return propagation.extract(context.active(), clean);
}

/** Runs fn inside a span that ends (and records an error) when fn settles. */
export async function inSpan<T>(
  t: Tracer,
  name: string,
  opts: { parent?: Context; attributes?: Record<string, string | number | boolean> },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = t.startSpan(name, { attributes: opts.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: 2, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
