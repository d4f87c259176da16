/**
 * Replication routes (peer credential, MR_PEER_TOKEN):
 *   GET  /v1/standby/log   a standby's log stream (octet-stream frames, see replication/frames.ts)
 *   POST /v1/standby/ack   {session, seq, check?}: the standby holds every input up to seq
 * and GET /v1/standby (client): this coordinator's role and replication state.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorReply } from '@mr/mapreduce-protocol';
import { ERR_STANDBY_REFUSED } from '../errors.ts';

const peer = { auth: 'peer' as const };
const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 409: ErrorReply, 503: ErrorReply };

export const StandbyStatus = Type.Object({
  role: Type.Union([Type.Literal('active'), Type.Literal('standby'), Type.Literal('deposed')]),
  /** alone: no standby (not protected); protected: a standby acknowledges every input. */
  mode: Type.Union([Type.Literal('alone'), Type.Literal('protected'), Type.Literal('arbitrating'), Type.Literal('deposed'), Type.Literal('following'), Type.Literal('unarbitrated')]),
  protected: Type.Boolean(),
  nodeId: Type.String(),
  epoch: Type.Integer(),
  /** Inputs recorded (active) or applied (standby). */
  seq: Type.Integer(),
  acked: Type.Optional(Type.Integer()),
  standby: Type.Optional(Type.String()),
  /** The coordinator a standby follows. */
  active: Type.Optional(Type.String()),
  /** When a standby went live (ISO), and when it first answered a worker after that. */
  liveSince: Type.Optional(Type.String()),
  firstWorkerReplyAt: Type.Optional(Type.String()),
});

/** `replicated`: an arbiter is configured, so the log routes exist (they need the peer credential). */
const standbyRoutes: FastifyPluginAsyncTypebox<{ replicated: boolean }> = async (app, { replicated }) => {
  app.get('/v1/standby', { schema: { response: { 200: StandbyStatus, ...errors } } }, async () => app.replication.status());
  if (!replicated) return;
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.get(
    '/v1/standby/log',
    {
      config: { ...peer, otel: false },
      schema: { headers: Type.Object({ 'x-mr-standby-id': Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' }) }) },
    },
    async (req, reply) => {
      const source = app.replication.source;
      if (!source) throw ERR_STANDBY_REFUSED(app.replication.role() === 'standby' ? 'this coordinator is a standby itself' : 'this coordinator has no arbiter (--storage): it cannot hand over to a standby');
      const out = source.attach(req.headers['x-mr-standby-id']);
      req.raw.once('close', () => out.destroy());
      reply.header('content-type', 'application/octet-stream');
      reply.header('cache-control', 'no-store');
      return reply.send(out);
    },
  );

  app.post(
    '/v1/standby/ack',
    {
      config: { ...peer, otel: false },
      schema: {
        body: Type.Object({
          session: Type.String({ minLength: 1, maxLength: 64 }),
          seq: Type.Integer({ minimum: 0 }),
          check: Type.Optional(Type.Object({ seq: Type.Integer({ minimum: 0 }), ok: Type.Boolean() })),
        }),
        response: { 200: Type.Object({ ok: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const source = app.replication.source;
      if (!source) throw ERR_STANDBY_REFUSED('this coordinator streams no log');
      source.ack(req.body.session, req.body.seq, req.body.check);
      return { ok: true };
    },
  );
};

export default standbyRoutes;
