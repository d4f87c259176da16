/**
 * The dashboard service: the page and its assets, a JSON API over what the
 * collectors hold (cluster state, metric series, traces), an SSE stream of
 * live updates, job submit/cancel forwarded to the coordinator, and the OTLP
 * receiver (POST /v1/traces).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { Counter, Gauge } from 'prom-client';
import { createService, Type, type Static } from '@mr/service-kit';
import { createRegistry } from '@mr/observability';
import { JobSubmit } from '@mr/mapreduce-protocol';
import { Cluster, untraced } from './cluster.ts';
import { Scraper, SERIES, type ScrapeTarget } from './scrape/scraper.ts';
import { TraceStore, type TraceLimits } from './otlp/store.ts';
import { decodeJson, decodeProtobuf, ExportResponse, type SpanRecord } from './otlp/decode.ts';
import { Gate } from './auth.ts';
import { loadAssets, securityHeaders } from './assets.ts';
import { failoverHistory } from './failovers.ts';
import { fromSpans, fromTasks, timeline } from './timeline.ts';
import { ERR_NOT_CONFIGURED, ERR_OTLP_MEDIA_TYPE, ERR_TRACE_NOT_FOUND, ERR_UPSTREAM } from './errors.ts';

export interface DashboardOptions {
  coordinator?: string | undefined;
  vmNodes: string[];
  storage?: string | undefined;
  vmId: string;
  token?: string | undefined;
  pollMs?: number;
  scrapeMs?: number;
  /** Points kept per chart series (scrapeMs x this = the window). */
  retentionPoints?: number;
  traceLimits?: Partial<TraceLimits>;
  /** Largest OTLP request body (bytes). */
  otlpBodyMax?: number;
  /** Open live-update streams at most. */
  maxStreams?: number;
  logLevel?: string | false;
  telemetry?: boolean;
  /** Directory of the built UI (default: the package's dist/ui). */
  assetsDir?: string;
}

export const DEFAULTS = { pollMs: 1000, scrapeMs: 2000, retentionPoints: 300, otlpBodyMax: 8 * 1024 * 1024, maxStreams: 32 } as const;

const TraceQuery = Type.Object({
  service: Type.Optional(Type.String({ maxLength: 200 })),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  minMs: Type.Optional(Type.Number({ minimum: 0 })),
  errors: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
});
const TraceParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{32}$' }) });
const JobParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const JobsQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 20 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
});

export interface Dashboard {
  app: FastifyInstance;
  cluster: Cluster;
  scraper: Scraper;
  traces: TraceStore;
  /** Starts polling and scraping (listen separately). */
  start(): void;
}

export async function buildDashboard(o: DashboardOptions): Promise<Dashboard> {
  const registry = createRegistry({ service: 'mr-dashboard' });
  const otlpBodyMax = o.otlpBodyMax ?? DEFAULTS.otlpBodyMax;
  const app = await createService({
    name: 'mr-dashboard',
    token: o.token,
    registry,
    logLevel: o.logLevel ?? 'info',
    telemetry: o.telemetry ?? false,
    bodyLimit: otlpBodyMax,
  });
  const dispatcher = new Agent({ connections: 16, keepAliveTimeout: 10_000 });
  const gate = new Gate(o.token);
  const assets = loadAssets(o.assetsDir);
  const traces = new TraceStore(o.traceLimits);
  const cluster = new Cluster({ coordinator: o.coordinator, vmNodes: o.vmNodes, storage: o.storage, vmId: o.vmId, token: o.token, pollMs: o.pollMs ?? DEFAULTS.pollMs, dispatcher });
  const targets: ScrapeTarget[] = [
    ...(o.coordinator ? [{ job: 'coordinator', url: o.coordinator, name: 'coordinator' }] : []),
    ...o.vmNodes.map((url, i) => ({ job: 'vm-node', url, name: `node ${i + 1}` })),
    ...(o.storage ? [{ job: 'storage', url: o.storage, name: 'storage' }] : []),
  ];
  const scraper = new Scraper({ targets, intervalMs: o.scrapeMs ?? DEFAULTS.scrapeMs, retentionPoints: o.retentionPoints ?? DEFAULTS.retentionPoints, token: o.token, dispatcher });

  const spansIn = new Counter({ name: 'dashboard_otlp_spans_total', help: 'Spans received over OTLP', registers: [registry] });
  const dropped = new Counter({ name: 'dashboard_otlp_spans_dropped_total', help: 'Spans dropped by the trace store bounds (oldest traces first)', registers: [registry] });
  const refused = new Counter({ name: 'dashboard_otlp_requests_refused_total', help: 'OTLP requests refused (bad payload, media type or size)', registers: [registry] });
  new Gauge({ name: 'dashboard_traces', help: 'Traces held in memory', registers: [registry], collect() { this.set(traces.size.traces); } });
  new Gauge({ name: 'dashboard_spans', help: 'Spans held in memory', registers: [registry], collect() { this.set(traces.size.spans); } });
  new Gauge({ name: 'dashboard_span_bytes', help: 'Estimated bytes of spans held in memory', registers: [registry], collect() { this.set(traces.size.bytes); } });

  // ---------------------------------------------------------------- OTLP receiver
  app.addContentTypeParser(['application/x-protobuf', 'application/protobuf'], { parseAs: 'buffer', bodyLimit: otlpBodyMax }, (_req, body, done) => done(null, body));
  app.post('/v1/traces', { config: { otel: false }, schema: { body: Type.Unknown() } }, async (req, reply) => {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let spans;
    try {
      if (ct === 'application/x-protobuf' || ct === 'application/protobuf') spans = decodeProtobuf(req.body as Buffer);
      else if (ct === 'application/json') spans = decodeJson(req.body);
      else throw ERR_OTLP_MEDIA_TYPE(ct);
    } catch (err) {
      refused.inc();
      throw err;
    }
    const before = traces.droppedSpans;
    traces.add(spans, Date.now());
    spansIn.inc(spans.length);
    dropped.inc(traces.droppedSpans - before);
    if (ct === 'application/json') return reply.send({ partialSuccess: {} });
    return reply.header('content-type', 'application/x-protobuf').send(Buffer.from(ExportResponse.encode(ExportResponse.create({})).finish()));
  });
  app.addHook('onError', async (req, _reply, err) => {
    if (req.routeOptions.url === '/v1/traces' && (err as { statusCode?: number }).statusCode === 413) refused.inc();
  });

  // Set once the live-update route is registered.
  let onCluster = () => {};
  let onScrape = () => {};

  // ---------------------------------------------------------------- pages and API (behind the gate)
  await app.register(async (ui) => {
    ui.addHook('onRequest', gate.check);
    ui.addHook('onSend', async (_req, reply) => {
      for (const [k, v] of Object.entries(securityHeaders)) reply.header(k, v);
    });
    const pub = { auth: 'public' as const, otel: false };

    for (const path of ['/', '/jobs', '/jobs/:id', '/workers', '/vm', '/charts', '/traces', '/traces/:id']) {
      ui.get(path, { config: pub }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(assets.index));
    }
    ui.get('/assets/:file', { config: pub, schema: { params: Type.Object({ file: Type.String({ pattern: '^[a-z0-9.-]{1,64}$' }) }) } }, async (req, reply) => {
      const a = assets.files.get((req.params as { file: string }).file);
      if (!a) return reply.status(404).send({ statusCode: 404, code: 'DASH_ERR_NO_ASSET', error: 'Not Found', message: 'no such asset' });
      return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
    });

    ui.get('/api/snapshot', { config: pub }, async () => snapshot());
    ui.get('/api/series', { config: pub }, async () => series());
    ui.get('/api/jobs', { config: pub, schema: { querystring: JobsQuery } }, async (req) => {
      const q = req.query as Static<typeof JobsQuery>;
      const all = cluster.snapshot.jobs.filter((j) => !q.state || j.state === q.state);
      const offset = q.offset ?? 0;
      return { total: all.length, offset, jobs: all.slice(offset, offset + (q.limit ?? 100)) };
    });
    ui.get('/api/jobs/:id', { config: pub, schema: { params: JobParams } }, async (req) => {
      const { id } = req.params as Static<typeof JobParams>;
      const coord = needCoordinator();
      const job = await upstream('GET', `${coord}/v1/jobs/${id}`);
      if (job.status !== 200) return passError(job);
      const tasks = await upstream('GET', `${coord}/v1/jobs/${id}/tasks`);
      const traceId = traces.findByAttribute('mr.job.id', id) ?? traces.findByAttribute('mr.job_id', id);
      const names = new Map<string, string>();
      const byPid = new Map<string, string>();
      for (const w of cluster.snapshot.workerHistory) {
        names.set(w.id, w.name);
        if (w.pid !== undefined) byPid.set(`pid ${w.pid}`, w.name);
      }
      let tl = timeline('none', []);
      if (tasks.status === 200) tl = timeline('coordinator', fromTasks(tasks.body, (wid) => names.get(wid)));
      else if (traceId) {
        const lane = (sp: SpanRecord) => {
          const wid = sp.attributes['mr.worker.id'];
          return (typeof wid === 'string' ? names.get(wid) ?? wid : undefined) ?? (sp.instance ? byPid.get(sp.instance) ?? sp.instance : sp.service);
        };
        tl = timeline('traces', fromSpans(traces.get(traceId) ?? [], id, lane));
      }
      return { job: job.body, timeline: tl, traceId: traceId ?? null };
    });
    ui.post('/api/jobs', { config: pub, schema: { body: JobSubmit } }, async (req, reply) => {
      const r = await upstream('POST', `${needCoordinator()}/v1/jobs`, req.body);
      return reply.status(r.status).send(r.body);
    });
    ui.delete('/api/jobs/:id', { config: pub, schema: { params: JobParams } }, async (req, reply) => {
      const { id } = req.params as Static<typeof JobParams>;
      const r = await upstream('DELETE', `${needCoordinator()}/v1/jobs/${id}`);
      return reply.status(r.status).send(r.body);
    });
    ui.get('/api/traces', { config: pub, schema: { querystring: TraceQuery } }, async (req) => {
      const q = req.query as Static<typeof TraceQuery>;
      return { size: traces.size, limits: traces.limits, dropped: { spans: traces.droppedSpans, traces: traces.droppedTraces }, services: traces.services(), traces: traces.list({ service: q.service, name: q.name, minDurationMs: q.minMs, errorsOnly: q.errors, limit: q.limit ?? 100 }) };
    });
    ui.get('/api/traces/:id', { config: pub, schema: { params: TraceParams } }, async (req) => {
      const { id } = req.params as Static<typeof TraceParams>;
      const spans = traces.get(id);
      if (!spans) throw ERR_TRACE_NOT_FOUND(id);
      return { traceId: id, spans };
    });

    // Live updates: one event per cluster poll and per scrape round.
    const streams = new Set<(event: string, data: unknown) => void>();
    ui.get('/api/events', { config: pub }, async (req, reply) => {
      if (streams.size >= (o.maxStreams ?? DEFAULTS.maxStreams)) {
        return reply.status(503).send({ statusCode: 503, code: 'DASH_ERR_TOO_MANY_STREAMS', error: 'Service Unavailable', message: `at most ${o.maxStreams ?? DEFAULTS.maxStreams} live streams` });
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', ...securityHeaders });
      const send = (event: string, data: unknown) => {
        // A slow reader is not buffered for without bound: it misses updates until it drains.
        if (res.destroyed || res.writableEnded || res.writableLength > 1024 * 1024) return;
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      // A reader that went away mid-write is no error of ours.
      res.on('error', () => {});
      streams.add(send);
      open.add(res);
      send('snapshot', snapshot());
      send('series', series());
      const keepAlive = setInterval(() => send('ping', {}), 15_000);
      keepAlive.unref();
      req.raw.on('close', () => {
        streams.delete(send);
        open.delete(res);
        clearInterval(keepAlive);
      });
    });
    // Streams end when the service closes (close() would otherwise wait for the browsers).
    const open = new Set<ServerResponse>();
    ui.addHook('preClose', async () => {
      for (const res of open) res.end();
    });
    const broadcast = (event: string, data: () => unknown) => {
      if (streams.size === 0) return;
      const d = data();
      for (const s of streams) s(event, d);
    };
    onCluster = () => broadcast('snapshot', snapshot);
    onScrape = () => broadcast('series', series);
  });

  function needCoordinator(): string {
    if (!o.coordinator) throw ERR_NOT_CONFIGURED('--coordinator');
    return o.coordinator;
  }

  /** A request to the coordinator; reads (the views' polling) are not traced, submits and cancels are. */
  async function upstream(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    try {
      const r = await request(url, {
        method,
        dispatcher,
        headersTimeout: 5000,
        bodyTimeout: 5000,
        headers: { ...(method === 'GET' ? untraced() : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await r.body.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = { message: text.slice(0, 200) };
      }
      return { status: r.statusCode, body: parsed };
    } catch (err) {
      throw ERR_UPSTREAM(new URL(url).origin, (err as Error).message);
    }
  }

  function passError(r: { status: number; body: unknown }): never {
    const b = (r.body ?? {}) as { code?: string; message?: string };
    const e = new Error(b.message ?? `HTTP ${r.status}`) as Error & { statusCode: number; code: string };
    e.statusCode = r.status >= 400 && r.status < 600 ? r.status : 502;
    e.code = b.code ?? 'DASH_ERR_UPSTREAM';
    throw e;
  }

  function snapshot() {
    const c = cluster.snapshot;
    return {
      ...c,
      jobs: c.jobs.slice(0, 100),
      jobsTotal: c.jobs.length,
      events: c.events.slice(0, 50),
      vm: { ...c.vm, failovers: failoverHistory(c.vm.failovers, traces).slice(0, 20) },
      monitors: scraper.matching(/invariant|violation/i),
      targets: scraper.states.map((s) => ({ name: s.target.name, job: s.target.job, url: s.target.url, up: s.up, lastScrapeAt: s.lastScrapeAt, error: s.lastError })),
      traces: { ...traces.size, dropped: traces.droppedSpans },
      auth: gate.required,
    };
  }

  function series() {
    return { defs: SERIES, times: scraper.times, values: scraper.values, intervalMs: scraper.opts.intervalMs };
  }

  app.addHook('onClose', async () => {
    cluster.stop();
    scraper.stop();
    await dispatcher.close();
  });

  // Sign-in (only with a token): the form is a page of its own; the POST sets the session cookie.
  app.get('/login', { config: { auth: 'public', otel: false } }, async (_req, reply) => {
    for (const [k, v] of Object.entries(securityHeaders)) reply.header(k, v);
    return reply.type('text/html; charset=utf-8').send(assets.login);
  });
  const Login = Type.Object({ token: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });
  app.post('/login', { config: { auth: 'public', otel: false }, schema: { body: Login } }, async (req, reply) => {
    const { token } = req.body as Static<typeof Login>;
    if (!gate.tokenMatches(token)) return reply.status(401).send({ statusCode: 401, code: 'DASH_ERR_BAD_TOKEN', error: 'Unauthorized', message: 'that is not the client token' });
    return reply.header('set-cookie', gate.sessionCookie()).send({ ok: true });
  });

  return {
    app,
    cluster,
    scraper,
    traces,
    start() {
      cluster.start(() => onCluster());
      scraper.start(() => onScrape());
    },
  };
}
