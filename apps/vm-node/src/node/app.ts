import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { Registry } from 'prom-client';
import { context } from '@opentelemetry/api';
import { createService } from '@mr/service-kit';
import { tracer } from '@mr/observability';
import { ClientRequest, ClientReply, ErrorReply, FT_CODES, NotLiveReply, SessionParams, SessionReply, VmParams, VmStatus } from '@mr/vmft-protocol';
import { KV_LIMITS } from '@mr/vmft-guests';
import { dualProtocolServerFactory, type ConnectionLimits } from '../dual-server.ts';
import { registerLogReceiver } from '../log-channel.ts';
import { ERR_UNKNOWN_VM, isNotLiveError, notLiveError, notLiveReply } from '../errors.ts';
import { VmDriver, type VmNodeOptions } from './driver.ts';
import type { KvAnswer, KvRequest } from './kv-requests.ts';

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
 *   POST /v1/vms/:id/sessions   open a client session (a guest request) → 201 {session, maxOutstanding, maxSessions}
 *   DELETE /v1/vms/:id/sessions/:session   close it → 204
 *   POST /v1/vms/:id/requests   client request {session, seq, ackBelow, op, key, value?} → {value} once the
 *                               output rule allows; 503 {live, reason} elsewhere; 4xx session errors
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

  /** Hands one request to the guest; maps a node that is not live to a 503 naming the live one. */
  const serve = async (r: KvRequest, reply: FastifyReply, attrs: Record<string, string | number>): Promise<KvAnswer | FastifyReply> => {
    const t0 = performance.now();
    const span = t.startSpan('vm.request', { attributes: { 'ft.vm': opts.vmId, 'ft.op': r.op, ...attrs } }, context.active());
    span.addEvent('received');
    try {
      const answer = await driver.request(r, span);
      driver.metrics.requests.inc({ op: r.op, outcome: 'ok' });
      driver.metrics.requestSeconds.observe({ op: r.op }, (performance.now() - t0) / 1000);
      return answer;
    } catch (err) {
      const e = err as Error & { statusCode?: number };
      span.recordException(e);
      driver.metrics.requests.inc({ op: r.op, outcome: e.statusCode === 503 ? 'not-live' : 'error' });
      if (e.statusCode === 503) reply.header('retry-after', '0');
      if (isNotLiveError(err)) return reply.code(503).send(notLiveReply(err));
      throw err;
    } finally {
      span.end();
    }
  };
  const badRequest = (reply: FastifyReply, code: string, message: string) => reply.code(400).send({ statusCode: 400, code, error: 'Bad Request', message });

  app.post<{ Params: { id: string }; Body: ClientRequest }>('/v1/vms/:id/requests', {
    // Client traffic is high-rate: no per-request log lines (failures still log as warnings).
    logLevel: 'warn',
    schema: { params: VmParams, body: ClientRequest, response: { 200: ClientReply, 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const { session, seq, ackBelow, op, key, value } = req.body;
    if ((op === 'put' || op === 'append') && value === undefined) return badRequest(reply, 'MR_ERR_BAD_REQUEST', `op ${op} needs a value`);
    if (session === undefined) {
      if (op !== 'get') return badRequest(reply, FT_CODES.noSession, `op ${op} needs a session (open one with POST /v1/vms/${opts.vmId}/sessions), a seq and ackBelow`);
      if (seq !== undefined || ackBelow !== undefined) return badRequest(reply, FT_CODES.noSession, 'seq and ackBelow belong to a session: send session too');
      return serve({ op, session: 0, seq: 0, ackBelow: 0, key }, reply, {});
    }
    if (seq === undefined || ackBelow === undefined) return badRequest(reply, FT_CODES.noSession, 'a session request needs seq and ackBelow');
    if (ackBelow > seq) return badRequest(reply, FT_CODES.noSession, `ackBelow ${ackBelow} is above seq ${seq}: ackBelow is the lowest seq whose answer the client has not received`);
    return serve({ op, session, seq, ackBelow, key, value }, reply, { 'ft.session': session, 'ft.seq': seq });
  });

  app.post<{ Params: { id: string } }>('/v1/vms/:id/sessions', {
    schema: { params: VmParams, response: { 201: SessionReply, 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const a = await serve({ op: 'open-session' }, reply, {});
    if (!('value' in a)) return a;
    return reply.code(201).send({ session: Number(a.value), maxOutstanding: KV_LIMITS.maxOutstanding, maxSessions: KV_LIMITS.maxSessions });
  });

  app.delete<{ Params: { id: string; session: number } }>('/v1/vms/:id/sessions/:session', {
    schema: { params: SessionParams, response: { 204: Type.Null(), 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const a = await serve({ op: 'close-session', session: req.params.session }, reply, { 'ft.session': req.params.session });
    if (!('value' in a)) return a;
    return reply.code(204).send();
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
