import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { context, propagation, trace, TraceFlags, type Attributes, type Context, type Link, type Span, type SpanKind, type Tracer } from '@opentelemetry/api';
import { createError } from '@mr/errors';

/**
 * OpenTelemetry for every service (README "Traces"). startTelemetry starts the
 * Node SDK when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
 * is set; without it nothing is loaded (the SDK is heavy) and the API stays a no-op.
 * Call it before importing fastify or undici, so that http is instrumented.
 *
 * Conventions: `service.name` is the same for every instance of a service
 * (`vm-node`, `mr-coordinator`, `mr-worker`, `mr-cli`, `vm-storage`, `vm-client`),
 * `service.instance.id` tells instances apart (node id, or a random UUID),
 * `service.namespace` is `mr`, `service.version` the build's version.
 * Spans go over OTLP http/protobuf unless OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL
 * says http/json. Status polling, health, metrics and long-lived streams are not
 * traced (a sampler drops them) unless MR_TRACE_POLLING=true.
 */
export interface TelemetryHandle {
  enabled: boolean;
  /** The resource attributes spans carry (empty when disabled). */
  resource: Record<string, string>;
  /** 'http/protobuf' or 'http/json' (undefined when disabled). */
  protocol: OtlpProtocol | undefined;
  shutdown(): Promise<void>;
}

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export const ERR_OTEL_CONFIG = createError<[string]>('MR_ERR_OTEL_CONFIG', 'telemetry configuration: %s', 400, { retryable: false });

const SERVICE_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
export const SERVICE_NAMESPACE = 'mr';

/**
 * Routes that are polled (status, health, metrics, a worker's long poll and
 * heartbeat) or that hold one long-lived stream (the FT log channel, job
 * events): tracing them would bury the traces that matter (an idle `mr local`
 * exported about 13 spans/s of polling). Method and path (query allowed).
 */
export const UNTRACED_ROUTES: readonly { method: string; path: RegExp }[] = [
  { method: '*', path: /^\/healthz$/ },
  { method: 'GET', path: /^\/metrics$/ },
  { method: 'GET', path: /^\/v1\/version$/ },
  { method: 'GET', path: /^(\/v1)?\/(docs|openapi)(\.json|\/.*)?$/ },
  { method: 'GET', path: /^\/v1\/vms\/[^/]+$/ },
  { method: 'GET', path: /^\/v1\/jobs(\/[^/]+)?$/ },
  { method: 'GET', path: /^\/v1\/jobs\/[^/]+\/(events|tasks)$/ },
  { method: 'GET', path: /^\/v1\/workers$/ },
  { method: 'POST', path: /^\/v1\/workers\/[^/]+\/(poll|heartbeat)$/ },
  { method: 'POST', path: /^\/v1\/vms\/[^/]+\/log$/ },
];

/** Whether a request (method, path with or without a query string) is one UNTRACED_ROUTES names. */
export function isUntracedRoute(method: string | undefined, url: string | undefined): boolean {
  if (!method || !url) return false;
  const path = url.split('?')[0]!;
  const m = method.toUpperCase();
  return UNTRACED_ROUTES.some((r) => (r.method === '*' || r.method === m) && r.path.test(path));
}

/** Reads the OTLP protocol of traces from the environment (default http/protobuf); throws MR_ERR_OTEL_CONFIG for others. */
export function otlpProtocol(env: Record<string, string | undefined>): OtlpProtocol {
  const p = (env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] || env['OTEL_EXPORTER_OTLP_PROTOCOL'] || 'http/protobuf').trim();
  if (p === 'http/protobuf' || p === 'http/json') return p;
  throw ERR_OTEL_CONFIG(`OTEL_EXPORTER_OTLP_PROTOCOL=${p} is not supported: use http/protobuf (the default) or http/json`);
}

function stringAttr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export async function startTelemetry(opts: {
  /** The service (the same for all its instances): vm-node, mr-coordinator, mr-worker, mr-cli, vm-storage, vm-client. */
  serviceName: string;
  /** This instance (node id, …); default a random UUID, as the semantic conventions advise. */
  instanceId?: string | undefined;
  env: Record<string, string | undefined>;
}): Promise<TelemetryHandle> {
  const endpoint = opts.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || opts.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  if (!endpoint || opts.env['OTEL_SDK_DISABLED'] === 'true') {
    return { enabled: false, resource: {}, protocol: undefined, shutdown: async () => {} };
  }
  const protocol = otlpProtocol(opts.env);
  const tracePolling = opts.env['MR_TRACE_POLLING'] === 'true' || opts.env['MR_TRACE_POLLING'] === '1';
  const ratioArg = opts.env['OTEL_TRACES_SAMPLER_ARG'];
  const ratio = /traceidratio/.test(opts.env['OTEL_TRACES_SAMPLER'] ?? '') && ratioArg !== undefined ? Number(ratioArg) : 1;
  if (!(ratio >= 0 && ratio <= 1)) throw ERR_OTEL_CONFIG(`OTEL_TRACES_SAMPLER_ARG=${ratioArg} is not a ratio in [0, 1]`);
  const [{ NodeSDK }, exporterModule, { HttpInstrumentation }, { UndiciInstrumentation }, { resourceFromAttributes }, sampling] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    protocol === 'http/json' ? import('@opentelemetry/exporter-trace-otlp-http') : import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  const { ParentBasedSampler, TraceIdRatioBasedSampler, AlwaysOnSampler, SamplingDecision } = sampling;
  const resource: Record<string, string> = {
    'service.name': opts.env['OTEL_SERVICE_NAME'] || opts.serviceName,
    'service.namespace': SERVICE_NAMESPACE,
    'service.version': SERVICE_VERSION,
    'service.instance.id': opts.instanceId || randomUUID(),
  };
  const root = ratio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(ratio);
  const parentBased = new ParentBasedSampler({ root });
  // Polling and streams are dropped whatever their parent (a CLI's watch loop inside its own span too).
  const sampler = {
    shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]) {
      if (!tracePolling) {
        const method = stringAttr(attributes['http.request.method']) ?? stringAttr(attributes['http.method']);
        const path = stringAttr(attributes['url.path']) ?? stringAttr(attributes['http.target']);
        if (isUntracedRoute(method, path)) return { decision: SamplingDecision.NOT_RECORD };
      }
      return parentBased.shouldSample(ctx, traceId, name, kind, attributes, links);
    },
    toString: () => `MrSampler{untraced polling: ${!tracePolling}, ${parentBased.toString()}}`,
  };
  const sdk = new NodeSDK({
    resource: resourceFromAttributes(resource),
    sampler,
    // The endpoint comes from opts.env (config is read once, by the caller), per the OTel spec:
    // a traces-specific URL as is, or the base endpoint + /v1/traces.
    traceExporter: new exporterModule.OTLPTraceExporter({
      url: opts.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || `${endpoint.replace(/\/+$/, '')}/v1/traces`,
    }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => !tracePolling && isUntracedRoute(req.method, req.url),
        ignoreOutgoingRequestHook: (req) => !tracePolling && isUntracedRoute(req.method, req.path ?? undefined),
      }),
      new UndiciInstrumentation({ ignoreRequestHook: (req) => !tracePolling && isUntracedRoute(req.method, req.path) }),
    ],
  });
  sdk.start();
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    resource,
    protocol,
    shutdown: () => (done ??= sdk.shutdown().catch(() => {})),
  };
}

/** The Fastify OTel plugin, or undefined when telemetry is off. Polled routes get no spans (see UNTRACED_ROUTES). */
export async function fastifyOtelPlugin(enabled: boolean) {
  if (!enabled) return undefined;
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  return new FastifyOtelInstrumentation({ ignorePaths: (o: { url: string; method?: string }) => o.url === '/metrics' || o.url === '/healthz' }).plugin();
}

export function tracer(name: string): Tracer {
  return trace.getTracer(name, SERVICE_VERSION);
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

/** Whether `span` is recorded and sampled (worth carrying its context to another process). */
export function isSampled(span: Span | undefined): span is Span {
  return !!span && span.isRecording() && (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
}

/** Runs fn inside a span that ends (and records an error) when fn settles. */
export async function inSpan<T>(
  t: Tracer,
  name: string,
  opts: { parent?: Context; attributes?: Record<string, string | number | boolean>; kind?: SpanKind },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = t.startSpan(name, { attributes: opts.attributes, ...(opts.kind !== undefined ? { kind: opts.kind } : {}) }, parent);
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
