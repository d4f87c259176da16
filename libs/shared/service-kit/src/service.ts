import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifySchemaCompiler,
  type FastifyServerOptions,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { Type, type TSchema } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { metricsPlugin, fastifyOtelPlugin, loggerOptions } from '@mr/observability';
import { isCodedError } from '@mr/errors';
import { ERR_UNAUTHORIZED, ERR_NOT_FOUND, ERR_AUTH_CONFIG } from './errors.ts';

/**
 * Who may call a route (DESIGN.md, "Roles have their own credentials"):
 * - 'client': the client token (MR_TOKEN): job submitters, VM clients, status readers;
 * - 'worker': the worker credential (MR_WORKER_TOKEN): the coordinator's worker protocol;
 * - 'peer':   the peer credential (MR_PEER_TOKEN): VM node <-> node and node -> storage;
 * - 'public': no credential (/healthz, /metrics).
 * A route declares its role as `config: { auth: 'worker' }`; the default is 'client'.
 * One role's token is never accepted on another role's routes.
 */
export type AuthRole = 'client' | 'worker' | 'peer' | 'public';
export type RoleTokens = { worker?: string | undefined; peer?: string | undefined };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which credential the route requires (default 'client'); see AuthRole. */
    auth?: AuthRole;
  }
}

export interface ServiceOptions {
  /** Service name, used in logs and metric labels. */
  name: string;
  /** Client bearer token (MR_TOKEN); when set, every 'client' route requires it. */
  token?: string | undefined;
  /**
   * Tokens of the other roles. A 'worker' or 'peer' route requires its role's
   * token when one is set; registering such a route while `token` is set but
   * its role's token is not throws (a service must never fall back to the
   * client token for another role).
   */
  roleTokens?: RoleTokens;
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
  /** What GET /v1/version and the OpenAPI document name: the service's package version and, when known, its commit (see buildInfo). */
  build?: BuildInfo;
  /** Who may read GET /v1/version and GET /v1/openapi.json. Default 'client' (the storage node, which serves no client, says 'peer'). */
  aboutAuth?: AuthRole;
}

/** A service's build: its package version and the git commit it was built from, when the build said so. */
export interface BuildInfo {
  version: string;
  commit?: string | undefined;
}

/** A route as the service registered it (method, URL, role): what the OpenAPI document must list. */
export interface RegisteredRoute {
  method: string;
  url: string;
  auth: AuthRole;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered on this service so far (HEAD routes Fastify adds excluded). */
    registeredRoutes: readonly RegisteredRoute[];
  }
}

/** GET /v1/version's answer. */
export const VersionReply = Type.Object({
  name: Type.String(),
  version: Type.String(),
  commit: Type.Optional(Type.String()),
  node: Type.String(),
});

const COMMIT_RE = /^[0-9a-f]{7,40}$/;

/**
 * The build of a service, read once at start: `version` from the package.json
 * at `packageJson` (a file URL), `commit` from MR_GIT_COMMIT when it is a git
 * hash (a build or deploy script sets it, e.g. `MR_GIT_COMMIT=$(git rev-parse HEAD)`);
 * no git command runs.
 */
export function buildInfo(packageJson: URL, env: Record<string, string | undefined>): BuildInfo {
  const pkg: unknown = JSON.parse(readFileSync(packageJson, 'utf8'));
  const version = pkg && typeof pkg === 'object' && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  const commit = env['MR_GIT_COMMIT'];
  return commit && COMMIT_RE.test(commit) ? { version, commit } : { version };
}

/**
 * What createService returns: a Fastify instance with the TypeBox type
 * provider, so a route's `req.body`, `req.params` and `req.query` have the
 * types of its schemas. Route files export `FastifyPluginAsyncTypebox`
 * plugins and register on it.
 */
export type Service = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** The Authorization header for a bearer token, or nothing without one. */
export function authHeader(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

const ROLE_ENV: Record<'worker' | 'peer', string> = { worker: 'MR_WORKER_TOKEN', peer: 'MR_PEER_TOKEN' };

/**
 * The credentials a process needs, read once from its environment at start:
 * `{ token, roleTokens }`, or `{ error }` when MR_TOKEN is set but one of the
 * role tokens this process needs is not (or equals MR_TOKEN), so it must not start.
 */
export function credentialsFromEnv(
  env: Record<string, string | undefined>,
  roles: readonly ('worker' | 'peer')[],
): { token: string | undefined; roleTokens: RoleTokens; error?: undefined } | { error: string } {
  const token = env['MR_TOKEN'] || undefined;
  const roleTokens: RoleTokens = {};
  for (const role of roles) {
    const v = env[ROLE_ENV[role]] || undefined;
    if (token && !v) return { error: `MR_TOKEN is set but ${ROLE_ENV[role]} is not: set the ${role} credential too (it must differ from MR_TOKEN)` };
    if (token && v === token) return { error: `${ROLE_ENV[role]} must differ from MR_TOKEN (a client must not hold the ${role} credential)` };
    roleTokens[role] = v;
  }
  return { token, roleTokens };
}

/**
 * Schema validators without type coercion for JSON bodies: `"reduces": "3"`
 * or `null` where a number is due is refused, not read as 3 or 0. URL
 * parameters, query strings and headers are strings on the wire, so they
 * alone are coerced (":block" -> integer, "?count=2" -> 2). Two Ajv
 * instances with Fastify's defaults otherwise (ajv-formats, defaults
 * applied, no extra properties removed, first error only).
 */
export function validatorCompiler(): FastifySchemaCompiler<TSchema> {
  const ajv = (coerceTypes: false | 'array'): Ajv => {
    const a = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, addUsedSchema: false });
    addFormats.default(a);
    return a;
  };
  const strict = ajv(false);
  const strings = ajv('array');
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : strings).compile(schema);
}

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
export async function createService(opts: ServiceOptions): Promise<Service> {
  const logger = opts.logLevel === false ? false : loggerOptions({ service: opts.name, level: opts.logLevel ?? 'info' });
  const options: FastifyServerOptions = { logger, bodyLimit: opts.bodyLimit ?? 1024 * 1024, ...(opts.fastify ?? {}) };
  const app: Service = Fastify(options).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler());

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

  const tokens: Record<Exclude<AuthRole, 'public'>, string | undefined> = {
    client: opts.token || undefined,
    worker: opts.roleTokens?.worker || undefined,
    peer: opts.roleTokens?.peer || undefined,
  };
  app.addHook('onRoute', (route) => {
    const role = route.config?.auth ?? 'client';
    if (role === 'public' || role === 'client' || tokens[role] || !tokens.client) return;
    throw ERR_AUTH_CONFIG(`${route.method} ${route.url}`, role);
  });
  if (tokens.client || tokens.worker || tokens.peer) {
    app.addHook('onRequest', async (req) => {
      // Unknown routes (404) count as client routes, so they need the client token too.
      const role = roleOf(req.routeOptions.url, req.routeOptions.config);
      if (role === 'public') return;
      const token = tokens[role];
      if (token && !tokenMatches(req.headers.authorization, token)) throw ERR_UNAUTHORIZED(CREDENTIAL[role]);
    });
  }

  const build = opts.build ?? { version: '0.0.0' };
  const routes: RegisteredRoute[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    const auth = roleOf(route.url, route.config);
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, auth });
    }
  });
  // Before every route, so that the document lists them all; its security names the credential each route takes.
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: opts.name, version: build.version },
      components: {
        securitySchemes: {
          client: { type: 'http', scheme: 'bearer', description: 'the client token (MR_TOKEN)' },
          worker: { type: 'http', scheme: 'bearer', description: 'the worker credential (MR_WORKER_TOKEN)' },
          peer: { type: 'http', scheme: 'bearer', description: 'the peer credential (MR_PEER_TOKEN)' },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const auth = roleOf(route.url, route.config);
      return { schema: { ...schema, security: auth === 'public' ? [] : [{ [auth]: [] }] }, url };
    },
  });

  await app.register(metricsPlugin, { registry: opts.registry });
  app.get('/healthz', { config: { otel: false, auth: 'public' } }, async () => ({ status: 'ok', service: opts.name, ...(opts.health?.() ?? {}) }));
  const about = { auth: opts.aboutAuth ?? 'client' } as const;
  app.get('/v1/version', { config: about, schema: { response: { 200: VersionReply } } }, async () => ({ name: opts.name, ...build, node: process.versions.node }));
  // The OpenAPI 3 document of every route of this service, generated from their schemas.
  app.get('/v1/openapi.json', { config: { ...about, otel: false } }, async () => app.swagger());
  return app;
}

/** A route's role: its config.auth, else 'client'; /metrics comes from @mr/observability, which cannot name a role: it is public. */
function roleOf(url: string | undefined, config: { auth?: AuthRole } | undefined): AuthRole {
  return url === '/metrics' ? 'public' : (config?.auth ?? 'client');
}

const CREDENTIAL: Record<Exclude<AuthRole, 'public'>, string> = {
  client: 'the client token (MR_TOKEN)',
  worker: 'the worker credential (MR_WORKER_TOKEN)',
  peer: 'the peer credential (MR_PEER_TOKEN)',
};

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
