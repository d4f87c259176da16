export { createRegistry, metricsPlugin } from './metrics.ts';
export {
  startTelemetry,
  fastifyOtelPlugin,
  tracer,
  injectContext,
  extractContext,
  inSpan,
  type TelemetryHandle,
} from './telemetry.ts';
export { loggerOptions } from './logs.ts';
