export { createRegistry, metricsPlugin, serveMetrics, zeroCounter, BUILD_VERSION, UNMATCHED_ROUTE, type MetricsServer, type RegistryOptions } from './metrics.ts';
export {
  startTelemetry,
  fastifyOtelPlugin,
  tracer,
  injectContext,
  extractContext,
  inSpan,
  isSampled,
  isUntracedRoute,
  otlpProtocol,
  UNTRACED_ROUTES,
  ERR_OTEL_CONFIG,
  type TelemetryHandle,
  type OtlpProtocol,
} from './telemetry.ts';
export { loggerOptions, traceFields } from './logs.ts';
export type { Registry } from 'prom-client';
