/**
 * The client routes of a VM node: guest requests and their sessions. Each
 * handler maps the driver's answer to a reply; a node that is not live
 * answers 503 naming the live node (NotLiveReply).
 *
 *   POST   /v1/vms/:id/sessions            open a session → 201 {session, maxOutstanding, maxSessions}
 *   DELETE /v1/vms/:id/sessions/:session   close it → 204
 *   POST   /v1/vms/:id/requests            {session, seq, ackBelow, op, key, value?} → {value} once the output rule allows
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { context } from '@opentelemetry/api';
import { tracer } from '@mr/observability';
import { ClientRequest, ClientReply, ErrorReply, FT_CODES, NotLiveReply, SessionParams, SessionReply, VmParams } from '@mr/vmft-protocol';
import { KV_LIMITS } from '@mr/vmft-guests';
import { ERR_UNKNOWN_VM, isNotLiveError, notLiveReply } from '../../errors.ts';
import type { VmDriver } from '../driver.ts';
import type { KvAnswer, KvRequest } from '../kv-requests.ts';
import { nowMs } from '../tracing.ts';

export interface NodeRouteOptions {
  vmId: string;
  driver: VmDriver;
}

/** What a guest request came to: the guest's answer, or the 503 body of a node that is not live. */
type Served = { answer: KvAnswer } | { notLive: ReturnType<typeof notLiveReply> };

const requestRoutes: FastifyPluginAsyncTypebox<NodeRouteOptions> = async (app, { vmId, driver }) => {
  const t = tracer('vm-node');

  /** Hands one request to the guest; a node that is not live comes back as `notLive`. Every 503 says retry-after 0. */
  const serve = async (r: KvRequest, reply: { header(name: string, value: string): unknown }, attrs: Record<string, string | number>): Promise<Served> => {
    const t0 = performance.now();
    const receivedAt = nowMs();
    const span = t.startSpan('vm.request', { startTime: receivedAt, attributes: { 'ft.vm.id': vmId, 'ft.node.id': driver.opts.nodeId, 'ft.op': r.op, ...attrs } }, context.active());
    try {
      const answer = await driver.request(r, span, receivedAt);
      driver.metrics.requests.inc({ op: r.op, outcome: 'ok' });
      driver.metrics.requestSeconds.observe({ op: r.op }, (performance.now() - t0) / 1000);
      return { answer };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      span.recordException(e);
      const unavailable = 'statusCode' in e && e.statusCode === 503;
      driver.metrics.requests.inc({ op: r.op, outcome: unavailable ? 'not-live' : 'error' });
      if (unavailable) reply.header('retry-after', '0');
      if (isNotLiveError(err)) return { notLive: notLiveReply(err) };
      throw err;
    } finally {
      span.end(nowMs());
    }
  };
  const badRequest = (code: string, message: string) => ({ statusCode: 400, code, error: 'Bad Request', message });
  const checkVm = (id: string): void => {
    if (id !== vmId) throw ERR_UNKNOWN_VM(id);
  };

  app.post('/v1/vms/:id/requests', {
    // Client traffic is high-rate: no per-request log lines (failures still log as warnings).
    logLevel: 'warn',
    schema: { params: VmParams, body: ClientRequest, response: { 200: ClientReply, 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const { session, seq, ackBelow, op, key, value } = req.body;
    if ((op === 'put' || op === 'append') && value === undefined) return reply.code(400).send(badRequest('MR_ERR_BAD_REQUEST', `op ${op} needs a value`));
    let r: KvRequest;
    let attrs: Record<string, number> = {};
    if (session === undefined) {
      if (op !== 'get') return reply.code(400).send(badRequest(FT_CODES.noSession, `op ${op} needs a session (open one with POST /v1/vms/${vmId}/sessions), a seq and ackBelow`));
      if (seq !== undefined || ackBelow !== undefined) return reply.code(400).send(badRequest(FT_CODES.noSession, 'seq and ackBelow belong to a session: send session too'));
      r = { op, session: 0, seq: 0, ackBelow: 0, key };
    } else {
      if (seq === undefined || ackBelow === undefined) return reply.code(400).send(badRequest(FT_CODES.noSession, 'a session request needs seq and ackBelow'));
      if (ackBelow > seq) {
        return reply.code(400).send(badRequest(FT_CODES.noSession, `ackBelow ${ackBelow} is above seq ${seq}: ackBelow is the lowest seq whose answer the client has not received`));
      }
      r = { op, session, seq, ackBelow, key, value };
      attrs = { 'ft.session.id': session, 'ft.session.seq': seq };
    }
    const s = await serve(r, reply, attrs);
    if ('notLive' in s) return reply.code(503).send(s.notLive);
    return s.answer;
  });

  app.post('/v1/vms/:id/sessions', {
    schema: { params: VmParams, response: { 201: SessionReply, 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const s = await serve({ op: 'open-session' }, reply, {});
    if ('notLive' in s) return reply.code(503).send(s.notLive);
    return reply.code(201).send({ session: Number(s.answer.value), maxOutstanding: KV_LIMITS.maxOutstanding, maxSessions: KV_LIMITS.maxSessions });
  });

  app.delete('/v1/vms/:id/sessions/:session', {
    schema: { params: SessionParams, response: { 204: Type.Null(), 503: NotLiveReply, '4xx': ErrorReply } },
  }, async (req, reply) => {
    checkVm(req.params.id);
    const s = await serve({ op: 'close-session', session: req.params.session }, reply, { 'ft.session.id': req.params.session });
    if ('notLive' in s) return reply.code(503).send(s.notLive);
    return reply.code(204).send(null);
  });
};

export default requestRoutes;
