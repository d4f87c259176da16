import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions, type FastifyError } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { metricsPlugin, fastifyOtelPlugin, loggerOptions } from '@mr/observability';
import { isCodedError } from '@mr/errors';
import { ERR_UNAUTHORIZED, ERR_NOT_FOUND } from './errors.ts';

export interface ServiceOptions {
  /** Service name, used in logs and metric labels. */
  name: string;
  /** Bearer token; when set, every route except /healthz and /metrics requires it. */
  token?: string | undefined;
  /** Prometheus registry of this instance (see createRegistry). */
  registry: Registry;
  /** Fastify logger: false to silence, or a level. Default: 'info'. */
  logLevel?: string | false;
  /** Request body limit in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Whether the OTel SDK was started (adds @fastify/otel). */
  telemetry?: boolean;
  /** Extra Fastify options (http2 and friends). */
  fastify?: Partial<FastifyServerOptions> & Record<string, unknown>;
  /** Extra health details for /healthz. */
  health?: () => Record<string, unknown>;
}

export type Service = FastifyInstance & { withTypeProvider(): FastifyInstance };

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header || !header.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A Fastify instance with the house defaults: TypeBox schemas, coded JSON
 * errors ({statusCode, code, error, message}), bearer-token auth, /healthz,
 * /metrics and (when enabled) OpenTelemetry spans. Register the app's routes
 * on it, then listen.
 */
export async function createService(opts: ServiceOptions): Promise<FastifyInstance> {
  const logger = opts.logLevel === false ? false : loggerOptions({ service: opts.name, level: opts.logLevel ?? 'info' });
  const app = Fastify({
    logger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    ...(opts.fastify ?? {}),
  } as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;

  const otel = await fastifyOtelPlugin(opts.telemetry ?? false);
  if (otel) await app.register(otel);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (err.validation) {
      return reply.status(400).send({ statusCode: 400, code: 'MR_ERR_BAD_REQUEST', error: 'Bad Request', message: err.message });
    }
    if (status < 500 || isCodedError(err)) {
      if (status >= 500) req.log.error({ err }, 'request failed');
      return reply.status(status).send({ statusCode: status, code: err.code ?? 'MR_ERR', error: errorName(status), message: err.message });
    }
    req.log.error({ err }, 'unexpected error');
    return reply.status(500).send({ statusCode: 500, code: 'MR_ERR_INTERNAL', error: 'Internal Server Error', message: 'internal error (see the service log)' });
  });
  app.setNotFoundHandler((req, reply) => {
    const e = ERR_NOT_FOUND(req.method, req.url.split('?')[0]);
    return reply.status(404).send({ statusCode: 404, code: e.code, error: 'Not Found', message: e.message });
  });

  if (opts.token) {
    const token = opts.token;
    app.addHook('onRequest', async (req) => {
      const url = req.url.split('?')[0];
      if (url === '/healthz' || url === '/metrics') return;
      if (!tokenMatches(req.headers.authorization, token)) throw ERR_UNAUTHORIZED();
    });
  }

  await app.register(metricsPlugin, { registry: opts.registry });
  app.get('/healthz', { config: { otel: false } }, async () => ({ status: 'ok', service: opts.name, ...(opts.health?.() ?? {}) }));
  return app;
}

function errorName(status: number): string {
  switch (status) {
    case 400: return 'Bad Request';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'Not Found';
    case 409: return 'Conflict';
    case 413: return 'Payload Too Large';
    case 415: return 'Unsupported Media Type';
    case 422: return 'Unprocessable Entity';
    case 429: return 'Too Many Requests';
    case 503: return 'Service Unavailable';
    default: return status >= 500 ? 'Internal Server Error' : 'Error';
  }
}

/**
 * The address rule of DESIGN.md: without a token a service binds to loopback
 * only. Returns an error message when the combination is refused.
 */
export function checkBind(host: string, token: string | undefined): string | undefined {
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  if (!token && !loopback) return `refusing to listen on ${host} without MR_TOKEN: set MR_TOKEN or bind to 127.0.0.1`;
  return undefined;
}
