import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Registry } from 'prom-client';
import { context } from '@opentelemetry/api';
import { createService } from '@mr/service-kit';
import { tracer } from '@mr/observability';
import { ClientRequest, ClientReply, ErrorReply, NotLiveReply, VmParams, VmStatus } from '@mr/vmft-protocol';
import { dualProtocolServerFactory, type ConnectionLimits } from '../dual-server.ts';
import { registerLogReceiver } from '../log-channel.ts';
import { ERR_UNKNOWN_VM, isNotLiveError, notLiveError, notLiveReply } from '../errors.ts';
import { VmDriver, type VmNodeOptions } from './driver.ts';

export interface NodeAppOptions extends Omit<VmNodeOptions, 'log' | 'registry'> {
  registry: Registry;
  logLevel?: string | false;
  telemetry?: boolean;
  /** Epoch a primary asks test-and-set for at start. */
  startEpoch?: number;
  /** Connection cap and timeouts of the node's port (default DEFAULT_CONNECTION_LIMITS). */
  connectionLimits?: Partial<ConnectionLimits> | undefined;
}

const JoinRequest = Type.Object(
  { nodeId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }), url: Type.String({ pattern: '^http://[^/\\s]+/?$', maxLength: 256 }) },
  { additionalProperties: false },
);

/**
 * A primary or backup node as a Fastify instance (HTTP/2 cleartext and
 * HTTP/1.1 on one port):
 *
 *   POST /v1/vms/:id/requests   client request → {value} once the output rule allows; 503 {live, reason} elsewhere
 *   GET  /v1/vms/:id            role, live, epoch, icount, log seqs, outputs held, peer, state hash
 *   POST /v1/vms/:id/log        the log channel (h2c stream, binary frames; backup side)     [peer credential]
 *   POST /v1/vms/:id/join       a new backup asks the live primary for state transfer         [peer credential]
 *                               (only from a configured peer URL: --peers)
 *   GET  /healthz, /metrics
 *
 * Call driver.start(url) once it listens (startNode does both).
 */
export async function buildNodeApp(opts: NodeAppOptions): Promise<{ app: FastifyInstance; driver: VmDriver }> {
  const app = await createService({
    name: 'vm-node',
    registry: opts.registry,
    token: opts.token,
    // The log channel and /join take the peer credential only; client routes never do.
    roleTokens: { peer: opts.peerToken },
    logLevel: opts.logLevel,
    telemetry: opts.telemetry,
    bodyLimit: 16 * 1024,
    fastify: {
      http2: true,
      forceCloseConnections: true,
      http2SessionTimeout: 600_000,
      serverFactory: dualProtocolServerFactory({ http2SessionTimeoutMs: 600_000, limits: opts.connectionLimits }),
    },
    health: () => {
      const s = driver.status();
      return { vm: opts.vmId, node: opts.nodeId, role: s.role, live: s.live };
    },
  });
  const driver = new VmDriver({ ...opts, log: app.log, registry: opts.registry }, opts.startEpoch ?? 1);
  driver.sink.nodeId = opts.nodeId;
  const t = tracer('vm-node');

  const checkVm = (id: string) => {
    if (id !== opts.vmId) throw ERR_UNKNOWN_VM(id);
  };

  app.post<{ Params: { id: string }; Body: ClientRequest }>('/v1/vms/:id/requests', {
    // Client traffic is high-rate: no per-request log lines (failures still log as warnings).
    logLevel: 'warn',
    schema: { params: VmParams, body: ClientRequest, response: { 200: ClientReply, 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const b = req.body;
    if ((b.op === 'put' || b.op === 'append') && b.value === undefined) {
      return reply.code(400).send({ statusCode: 400, code: 'MR_ERR_BAD_REQUEST', error: 'Bad Request', message: `op ${b.op} needs a value` });
    }
    const t0 = performance.now();
    const span = t.startSpan('vm.request', { attributes: { 'ft.vm': opts.vmId, 'ft.op': b.op, 'ft.client': b.clientId, 'ft.request': b.requestId } }, context.active());
    span.addEvent('received');
    try {
      const answer = await driver.request(b, span);
      driver.metrics.requests.inc({ op: b.op, outcome: 'ok' });
      driver.metrics.requestSeconds.observe({ op: b.op }, (performance.now() - t0) / 1000);
      return answer;
    } catch (err) {
      const e = err as Error & { statusCode?: number };
      span.recordException(e);
      driver.metrics.requests.inc({ op: b.op, outcome: e.statusCode === 503 ? 'not-live' : 'error' });
      if (e.statusCode === 503) reply.header('retry-after', '0');
      if (isNotLiveError(err)) return reply.code(503).send(notLiveReply(err));
      throw err;
    } finally {
      span.end();
    }
  });

  app.get<{ Params: { id: string } }>('/v1/vms/:id', {
    logLevel: 'warn',
    schema: { params: VmParams, response: { 200: VmStatus, '4xx': ErrorReply } },
  }, async (req) => {
    checkVm(req.params.id);
    return driver.status();
  });

  app.post<{ Params: { id: string }; Body: { nodeId: string; url: string } }>('/v1/vms/:id/join', {
    config: { auth: 'peer' },
    schema: { params: VmParams, body: JoinRequest, response: { 202: Type.Object({ epoch: Type.Integer(), icount: Type.Integer() }), '4xx': ErrorReply, 503: NotLiveReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    // Never stream state (or send the peer credential) to a URL that is not configured.
    driver.checkJoiner(req.body.nodeId, req.body.url);
    driver.catchUp();
    const nl = driver.notLive();
    if (nl) return reply.code(503).send(notLiveReply(notLiveError(nl)));
    const r = driver.join(req.body.nodeId, req.body.url.replace(/\/$/, ''));
    return reply.code(202).send(r);
  });

  const receiver = registerLogReceiver(app, { vmId: opts.vmId, sink: driver.sink });
  // A failed node takes no log stream: end the one it holds, so the primary sees it at once.
  driver.onFail = () => receiver.closeAll();
  app.addHook('preClose', async () => {
    receiver.closeAll();
    await driver.close();
  });
  return { app, driver };
}
