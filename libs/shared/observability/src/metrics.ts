import { Registry, collectDefaultMetrics, Histogram } from 'prom-client';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

/**
 * One registry per app instance (never prom-client's global one), so several
 * services can live in one test process.
 */
export function createRegistry(opts: { service: string; defaultMetrics?: boolean; labels?: Record<string, string> }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service, ...opts.labels });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/**
 * Serves GET /metrics from the given registry and records
 * http_request_duration_seconds{method,route,status_code} for every routed request.
 */
export const metricsPlugin: FastifyPluginAsync<{ registry: Registry }> = fp(
  async (app: FastifyInstance, opts: { registry: Registry }) => {
    const registry = opts.registry;
    app.decorate('metrics', registry);
    const httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests served, by method, route and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    });
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url;
      if (!route || route === '/metrics') return;
      httpDuration.observe(
        { method: req.method, route, status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    app.get('/metrics', { config: { otel: false } }, async (_req, reply) => {
      reply.header('content-type', registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'mr-metrics', fastify: '5.x' },
);
