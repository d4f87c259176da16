/**
 * POST /v1/vms/:id/join (peer credential): a new backup asks the live primary
 * for state transfer; only from a configured peer URL (--peers). 202 {epoch, icount}.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorReply, NotLiveReply, VmParams } from '@mr/vmft-protocol';
import { ERR_UNKNOWN_VM, notLiveError, notLiveReply } from '../../errors.ts';
import type { NodeRouteOptions } from './requests.ts';

export const JoinRequest = Type.Object(
  { nodeId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }), url: Type.String({ pattern: '^http://[^/\\s]+/?$', maxLength: 256 }) },
  { additionalProperties: false },
);

const JoinReply = Type.Object({ epoch: Type.Integer(), icount: Type.Integer() });

const joinRoutes: FastifyPluginAsyncTypebox<NodeRouteOptions> = async (app, { vmId, driver }) => {
  app.post('/v1/vms/:id/join', {
    config: { auth: 'peer' },
    schema: { params: VmParams, body: JoinRequest, response: { 202: JoinReply, '4xx': ErrorReply, 503: NotLiveReply } },
  }, async (req, reply) => {
    if (req.params.id !== vmId) throw ERR_UNKNOWN_VM(req.params.id);
    // Never stream state (or send the peer credential) to a URL that is not configured.
    driver.checkJoiner(req.body.nodeId, req.body.url);
    driver.catchUp();
    const nl = driver.notLive();
    if (nl) return reply.code(503).send(notLiveReply(notLiveError(nl)));
    return reply.code(202).send(driver.join(req.body.nodeId, req.body.url.replace(/\/$/, '')));
  });
};

export default joinRoutes;
