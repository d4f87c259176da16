import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

/**
 * The version of this build: the monorepo's version (every package carries
 * the same one), read once from this package's manifest (next to src/, or
 * next to the compiled dist/src/).
 */
export const BUILD_VERSION: string = readVersion();

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const m = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (m.name === '@mr/observability' && m.version) return m.version;
    } catch {
      // not there: try the next place
    }
  }
  return '0.0.0-unknown';
}

export interface RegistryOptions {
  /** Service name: the `service` label of every sample (mr-coordinator, mr-worker, vm-storage, vm-node). */
  service: string;
  /** Node's default process_* and nodejs_* metrics. Default true. */
  defaultMetrics?: boolean;
  /** More labels on every sample (vm-node: node and vm). */
  labels?: Record<string, string>;
}

/**
 * One registry per app instance (never prom-client's global one), so several
 * services can live in one test process. Every registry carries
 * `mr_build_info{version,nodejs} 1` (Prometheus' `*_build_info` convention;
 * one family for every service of the `mr` build, told apart by `service`).
 */
export function createRegistry(opts: RegistryOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service, ...opts.labels });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const info = new Gauge({ name: 'mr_build_info', help: 'Always 1: the version of the mr build this service runs, and its Node.js version', labelNames: ['version', 'nodejs'] as const, registers: [registry] });
  info.set({ version: BUILD_VERSION, nodejs: process.version }, 1);
  return registry;
}

/**
 * Sets every combination of the given label values to 0 (without changing
 * one that already counted), so that a labelled counter is exported from the
 * start and `increase()`/`rate()` see its first increment: a series that
 * appears at 1 looks to Prometheus like it always was 1.
 */
export function zeroCounter<L extends string>(counter: Counter<L>, values: { readonly [K in L]: readonly string[] }): void {
  const names = Object.keys(values) as L[];
  const walk = (i: number, labels: Partial<Record<L, string>>): void => {
    if (i === names.length) {
      counter.inc(labels as Record<L, string>, 0);
      return;
    }
    const name = names[i]!;
    for (const v of values[name]) walk(i + 1, { ...labels, [name]: v });
  };
  walk(0, {});
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/** The `route` label of requests that matched no route (404s), so that unknown URLs cannot grow the label set. */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Serves GET /metrics from the given registry and records, for every request
 * but /metrics itself, http_request_duration_seconds{method,route,status_code}
 * (a histogram: its _count is the request count by route and status). `route`
 * is the route's pattern (`/v1/jobs/:id`), never the raw URL.
 */
export const metricsPlugin: FastifyPluginAsync<{ registry: Registry }> = fp(
  async (app: FastifyInstance, opts: { registry: Registry }) => {
    const registry = opts.registry;
    app.decorate('metrics', registry);
    const httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests served, by method, route pattern and status code (_count: requests)',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    });
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? UNMATCHED_ROUTE;
      if (route === '/metrics') return;
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

export interface MetricsServer {
  /** Base URL (http://host:port); scrape `${url}/metrics`. */
  url: string;
  close(): Promise<void>;
}

/**
 * A minimal HTTP server for a process that serves no other HTTP (the
 * worker): GET /metrics (the registry, Prometheus text format) and
 * GET /healthz; anything else 404, any other method 405. Public like every
 * service's /metrics; the caller applies the bind rule (loopback unless
 * MR_TOKEN is set).
 */
export async function serveMetrics(registry: Registry, opts: { host: string; port: number }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500).end(),
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval: one connection per scraper
  server.headersTimeout = 10_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
